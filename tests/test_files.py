"""reports/files.py: the report's files written whole or not at all, the
JSON by a forked child while the HTML is rendered (from 5,000 links).

The child is a real fork writing real files; what it raises, or a child
killed by a signal, must reach the caller as if the file had been written
in the caller's own process, and no PATH.tmp may be left either way."""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from monitor import forked
from monitor.forked import ChildDied, can_fork
from reports import files, render
from reports.render import save_report
from tests.test_render import synthetic_audit

T = TypeVar("T")
FORKS: list[int] = []
os.register_at_fork(after_in_parent=lambda: FORKS.append(1))


def forks_during(fn: object) -> int:
    before = len(FORKS)
    fn()  # type: ignore[operator]
    return len(FORKS) - before


def pieces(*texts: str) -> Iterator[str]:
    yield from texts


def forked_children() -> list[int]:
    """This process's children running this same program (forks, not the
    browsers or servers other tests may start), zombies included."""
    me, found = os.getpid(), []
    own = Path("/proc/self/cmdline").read_bytes()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == me and ((entry / "cmdline").read_bytes() in (own, b"") or " Z " in stat):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.usefixtures("fork_allowed")
def test_concurrent_writes_both_files_by_a_fork(tmp_path: Path) -> None:
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    forked = forks_during(lambda: files.write_all((html, pieces("<p>", "é</p>")), (data, iter([b'{"a":', b"1}"])),
                                                  concurrent=True))
    assert forked == 1
    assert html.read_text(encoding="utf-8") == "<p>é</p>" and json.loads(data.read_bytes()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]


def test_not_concurrent_below_the_threshold_or_with_threads(tmp_path: Path) -> None:
    """`monitor serve` keeps executor threads: a fork there could leave a
    lock held in the child, so it writes one file after the other."""
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    assert forks_during(lambda: files.write_all((html, "a"), (data, "b"))) == 0
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork()
        assert forks_during(lambda: files.write_all((html, "c"), (data, "d"), concurrent=True)) == 0
    finally:
        stop.set()
        thread.join()
    assert (html.read_text(), data.read_text()) == ("c", "d")


@pytest.mark.usefixtures("fork_allowed")
def test_a_folder_in_the_childs_way_is_the_same_error_and_nothing_is_written(tmp_path: Path) -> None:
    """The child's OSError, with its errno and file name, is raised here:
    `monitor report` words it from those ("cannot save the report ...: NAME: Is a directory")."""
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    html.write_text("last week")
    files.tmp_path(data).mkdir()  # the child cannot open r.json.tmp
    with pytest.raises(IsADirectoryError) as caught:
        files.write_all((html, "this week"), (data, pieces("{}")), concurrent=True)
    assert caught.value.errno == errno.EISDIR and caught.value.filename == str(files.tmp_path(data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json.tmp"]
    assert html.read_text() == "last week"
    assert forked_children() == []


@pytest.mark.usefixtures("fork_allowed")
def test_a_bug_in_the_childs_content_is_raised_with_its_traceback(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"{"
        raise ValueError("a value the JSON cannot hold")

    with pytest.raises(ValueError, match="cannot hold") as caught:
        files.write_all((tmp_path / "r.html", "x"), (tmp_path / "r.json", broken()), concurrent=True)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "in a forked child" in notes and "in broken" in notes
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("fork_allowed")
def test_a_child_killed_midway_is_an_error_and_leaves_no_tmp(tmp_path: Path) -> None:
    def killed() -> Iterator[bytes]:
        yield b"{" * 100_000
        os.kill(os.getpid(), signal.SIGKILL)  # runs in the child: the OOM killer, a `kill -9`
        yield b"}"

    with pytest.raises(ChildDied, match=r"the process writing r\.json was killed by SIGKILL \(out of memory, "
                                        r"or `kill -9`\) before it finished"):
        files.write_all((tmp_path / "r.html", "x"), (tmp_path / "r.json", killed()), concurrent=True)
    assert list(tmp_path.iterdir()) == []
    assert forked_children() == []


@pytest.mark.usefixtures("fork_allowed")
def test_the_first_file_failing_stops_the_child_and_removes_its_tmp(tmp_path: Path) -> None:
    """The HTML fails (a full disk, a stop) while the child still writes:
    it is killed and reaped, and its half-written JSON removed."""
    def slow() -> Iterator[bytes]:
        while True:
            yield b" " * 1000
            time.sleep(0.01)

    def failing() -> Iterator[str]:
        yield "<p>"
        time.sleep(0.2)  # the child has begun its file meanwhile
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        files.write_all((tmp_path / "r.html", failing()), (tmp_path / "r.json", slow()), concurrent=True)
    assert list(tmp_path.iterdir()) == []
    assert forked_children() == []


def ctrl_c_after(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn`, then a SIGINT to this thread (Ctrl-C, or `monitor report`'s
    SIGTERM, which raises the same): it lands at that exact point, unless
    the program holds it meanwhile."""
    sent: list[bool] = []

    def then_stopped(*args: object) -> T:
        value = fn(*args)
        if not sent:
            sent.append(True)
            signal.raise_signal(signal.SIGINT)
        return value

    return then_stopped


@pytest.mark.parametrize("where", ["reaped", "answered"])
@pytest.mark.usefixtures("fork_allowed")
def test_a_stop_as_the_child_is_reaped_or_answers_leaves_no_tmp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """review 12 #3. Reaped: the stop came before the parent noted it, and
    its cleanup reaped the pid again: ChildProcessError, not "interrupted".
    Answered: the child's r.json.tmp, written whole, was in neither
    cleanup's hands (the child gone, its answer not taken in): left behind."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if where == "reaped":
        monkeypatch.setattr(os, "waitpid", ctrl_c_after(os.waitpid))
    else:
        monkeypatch.setattr(forked.Forked, "result", ctrl_c_after(forked.Forked.result))
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    html.write_text("last week")
    with pytest.raises(KeyboardInterrupt):
        files.write_all((html, "this week"), (data, pieces("{}")), concurrent=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"] and html.read_text() == "last week"
    assert forked_children() == []


@pytest.mark.usefixtures("fork_allowed")
def test_save_report_forks_from_the_threshold_and_writes_the_same_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit = synthetic_audit(300, problem_every=3)
    monkeypatch.setattr(render, "CONCURRENT_WRITE_LINKS", 10**9)
    assert forks_during(lambda: save_report(audit, tmp_path / "one")) == 0
    monkeypatch.setattr(render, "CONCURRENT_WRITE_LINKS", len(audit.links))
    assert forks_during(lambda: save_report(audit, tmp_path / "two")) == 1
    for name in ("report-2026-11-23-run-9.html", "report-2026-11-23-run-9.json", "index.html"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
