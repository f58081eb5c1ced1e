"""Shared helpers for tests that drive the whole program.

`sim_site` runs the bundled simulated site (monitor/demo/site.py) on loopback;
`mail_sink` a real aiosmtpd server filing what it receives; `run_monitor` the
CLI as a subprocess without blocking the loop that serves them both.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.demo.run import MailSink
from monitor.demo.site import SimulatedSite, start_simulated_site


@pytest.fixture
async def sim_site(tmp_path: Path) -> AsyncIterator[SimulatedSite]:
    async with start_simulated_site(tmp_path / "site") as running:
        yield running


@pytest.fixture
async def mail_sink(tmp_path: Path) -> AsyncIterator[MailSink]:
    mail = MailSink(tmp_path / "mail")
    await mail.start()
    yield mail
    await mail.stop()


async def run_monitor(*args: str, env: dict[str, str] | None = None,
                      timeout: float = 180) -> tuple[int, str, str]:
    """`python -m monitor ARGS`: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def site_config(tmp_path: Path, site: SimulatedSite, *, db: Path | None = None,
                smtp_port: int | None = None) -> Path:
    """A monitor.toml for the simulated site (and a mail sink when given)."""
    pages = "".join(f'[[pages]]\nurl = "{url}"\n' for url in site.pages)
    connect = ", ".join(f'"{k}" = "{v}"' for k, v in site.connect_to)
    text = (
        f"{pages}\n[checker]\ntimeout = 2\nretries = 1\nbackoff_base = 0.1\nretry_after_max = 2\n"
        f'allow_private_networks = ["127.0.0.1/32"]\nca_file = "{site.ca_pem_path}"\n'
        f'archive_url = "{site.archive_url}"\nconnect_to = {{ {connect} }}\n\n'
        f'[database]\npath = "{db or tmp_path / "monitor.db"}"\n\n'
        f'[report]\ndir = "{tmp_path / "reports"}"\nsite_name = "www.sclero.org"\n'
    )
    if smtp_port is not None:
        text += (f'\n[email]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
                 f'sender = "monitor@sclero.org"\nrecipients = ["webmaster@sclero.org"]\n')
    else:  # no mail server: no mail (no address is made up for it either)
        text += '\n[email]\nenabled = false\n'
    config = tmp_path / "monitor.toml"
    config.write_text(text, encoding="utf-8")
    return config


def loopback_config(tmp_path: Path, base: str, smtp_port: int) -> Path:
    """A monitor.toml for one page at `base`/page.html on a loopback test
    server, no soft-404 probe, no retries, mail to a sink on `smtp_port`:
    the weekly tests of one site (test_accept, test_flapping_weeks)."""
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "{base}/page.html"\n'
        '[checker]\nallow_private_networks = ["127.0.0.1/32"]\ntimeout = 2\nretries = 0\n'
        'soft404_probe = false\n'
        f'[database]\npath = "{tmp_path / "m.db"}"\n[report]\ndir = "{tmp_path / "out"}"\n'
        f'[email]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        'sender = "monitor@sclero.org"\nrecipients = ["webmaster@sclero.org"]\n', encoding="utf-8")
    return config


DATABASE_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""
"""`python -c DATABASE_HOLDER DB`: another process holding the database
locked (prints "held", then waits for a line on stdin to let go), for the
tests of a lock held past the busy timeout."""

