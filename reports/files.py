"""Writing the report's files: whole or not at all, and two at once.

A reader (the index, a browser, a link in a mail) never opens half a
report: each file is written beside its name as NAME.tmp and renamed over
it, and the HTML and its JSON are renamed both or neither.

At 100,000 links the JSON (108 MB, ~0.5 s) and the HTML (23 MB, ~1.1 s)
are each one core's work, and the machine has two: with `concurrent=True`
the files after the first are written by a forked child
(`monitor.forked`) while this process writes the first. What the child
raises is raised here, as if written here; a child killed or stopped
leaves no NAME.tmp. Where no child can be forked, the files are written
one after the other.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from monitor.forked import Forked

__all__ = ["Content", "write_all", "write_atomic"]

Content = str | Iterable[str] | Iterable[bytes]
"""A file's content: text, or pieces of text or of bytes already encoded."""


def write_atomic(path: Path, text: Content) -> None:
    """Write (a string or its pieces) then rename, so a reader never opens half a file."""
    write_all((path, text))


def write_all(*files: tuple[Path, Content], concurrent: bool = False) -> None:
    """Write the report's files (its HTML and its JSON) all or none, each by
    a rename, and leave no PATH.tmp behind.

    An HTML report without its JSON is missing from the index's counts,
    and the error said the report was not saved while half of it was
    (review9 #7: `--out weekly.html` beside a folder weekly.json). So every
    file is written whole first; a rename that fails then undoes the ones
    made before it (the earlier file put back, a new one removed).
    With `concurrent` (and `monitor.forked.can_fork()`), the files after the
    first are written by a forked child meanwhile."""
    # Every PATH.tmp is known before any is written, the child's too: a
    # Ctrl-C (or SIGTERM) landing after the child is reaped and before its
    # answer is taken in left its PATH.tmp to no one's cleanup (review 12 #3).
    tmps = [tmp_path(path) for path, _ in files]
    own, others = (files[:1], files[1:]) if concurrent and len(files) > 1 else (files, ())
    try:
        with Forked.start(lambda: _write_tmps(others),
                          what="the process writing " + ", ".join(path.name for path, _ in others),
                          fork=bool(others), on_failure=lambda: _remove_tmps(others)) as child:
            for path, text in own:
                write_tmp(path, text)
            child.result()
            replace_all([(tmp, path) for tmp, (path, _) in zip(tmps, files)])
    finally:  # after the child is stopped: what it wrote is no longer being written
        for tmp in tmps:
            _remove(tmp)  # a renamed one is gone already


def _write_tmps(files: Sequence[tuple[Path, Content]]) -> list[Path]:
    """Each file's PATH.tmp, or none of them."""
    try:
        return [write_tmp(path, text) for path, text in files]
    except BaseException:
        _remove_tmps(files)
        raise


def _remove_tmps(files: Sequence[tuple[Path, Content]]) -> None:
    for path, _ in files:
        _remove(tmp_path(path))


def _remove(tmp: Path) -> None:
    """Remove a PATH.tmp, after a failure: a cleanup that fails in turn (a
    folder of that name, never ours) must not hide the error that matters."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def write_tmp(path: Path, text: Content) -> Path:
    """`path`'s content written whole beside it, as PATH.tmp; on any failure
    (a full disk, a stop) the partial file is removed: it sat on the disk
    that was full, and a later render would not reuse it. Text is written
    as UTF-8; pieces already encoded (the JSON's) as they are."""
    tmp = tmp_path(path)
    try:
        with tmp.open("wb") as f:
            if isinstance(text, str):
                f.write(text.encode("utf-8"))
            else:
                for piece in text:
                    f.write(piece.encode("utf-8") if isinstance(piece, str) else piece)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def replace_all(moves: Sequence[tuple[Path, Path]]) -> None:
    """Rename each tmp over its path, or none: the renames are undone when one
    fails. A file replaced is kept meanwhile as a hard link (PATH.old) to be
    put back; where links cannot be made, a folder in the way is at least
    found before any rename (the usual cause)."""
    for _, path in moves:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    done: list[tuple[Path, Path | None, bool]] = []
    try:
        for tmp, path in moves:
            existed = path.exists()
            done.append((path, _keep_old(path) if existed and len(moves) > 1 else None, existed))
            tmp.replace(path)
    except BaseException:
        for path, old, existed in reversed(done[:-1]):
            if old is not None:
                old.replace(path)
            elif not existed:
                path.unlink(missing_ok=True)
        raise
    finally:
        for _, old, _ in done:
            if old is not None:
                old.unlink(missing_ok=True)


def _keep_old(path: Path) -> Path | None:
    """A hard link to the file at `path` (None: there is none, or no link could be made)."""
    old = path.with_name(path.name + ".old")
    try:
        old.unlink(missing_ok=True)
        os.link(path, old)
    except OSError:
        return None
    return old
