"""monitor/forked.py, and `monitor report`'s two uses of it: the previous
report's flagged links read by a forked child while the run reported is
read, and the JSON written by another while the HTML is rendered.

Real forks: the child's value comes back through a real pipe, a child
still running when the parent gives up is killed and reaped. The report
tests run `monitor report`'s job in a fresh interpreter (a pytest process
may hold threads, and a process with threads never forks) on a database
of three weekly runs built as bench/report_scale.py builds its year."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.report_scale import build
from monitor.config import ReportSettings
from monitor.forked import ChildDied, Forked
from monitor.store import Store
from monitor.types import LinkResult
from reports import files
from reports.deliver import PreviousLinks, load_audit
from tests.test_files import forked_children

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
FORKS: list[int] = []
os.register_at_fork(after_in_parent=lambda: FORKS.append(1))


def pid_and_square(n: int) -> tuple[int, int]:
    return os.getpid(), n * n


@pytest.mark.usefixtures("fork_allowed")
def test_a_childs_value_comes_back_from_another_process() -> None:
    before = len(FORKS)
    with Forked.start(lambda: pid_and_square(12), what="squaring") as job:
        pid, value = job.result()
    assert len(FORKS) == before + 1 and pid != os.getpid() and value == 144
    assert forked_children() == []


def test_without_fork_it_runs_here_and_raises_at_result() -> None:
    before = len(FORKS)
    job = Forked.start(lambda: pid_and_square(3), what="squaring", fork=False)
    assert job.result() == (os.getpid(), 9) and len(FORKS) == before

    def broken() -> int:
        raise LookupError("no such run")

    job = Forked.start(broken, what="reading", fork=False)  # raised at result(), where a child's would be
    with pytest.raises(LookupError, match="no such run"):
        job.result()


@pytest.mark.usefixtures("fork_allowed")
def test_a_childs_exception_is_raised_here_with_its_traceback() -> None:
    def broken() -> int:
        raise LookupError("no such run")

    with Forked.start(broken, what="reading") as job, pytest.raises(LookupError, match="no such run") as caught:
        job.result()
    assert "in a forked child" in "\n".join(caught.value.__notes__) and "in broken" in "\n".join(caught.value.__notes__)


@pytest.mark.usefixtures("fork_allowed")
def test_leaving_before_the_result_kills_the_child_and_cleans_up(tmp_path: Path) -> None:
    left = tmp_path / "half-written"
    cleaned: list[bool] = []

    def slow() -> None:
        left.write_text("half")
        time.sleep(60)

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the other part failed"):
        with Forked.start(slow, what="writing", on_failure=lambda: cleaned.append(True)):
            while not left.exists():
                time.sleep(0.01)
            raise RuntimeError("the other part failed")
    assert cleaned == [True] and time.monotonic() - started < 30  # killed, not waited for
    assert forked_children() == []


# -- in `monitor report` ----------------------------------------------------------------------------

REPORT = """
import asyncio, datetime as dt, os, sys
from pathlib import Path
from monitor.config import load_settings
from monitor.jobs import report_job
from monitor.store import Store
from reports import deliver, render
threshold, hold, config = int(sys.argv[1]), sys.argv[2] == "hold", sys.argv[3]
deliver.PREFETCH_LINKS = render.CONCURRENT_WRITE_LINKS = threshold
settings = load_settings(Path(config))
held = Store.open(settings.database.path) if hold else None
forks = []
os.register_at_fork(after_in_parent=lambda: forks.append(1))
asyncio.run(report_job(settings, now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)))
print(len(forks))
"""


@pytest.fixture(scope="module")
def three_weeks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weeks")
    build(folder / "m.db", runs=3, links=2000)  # runs 1 and 2 reported, run 3 to report
    return folder


def report(folder: Path, threshold: int, *, hold: bool = False) -> tuple[int, dict[str, bytes]]:
    out = folder / f"{threshold}-{hold}" / "out"
    out.parent.mkdir(exist_ok=True)
    config = out.parent / "monitor.toml"  # the JSON names it: the same name in each
    config.write_text(f'[[pages]]\nurl = "https://www.sclero.org/scleroderma/topic-0/treatments.html"\n'
                      f'[database]\npath = "{folder / "m.db"}"\n[report]\ndir = "{out}"\n')
    result = subprocess.run([sys.executable, "-c", REPORT, str(threshold), "hold" if hold else "-", str(config)],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "index.html"}
    return int(result.stdout.split()[-1]), files


def test_the_report_read_and_written_on_two_cores_is_the_same_report(three_weeks: Path) -> None:
    alone_forks, alone = report(three_weeks, 10**9)
    two_forks, two = report(three_weeks, 0)
    assert (alone_forks, two_forks) == (0, 2)  # the previous run's links, then the JSON
    assert sorted(alone) == ["report-2025-12-08-run-3.html", "report-2025-12-08-run-3.json"]
    assert alone == two
    doc = json.loads(two["report-2025-12-08-run-3.json"])
    assert doc["counts"]["new"] > 0 and doc["counts"]["still"] > 0  # compared with run 2's problems


def test_no_read_is_forked_while_a_store_is_open(three_weeks: Path) -> None:
    """A connection open at the fork would be copied into the child: SQLite
    forbids using it there, and its lock state misleads a new one."""
    forks, files = report(three_weeks, 0, hold=True)
    assert forks == 1  # the JSON only: the previous run's links were read in place
    assert files == report(three_weeks, 10**9)[1]


def test_a_prefetch_of_another_run_is_not_used(three_weeks: Path) -> None:
    """Another process marked a run reported between the prefetch and the
    audit: the audit compares with the run it finds, read by itself."""
    def wrong() -> list[LinkResult]:
        raise AssertionError("the links of run 1 were used for run 2's")

    settings = SimpleNamespace(report=ReportSettings())
    with Store.open(three_weeks / "m.db") as store:
        audit = load_audit(store, 3, settings, NOW, previous_read=PreviousLinks(1, wrong))
        again = load_audit(store, 3, settings, NOW)
    assert audit.previous_run is not None and audit.previous_run.id == 2
    assert audit.counts == again.counts and audit.counts.still > 0


# -- review 11: what a fork refused, a child killed, a SIGTERM do ----------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.usefixtures("fork_allowed")
def test_a_fork_the_system_refuses_runs_the_function_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fork(2) refused (EAGAIN under a pids cgroup or RLIMIT_NPROC, ENOMEM
    with overcommit off: simulated, root here is exempt from the limits):
    was the report lost, "cannot save the report ... once the folder can be
    written", and the pipe's two ends leaked. A fork only saves time."""
    def refused() -> int:
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    monkeypatch.setattr(os, "fork", refused)
    before = open_fds()
    assert Forked.start(lambda: pid_and_square(5), what="squaring").result() == (os.getpid(), 25)
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    files.write_all((html, "<p>x</p>"), (data, iter([b"{}"])), concurrent=True)
    assert (html.read_text(), data.read_bytes()) == ("<p>x</p>", b"{}")
    assert open_fds() == before


def wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


@pytest.mark.usefixtures("fork_allowed")
def test_a_child_killed_while_it_answers_is_said_killed_not_a_pickle_error() -> None:
    """A 2 MB answer waits in the pipe until the parent reads it; killed then
    (the OOM killer), the parent read half a pickle: "UnpicklingError:
    pickle data was truncated"."""
    with Forked.start(lambda: b"x" * 2_000_000, what="the process reading run 2's flagged links") as job:
        pid = job._pid
        assert pid is not None
        deadline = time.monotonic() + 20
        while "pipe_write" not in wchan(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ChildDied, match=r"flagged links was killed by SIGKILL \(out of memory, or `kill -9`\)"):
            job.result()


class TwoPartError(Exception):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")


@pytest.mark.usefixtures("fork_allowed")
def test_an_exception_that_will_not_unpickle_still_says_what_happened() -> None:
    """Pickled with its args (one message) and rebuilt with two: was a
    TypeError about `__init__` in place of the error."""
    def broken() -> None:
        raise TwoPartError("r.json", "the disk went away")

    with Forked.start(broken, what="writing") as job, pytest.raises(RuntimeError) as caught:
        job.result()
    assert str(caught.value) == "TwoPartError: r.json: the disk went away"
    assert "in a forked child" in "\n".join(caught.value.__notes__)


CLI = """
import sys
from reports import deliver, render
deliver.PREFETCH_LINKS = render.CONCURRENT_WRITE_LINKS = 0
from monitor.cli import main
sys.argv = ["monitor", *sys.argv[1:]]
main()
"""


@pytest.fixture(scope="module")
def big_weeks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    build(folder / "m.db", runs=3, links=20_000)
    return folder


def start_report(folder: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    out = folder / name / "out"
    out.mkdir(parents=True)
    config = out.parent / "monitor.toml"
    config.write_text(f'[[pages]]\nurl = "https://www.sclero.org/scleroderma/topic-0/treatments.html"\n'
                      f'[database]\npath = "{folder / "m.db"}"\n[report]\ndir = "{out}"\n')
    proc = subprocess.Popen([sys.executable, "-c", CLI, "report", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            cwd=Path(__file__).parent.parent)
    return proc, out


def in_group(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of the processes of a process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    found.append((int(entry.name), fields[0]))
            except (OSError, ValueError, IndexError):
                pass
    return found


def test_sigterm_while_the_json_is_written_stops_both_and_leaves_nothing(big_weeks: Path) -> None:
    """`kill PID` or `timeout` while the child writes the JSON: the command
    ended at once, and its child, orphaned, went on writing the whole
    NAME.json.tmp after it (113 MB at 100,000 links), never removed."""
    proc, out = start_report(big_weeks, "term")
    deadline = time.monotonic() + 60
    while not list(out.glob("*.json.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the report ended before its JSON child was seen"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)  # returns only once no process holds its output open
    assert proc.returncode == 1 and err.decode().strip() == "monitor: interrupted", err
    assert group_gone(proc.pid) == []
    assert sorted(p.name for p in out.iterdir()) == []


def group_gone(pgid: int) -> list[tuple[int, str]]:
    """What still runs of the group, given 5 s to go: a child SIGKILLed has
    closed its files (so `communicate` returned) and, on a busy machine,
    shows "R" a moment more before it is a zombie (review 12 #3)."""
    deadline = time.monotonic() + 5
    while (running := [p for p in in_group(pgid) if p[1] != "Z"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return running


def test_a_prefetch_child_killed_is_read_in_place_not_a_failed_report(big_weeks: Path) -> None:
    proc, out = start_report(big_weeks, "prefetch")
    killed = None
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and killed is None:
        for pid, _ in in_group(proc.pid):
            if pid != proc.pid and "pipe_write" in wchan(pid) and not list(out.glob("*.tmp")):
                os.kill(pid, signal.SIGKILL)
                killed = pid
        time.sleep(0.001)
    assert killed is not None, "no prefetch child was seen waiting to answer"
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert sorted(p.suffix for p in out.iterdir()) == [".html", ".html", ".json"]
