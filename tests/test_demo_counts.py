"""The demo's week on every surface at once (review 13 #2, #3, #13): the
terminal of `demo` and of `check`, the saved report, its JSON, the mail and
the README's quotes give the same figures. Real: the bundled simulated site
and mail sink on loopback, the CLI as a subprocess.
"""

from __future__ import annotations

import email
import json
import re
from email.policy import default as default_policy
from html import unescape
from pathlib import Path

from click.testing import CliRunner

from monitor.demo.run import demo_session
from monitor.demo.serve import write_live_config
from simkit import run_monitor

README = Path(__file__).resolve().parent.parent / "README.md"


def _badges_new(html: str, text: str) -> tuple[int, int]:
    """Rows badged NEW in a report's HTML and in its text part."""
    return (len(re.findall(r"<b[^>]*>NEW[^<]*</b>", unescape(html))),
            len(re.findall(r"\n *\[[A-Z ]+, NEW[^\]]*\]", text)))


async def test_the_demo_gives_one_set_of_figures_everywhere(tmp_path: Path) -> None:
    import click

    from monitor.cli import _echo_demo

    async with demo_session(tmp_path / "demo") as (result, running):
        data = json.loads(result.report_json.read_text(encoding="utf-8"))
        c = data["counts"]
        # `demo`'s line: the report's figures ("62 ok · 5 moved ..."), adding up to the links checked
        printed = CliRunner().invoke(click.command()(lambda: _echo_demo(result, tmp_path / "demo")))
        line = next(l for l in printed.output.splitlines() if " checked: " in l)
        said = dict((s, int(n)) for n, s in re.findall(
            r"(\d+) (ok|moved|expired|error|blocked|private address|drifted)\b", line.split(" checked: ", 1)[1]))
        # the private addresses said apart from the blocked, as the report does (review 15 #2)
        assert said.pop("private address") == c["private_address"] == 1, line
        said["blocked"] += c["private_address"]
        assert said == {s: c[s] for s in said} and sum(said.values()) == c["checked"], line
        assert f"the {c['checked']} checked: " in line and "each address once" not in line

        # run 2's report, mail and JSON: every row counted new says NEW
        html = result.report_html.read_text(encoding="utf-8")
        message = email.message_from_bytes(result.messages[-1].read_bytes(), policy=default_policy)
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        mail_html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
        assert c["new"] == 8
        assert _badges_new(html, text) == (c["new"], c["new"])
        assert _badges_new(mail_html, text)[0] == c["new"]
        # the Pages table's "New" lands on each page's first new row
        for target in re.findall(r'href="#(new-[^"]+)"', html):
            assert html.count(f'id="{target}"') == 1, target
        # a malformed link found in the first run dates from it, as the rest (review 13 #13)
        warm = next(p for g in data["needs_fixing"] for s in g["sections"] for e in s["entries"]
                    for p in e["problems"] if p["link"]["url"] == "http://")
        assert warm["since"] == data["previous_run"]["started_at"]
        assert "or earlier" not in html

        # `check` (run 3) against the report of the same run, as `demo --serve` invites
        live = str(write_live_config(running.settings, tmp_path / "demo"))
        code, out, err = await run_monitor("check", "--config", live)
        assert code == 0, err
        code, _, err = await run_monitor("report", "--config", live, "--run", "3")
        assert code == 0, err
        three = json.loads(next((tmp_path / "demo" / "reports").glob("report-*-run-3.json"))
                           .read_text(encoding="utf-8"))
        fixing, = re.findall(r"\nNEEDS FIXING: (\d+) problems \(\d+ links to \d+ URLs\)\n", out)
        person, = re.findall(r"\nNEEDS A PERSON: (\d+) problems? \(", out)
        assert (int(fixing), int(person)) == (three["counts"]["needs_fixing"], three["counts"]["needs_a_person"])
        assert int(fixing) == 22  # the README's figure
        # the last line's statuses are the report's, and add up
        last = out.rstrip().splitlines()[-1]
        assert last.startswith("run 3: 105 links: 90 checked (53 URLs), 15 not checked; the 90 checked: "), last
        c3 = {**three["counts"], "blocked": three["counts"]["blocked"] - three["counts"]["private_address"]}
        for status in ("ok", "moved", "expired", "error", "blocked", "drifted"):
            assert f" {c3[status]} {status}" in last, (status, last)
        assert f", {three['counts']['private_address']} private address, " in last, last

    # the README quotes the output as it is
    readme = README.read_text(encoding="utf-8")
    counts = readme[readme.index("**What the counts mean**"):]
    counts = counts[:counts.index("\n\n")]
    quoted = re.findall(r'"((?:NEEDS FIXING|EXPIRED|run 3): [^"]+)"', " ".join(counts.split()))
    assert len(quoted) >= 3, counts
    for quote in quoted:
        assert quote.rstrip(". ") in " ".join(out.split()), quote
