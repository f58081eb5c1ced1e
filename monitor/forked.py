"""One function run on the machine's other core: a forked child.

`monitor report` at 100,000 links is one process's CPU from end to end
(reading 100,000 rows, building the audit, rendering 23 MB of HTML and
108 MB of JSON), on a machine with two cores. Two pieces need nothing of
the rest: reading the previous report's flagged links (0.4 s) and writing
the JSON (0.5 s). Each runs in a forked child meanwhile: the child sees the
parent's memory as it stood at the fork (copy-on-write, nothing pickled on
the way in) and sends back its return value, pickled, or what it raised.

A child is forked only on Linux, from a process with one thread (a lock
another thread held at the fork would stay held in the child forever:
`monitor run` and `serve` keep DNS and executor threads, and run the
function in place), and a fork the system refuses (a process limit, no
memory to commit) runs it in place too: it is only ever a saving of time.

The child never outlives its parent (PR_SET_PDEATHSIG: a SIGTERM or
SIGKILL of `monitor report` takes it along, not left writing 108 MB after
the command ended), takes SIGINT and SIGTERM with their default action
(it dies; the parent says why), and leaves by `os._exit`: no atexit
handler, no buffered output, no connection of the parent's closed.

In the parent, a Ctrl-C (or `monitor report`'s SIGTERM, raised as one)
waits while the child's pid is being taken or given up (the fork, the
`waitpid` and the note that it was reaped): landed in between, it left a
child unknown to the cleanup, or a `waitpid` of a pid reaped already
(ChildProcessError in place of "interrupted"; review 12 #3).

SQLite (https://sqlite.org/howtocorrupt.html 2.6): a child must never use a
connection opened before the fork. The JSON writer uses none (it may be
forked with the parent's store open: it only encodes and writes a file);
the reader opens its own, and is forked only while the parent has none
open, so that no SQLite state at all is copied into it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from monitor.errors import MonitorError

__all__ = ["ChildDied", "Forked", "can_fork"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_STOPPING = (signal.SIGINT, signal.SIGTERM)


class ChildDied(MonitorError):
    """A forked child ended without giving its answer: killed (the
    out-of-memory killer, `kill -9`) or stopped by a signal."""


def can_fork() -> bool:
    """Linux, and this process has one thread (the OS's count: a C library's
    own thread, such as c-ares's, is not in `threading`'s)."""
    return sys.platform == "linux" and hasattr(os, "fork") and _threads() == 1


def _threads() -> int:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return threading.active_count()


class Forked(Generic[T]):
    """`fn()` in a forked child (or, without `fork`, run here and now); its
    result, or its exception raised, by `result()`.

    `what` names it in an error ("the process writing r.json was killed by
    SIGKILL ..."); `on_failure` removes what a child stopped midway left (a
    half-written file). Use as a context manager: leaving the block before
    `result()` (an error meanwhile) kills the child and reaps it.
    """

    def __init__(self, what: str, on_failure: Callable[[], None] | None = None) -> None:
        self.what = what
        self._on_failure = on_failure
        self._pid: int | None = None
        self._answer: int | None = None
        self._owed = False  # on_failure, until the child's answer is read as a success
        self._value: T | None = None
        self._raised: BaseException | None = None

    @classmethod
    def start(cls, fn: Callable[[], T], *, what: str, fork: bool = True,
              on_failure: Callable[[], None] | None = None) -> Forked[T]:
        job: Forked[T] = cls(what, on_failure)
        if fork and can_fork() and job._fork(fn):
            return job
        try:
            job._value = fn()
        except Exception as exc:  # raised by result(), where the child's would be
            job._raised = exc
        return job

    def _fork(self, fn: Callable[[], T]) -> bool:
        """Start the child; False when the system refused the fork."""
        read, write = os.pipe()
        parent = os.getpid()
        # Held from before the fork until the child has its own handlers (a
        # Ctrl-C in between would unwind the parent's stack in the child),
        # and in the parent until the child is on record (else left unknown
        # to `stop`).
        with _stops_held():
            try:
                pid = os.fork()
            except OSError as exc:  # EAGAIN (a process limit), ENOMEM (no memory to commit)
                os.close(read)
                os.close(write)
                log.debug("%s: no fork (%s): done in this process", self.what, exc)
                return False
            if pid == 0:  # pragma: no cover - the child: its effects are what the tests check
                try:
                    os.close(read)
                    _child(fn, write, parent)
                finally:
                    os._exit(1)
            os.close(write)
            self._pid, self._answer, self._owed = pid, read, True
        return True

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
        with _stops_held():  # reaped and said so, or neither
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
        try:
            ok, value = pickle.loads(said) if said else (False, None)
        except Exception:  # half an answer: killed while it wrote it
            ok, value = False, None
        if ok:
            self._value, self._owed = value, False
            return
        self._raised = value if isinstance(value, BaseException) else ChildDied(self._died(status))
        self._clean_up()

    def _clean_up(self) -> None:
        """on_failure, once, if it is owed (a child that did not succeed, or
        was stopped before its answer was read, reaped or not by then)."""
        if self._owed and self._on_failure is not None:
            self._on_failure()
        self._owed = False

    def _died(self, status: int) -> str:
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
            why = " (out of memory, or `kill -9`)" if number == signal.SIGKILL else ""
            return f"{self.what} was killed by {name}{why} before it finished"
        return f"{self.what} ended before it finished (exit status {os.waitstatus_to_exitcode(status)})"

    def stop(self) -> None:
        """Kill the child if it still runs, reap it, and clean up after it."""
        if self._answer is not None:
            os.close(self._answer)
            self._answer = None
        if self._pid is not None:
            with _stops_held():
                try:
                    os.kill(self._pid, signal.SIGKILL)
                except ProcessLookupError:  # pragma: no cover - reaped elsewhere
                    pass
                with contextlib.suppress(ChildProcessError):  # pragma: no cover - reaped elsewhere
                    os.waitpid(self._pid, 0)
                self._pid = None
        self._clean_up()

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _stops_held() -> Iterator[None]:
    """SIGINT and SIGTERM held (blocked) in this thread, then as they were:
    one that came meanwhile is raised at the end of the block."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _child(fn: Callable[[], object], answer: int, parent: int) -> None:  # pragma: no cover - in the child
    """The child's whole life: die with the parent, run, say how it went,
    and exit without the parent's cleanup (`_fork`'s `os._exit`)."""
    for number in _STOPPING:
        signal.signal(number, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)  # the parent's event loop's: not ours to write to
    _die_with(parent)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
    try:
        said = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        said = _pickled(exc)
    with os.fdopen(answer, "wb") as out:
        out.write(said)
    os._exit(0)


def _die_with(parent: int) -> None:  # pragma: no cover - in the child
    """SIGKILL when the parent dies (Linux's PR_SET_PDEATHSIG); gone already: now."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _pickled(exc: BaseException) -> bytes:
    """(False, the exception), its traceback in a note: a bug in the child is
    then still findable from the parent's error. One the parent could not
    rebuild (an `__init__` of two arguments pickles, then fails to unpickle)
    is sent as its words."""
    exc.add_note("in a forked child:\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        said = pickle.dumps((False, exc))
        pickle.loads(said)
        return said
    except Exception:
        words = RuntimeError(f"{type(exc).__name__}: {exc}")
        words.__notes__ = list(getattr(exc, "__notes__", []))
        return pickle.dumps((False, words))
