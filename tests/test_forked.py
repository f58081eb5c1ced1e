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
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.report_scale import build
from monitor.config import ReportSettings
from monitor.forked import Forked
from monitor.store import Store
from monitor.types import LinkResult
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
