"""One function run on the machine's other core: a forked child.

`monitor report` at 100,000 links is one process's CPU from end to end
(reading 100,000 rows, building the audit, rendering 23 MB of HTML and
108 MB of JSON), on a machine with two cores. Two pieces need nothing of
the rest: reading the previous report's flagged links (0.4 s) and writing
the JSON (0.5 s). Each runs in a forked child meanwhile: the child sees the
parent's memory as it stood at the fork (copy-on-write, nothing pickled on
the way in) and sends back its return value, pickled, or what it raised.

A child is forked only on Linux, from a process with no other thread (a
lock another thread held at the fork would stay held in the child forever:
`monitor serve` keeps executor threads, and runs the function in place).
Nothing of SQLite may cross a fork (https://sqlite.org/howtocorrupt.html
2.6): a child that reads the database opens its own connection, and is
forked while the parent has none open.
"""

from __future__ import annotations

import errno
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Forked", "can_fork"]

T = TypeVar("T")


def can_fork() -> bool:
    """Linux, and no other thread running."""
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


class Forked(Generic[T]):
    """`fn()` in a forked child (or, without `fork`, run here and now); its
    result, or its exception raised, by `result()`.

    `what` names it in an error ("the process writing r.json ended without
    a word"); `on_failure` removes what a child stopped midway left (a
    half-written file). Use as a context manager: leaving the block before
    `result()` (an error meanwhile) kills the child and reaps it.
    """

    def __init__(self, what: str, on_failure: Callable[[], None] | None = None) -> None:
        self.what = what
        self._on_failure = on_failure
        self._pid: int | None = None
        self._answer: int | None = None
        self._value: T | None = None
        self._raised: BaseException | None = None

    @classmethod
    def start(cls, fn: Callable[[], T], *, what: str, fork: bool = True,
              on_failure: Callable[[], None] | None = None) -> Forked[T]:
        job: Forked[T] = cls(what, on_failure)
        if not (fork and can_fork()):
            try:
                job._value = fn()
            except Exception as exc:  # raised by result(), where the child's would be
                job._raised = exc
            return job
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child: its effects are what the tests check
            os.close(read)
            _child(fn, write)
        os.close(write)
        job._pid, job._answer = pid, read
        return job

    def result(self) -> T:
        if self._pid is not None:
            self._collect()
        if self._raised is not None:
            raise self._raised
        return self._value  # type: ignore[return-value]

    def _collect(self) -> None:
        assert self._pid is not None and self._answer is not None
        with os.fdopen(self._answer, "rb") as answer:
            self._answer = None
            said = answer.read()  # until the child exits and its end of the pipe closes
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if said:
            ok, value = pickle.loads(said)
            if ok:
                self._value = value
                return
            self._raised = value
        else:
            self._raised = ChildProcessError(errno.ECHILD, f"{self.what} ended without a word ({_ended(status)})")
        if self._on_failure is not None:
            self._on_failure()

    def stop(self) -> None:
        """Kill the child if it still runs, reap it, and clean up after it."""
        if self._answer is not None:
            os.close(self._answer)
            self._answer = None
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover - reaped elsewhere
                pass
            os.waitpid(self._pid, 0)
            self._pid = None
            if self._on_failure is not None:
                self._on_failure()

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _child(fn: Callable[[], object], answer: int) -> None:  # pragma: no cover - runs in the child
    """The child's whole life: run, say how it went, and exit without the
    parent's cleanup (atexit handlers, buffered output, open connections)."""
    try:
        try:
            said = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:
            said = _pickled(exc)
        with os.fdopen(answer, "wb") as out:
            out.write(said)
    finally:
        os._exit(0)


def _pickled(exc: BaseException) -> bytes:
    """(False, the exception), its traceback in a note: a bug in the child is
    then still findable from the parent's error."""
    exc.add_note("in a forked child:\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        return pickle.dumps((False, exc))
    except Exception:  # an exception that will not pickle: its words
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
