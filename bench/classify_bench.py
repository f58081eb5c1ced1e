"""CPU per link of the checker's pure hot path: `classify` and `read_target`
over the bench site's 5,005 answers.

    python bench/classify_bench.py [--passes 7] [--src DIR] [--refresh]

The answers are captured once (the bench site served with no latency,
checked by the real `Checker`, probes included) into
bench/out/classify_capture.pickle; later runs only time the pure code, so
two versions of it (`--src` a worktree of another commit) can be compared
on the same inputs. Each pass starts with classify's caches empty, as a
run starts. Prints the best pass's milliseconds per link: a figure that
depends on the machine, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CAPTURE = BENCH / "out" / "classify_capture.pickle"


def capture(path: Path) -> None:
    """Check every URL of the bench site once and keep what classify needs."""
    from bench import site as benchsite
    from bench.run import Server, free_port
    from monitor import check
    from monitor.client import Client
    from monitor.config import CheckerSettings
    from monitor.crawl import wants_probe

    site = benchsite.generate(5000, 300, port=free_port(), latency=(0.0, 0.0))
    bodies: list[tuple[bytes, str]] = []
    original = check.read_target

    def recording(body: bytes, content_type: str):  # type: ignore[no-untyped-def]
        bodies.append((body, content_type))
        return original(body, content_type)

    async def run() -> list[tuple[object, str, object]]:
        settings = CheckerSettings(timeout=10, allow_private_networks=("127.0.0.0/8",))
        titles = {link.url: link.title for link in site.links}
        out = []
        async with Client(settings) as client:
            checker = check.Checker(client, settings)
            async for obs in checker.check_many([link.url for link in site.links]):
                probe = await checker.probe(obs.final_url or obs.url) if wants_probe(obs) else None
                out.append((obs, titles[obs.url], probe))
        return out

    path.parent.mkdir(parents=True, exist_ok=True)
    server = Server(site, path.with_suffix(".site"))
    check.read_target = recording
    try:
        cases = asyncio.run(run())
    finally:
        check.read_target = original
        server.stop()
    path.write_bytes(pickle.dumps({"cases": cases, "bodies": bodies}))


def _clear_caches(*modules: object) -> None:
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--passes", type=int, default=7)
    p.add_argument("--src", type=Path, help="import monitor from this checkout")
    p.add_argument("--refresh", action="store_true", help="capture the answers again")
    args = p.parse_args()
    sys.path.insert(0, str(BENCH.parent))
    if args.refresh or not CAPTURE.exists():
        capture(CAPTURE)
    if args.src:
        sys.path.insert(0, str(args.src.resolve()))
        for name in [m for m in sys.modules if m == "monitor" or m.startswith("monitor.")]:
            del sys.modules[name]
    from monitor import classify, target
    from monitor.classify import classify as judge, next_state

    data = pickle.loads(CAPTURE.read_bytes())
    cases, bodies = data["cases"], data["bodies"]
    verdicts = [judge(obs, title=title, probe=probe) for obs, title, probe in cases]
    previous = [next_state(None, v, obs) for v, (obs, _, _) in zip(verdicts, cases)]

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        best = float("inf")
        for _ in range(args.passes):
            _clear_caches(classify)
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
        return best

    cold = timed(lambda: [judge(o, title=t, probe=pr) for o, t, pr in cases])
    weekly = timed(lambda: [judge(o, title=t, probe=pr, previous=s)
                            for (o, t, pr), s in zip(cases, previous)])
    read = timed(lambda: [target.read_target(b, ct) for b, ct in bodies])
    n = len(cases)
    print(f"monitor from {Path(classify.__file__).parent.parent}")
    print(f"{n} links, {len(bodies)} bodies read, best of {args.passes} passes (CPU time)")
    print(f"classify, first run:  {cold / n * 1000:.3f} ms per link")
    print(f"classify, weekly run: {weekly / n * 1000:.3f} ms per link")
    print(f"read_target:          {read / len(bodies) * 1000:.3f} ms per body")
    # Every field of every verdict: two versions must print the same digest.
    digest = hashlib.sha1(repr(sorted(map(repr, verdicts))).encode()).hexdigest()[:12]
    reasons = Counter(f"{v.status}/{v.reason}" for v in verdicts)
    print(f"verdicts digest {digest}: " + ", ".join(f"{k} {n}" for k, n in sorted(reasons.items())))


if __name__ == "__main__":
    main()
