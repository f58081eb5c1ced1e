"""Relative paths in a configuration, and the working directory they are read from.

Relative paths are read from the working directory (installs depend on it).
Run from another folder, a command found no database and made a new, empty
one (every problem "new" again), wrote reports into a second folder (the
index of reports lost its earlier weeks), or refused a CA file that sits
beside the config. `misplaced` says where a path was looked for, where the
likely one is, and the two ways out.
"""

from __future__ import annotations

import os
from pathlib import Path


def misplaced(key: str, written: str, config_path: Path, *, what: str = "file",
              cwd: Path | None = None, folder: bool = False) -> str | None:
    """Why a relative path that finds nothing from the working directory most
    likely means "run from elsewhere", or None.

    Only when a `what` exists where the config's folder would put it (or
    beside the config, under the same name): a path that is nowhere is the
    caller's plain "no such file". The message starts after the file and key
    (`{config}: {key} ` is the caller's), so config errors and the CLI say it
    in their own frame."""
    path = Path(written)
    if path.is_absolute():
        return None
    cwd = Path(os.path.normpath((cwd or Path.cwd()).absolute()))
    looked = cwd / path
    if looked.exists():
        return None
    base = Path(os.path.normpath(cwd / config_path)).parent
    kind = Path.is_dir if folder else Path.is_file
    found = next((c for c in (base / path, base / path.name) if kind(c) and c != looked), None)
    if found is None:
        return None
    parts = len(path.parts)
    run_from = found.parents[parts - 1] if found.parts[-parts:] == path.parts else None
    way = (f"run the command from {run_from}, or make {key} absolute (\"{found}\")" if run_from is not None
           else f"make {key} absolute (\"{found}\") to use it")
    return (f"\"{written}\" is read from the working directory: no {what} at {looked}, "
            f"but there is one at {found}: {way}")
