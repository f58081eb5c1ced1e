"""Writing the report's files: whole or not at all, and two at once.

A reader (the index, a browser, a link in a mail) never opens half a
report: each file is written beside its name as NAME.tmp and renamed over
it, and the HTML and its JSON are renamed both or neither.

At 100,000 links the JSON (108 MB, ~0.5 s) and the HTML (23 MB, ~1.1 s)
are each one core's work, and the machine has two: with `concurrent=True`
every file after the first is written by a forked child while this process
writes the first, the child seeing the audit as it stood at the fork
(copy-on-write, nothing pickled). What the child raises is raised here, as
if written here; a child killed or stopped leaves no NAME.tmp. Forking is
used only on Linux, from a process with no other thread (a lock held by
another thread at the fork would stay held in the child), and otherwise
the files are written one after the other as before.
"""

from __future__ import annotations

import errno
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["Content", "can_fork", "write_all", "write_atomic"]

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
    With `concurrent` (and `can_fork()`), the files after the first are
    written by a forked child meanwhile."""
    tmps: list[Path] = []
    child: _Child | None = None
    own = files
    try:
        if concurrent and len(files) > 1 and can_fork():
            child = _Child.start(files[1:])
            own = files[:1]
        for path, text in own:
            tmps.append(write_tmp(path, text))
        if child is not None:
            tmps.extend(child.result())
        replace_all([(tmp, path) for tmp, (path, _) in zip(tmps, files)])
    finally:
        if child is not None:
            child.stop()
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def can_fork() -> bool:
    """Whether a child may write a file: Linux, and no other thread running
    (`monitor serve` keeps executor threads: it writes one file at a time)."""
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


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
        tmp.unlink(missing_ok=True)
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


class _Child:
    """A forked process writing some files' PATH.tmp; it answers through a
    pipe with nothing (all written) or the exception it raised, pickled."""

    def __init__(self, pid: int, answer: int, paths: Sequence[Path]) -> None:
        self._pid: int | None = pid
        self._answer: int | None = answer
        self._paths = list(paths)

    @classmethod
    def start(cls, files: Sequence[tuple[Path, Content]]) -> _Child:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - measured by the tests through its files, not by coverage
            os.close(read)
            _write_in_child(files, write)
        os.close(write)
        return cls(pid, read, [path for path, _ in files])

    def result(self) -> list[Path]:
        """Its files' tmp paths once it wrote them all; else what it raised."""
        assert self._answer is not None and self._pid is not None
        with os.fdopen(self._answer, "rb") as answer:
            self._answer = None
            said = answer.read()  # until the child exits: its end of the pipe closes
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if said or status != 0:
            for path in self._paths:
                tmp_path(path).unlink(missing_ok=True)
        if said:
            raise pickle.loads(said)
        if status != 0:
            names = ", ".join(p.name for p in self._paths)
            raise ChildProcessError(errno.ECHILD, f"the process writing {names} ended without a word "
                                                  f"({_ended(status)})")
        return [tmp_path(p) for p in self._paths]

    def stop(self) -> None:
        """Stop it if it still runs (the first file failed, or a stop), and
        remove what it left."""
        if self._answer is not None:
            os.close(self._answer)
            self._answer = None
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self._pid, 0)
            self._pid = None
            for path in self._paths:
                tmp_path(path).unlink(missing_ok=True)


def _write_in_child(files: Sequence[tuple[Path, Content]], answer: int) -> None:  # pragma: no cover
    """The child's whole life: write, say how it went, exit without running
    the parent's cleanup (atexit, buffered output, the database's close)."""
    try:
        said = b""
        written: list[Path] = []
        try:
            for path, text in files:
                written.append(write_tmp(path, text))
        except BaseException as exc:
            for tmp in written:
                tmp.unlink(missing_ok=True)
            said = _pickled(exc)
        with os.fdopen(answer, "wb") as out:
            out.write(said)
    finally:
        os._exit(0)


def _pickled(exc: BaseException) -> bytes:
    """The exception as the parent will raise it, its traceback in a note
    (a bug in rendering the JSON is then still findable)."""
    exc.add_note("in the process writing the file:\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        return pickle.dumps(exc)
    except Exception:  # an exception that will not pickle: its words
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
