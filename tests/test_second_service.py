"""A second `monitor serve` on one database says it is not alone.

Real processes: `python -m monitor serve` started twice on one SQLite file,
stopped with SIGTERM as systemd stops them.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

STARTED = "event=service_started"


def config(tmp_path: Path) -> Path:
    """A service that has nothing to do now: its audit is on 1 January (never
    made up today: out of the grace period) and it fetches nothing."""
    path = tmp_path / "serve.toml"
    path.write_text(
        '[[pages]]\nurl = "https://www.sclero.org/scleroderma/treatments.html"\n\n'
        f'[database]\npath = "{tmp_path / "monitor.db"}"\n\n'
        f'[report]\ndir = "{tmp_path / "reports"}"\n\n'
        '[schedule]\ncron = "0 6 1 1 *"\nmisfire_grace_hours = 1\n\n'
        '[email]\nenabled = false\n', encoding="utf-8")
    return path


class Serve:
    """`monitor serve` as a child process, its stderr collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, cfg: Path) -> Serve:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "serve", "--config", str(cfg),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=dict(os.environ))
        serve = cls(proc)
        await asyncio.wait_for(serve._until(STARTED), 60)
        return serve

    async def _until(self, text: str) -> None:
        assert self.proc.stderr is not None
        while True:
            line = (await self.proc.stderr.readline()).decode()
            assert line, f"serve ended before {text!r}: {''.join(self.lines)}"
            self.lines.append(line)
            if text in line:
                return

    async def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(self.proc.communicate(), 60)
        self.lines.append(rest.decode())
        assert self.proc.returncode == 0, "".join(self.lines)
        return "".join(self.lines)


async def test_a_second_service_on_one_database_warns_naming_the_first(tmp_path: Path) -> None:
    """Walkthrough 9, finding 15: a second `monitor serve` (a forgotten
    manual one beside systemd's) started "as if alone"."""
    cfg = config(tmp_path)
    first = await Serve.start(cfg)
    try:
        second = await Serve.start(cfg)
        said = await second.stop()
    finally:
        alone = await first.stop()
    warning = [l for l in said.splitlines() if "event=another_service" in l]
    assert len(warning) == 1 and "WARNING" in warning[0], said
    assert re.search(rf"\b{first.proc.pid}\b", warning[0]) and "another monitor serve" in warning[0], warning
    assert said.index("event=another_service") < said.index(STARTED)
    assert "another_service" not in alone

    # Both stopped: the row is gone, the next service is alone again (no
    # warning, no stale row taken over).
    third = await Serve.start(cfg)
    said = await third.stop()
    assert "another_service" not in said and "stale" not in said, said


@pytest.mark.parametrize("kill", [signal.SIGKILL])
async def test_a_service_killed_without_stopping_is_not_taken_for_a_running_one(
        tmp_path: Path, kill: signal.Signals) -> None:
    """A service killed outright leaves its row; its pid is gone, so the next
    service does not warn of "another monitor serve"."""
    cfg = config(tmp_path)
    first = await Serve.start(cfg)
    first.proc.send_signal(kill)
    await first.proc.wait()
    second = await Serve.start(cfg)
    said = await second.stop()
    assert "another_service" not in said, said
