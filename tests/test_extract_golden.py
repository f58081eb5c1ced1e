"""extract: the whole output of `extract_page` pinned for a corpus of pages.

`extract_page` is tuned for speed (per-page caches, cheap pre-checks before
regular expressions); none of that may change a single field. This test
compares every field of every `Citation`, `EntryContext` and `PageExtract`
with what the code gave when the golden file was written, for:

- the demo pages and tests/fixtures/pages/*.html (read from disk);
- five pages of the benchmark's synthetic site (stored: `bench/` may change);
- the HTML the extraction tests pass to `extract_page` (recorded from a run of
  tests/test_extract.py, test_textfragment.py, test_sites.py,
  test_vocabulary.py, test_page_anchors.py and tests/hostile/, at most a few
  inputs per test, none over 25 KB).

After a deliberate change of what extraction gives, rewrite the expected
outputs (the inputs stay) and read the diff of the JSON file:

    python tests/test_extract_golden.py --regenerate
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent
GOLDEN = HERE / "fixtures" / "extract_golden.json"

sys.path.insert(0, str(ROOT))  # run as a script: `monitor` from this checkout

import monitor  # noqa: E402
from monitor.decode import decode_html  # noqa: E402
from monitor.extract import PageExtract, extract_page  # noqa: E402
from monitor.types import Citation, EntryContext  # noqa: E402


def plain(value: Any) -> Any:
    """A JSON form that tells every field and type apart that a reader of the
    output could: an enum member is not its string, a date not its text.
    A dataclass is its type's name then its fields' values in order (the
    names once, in `FIELDS`: the file stays small)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__,
                *(plain(getattr(value, f.name)) for f in dataclasses.fields(value))]
    if isinstance(value, enum.Enum):
        return f"<{type(value).__name__}.{value.name}>"
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if value is None or type(value) in (str, int, bool):
        return value
    raise TypeError(f"unexpected {type(value).__name__} in an extract: {value!r}")


def html_of(case: dict[str, Any]) -> str:
    if "file" in case:
        return decode_html((ROOT / case["file"]).read_bytes())
    return case["html"]


FIELDS = {cls.__name__: [f.name for f in dataclasses.fields(cls)]
          for cls in (PageExtract, Citation, EntryContext)}
"""The order of the values `plain` lists for each type."""


def load() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


DATA = load()
CASES: list[dict[str, Any]] = DATA["cases"]


def test_the_types_have_the_fields_the_golden_file_lists() -> None:
    assert DATA["fields"] == FIELDS


def test_the_golden_file_has_the_corpus() -> None:
    files = {case["file"] for case in CASES if "file" in case}
    demo = Path(monitor.__file__).parent / "demo" / "pages"
    on_disk = {str(p.relative_to(ROOT)) for p in
               [*demo.glob("*.html"), *(HERE / "fixtures" / "pages").glob("*.html")]}
    assert files == on_disk
    assert sum(case["name"].startswith("bench/") for case in CASES) == 5
    assert len(CASES) > 200


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_extract_page_gives_the_golden_output(case: dict[str, Any]) -> None:
    assert plain(extract_page(html_of(case), case["url"])) == case["expected"]


def regenerate() -> None:
    """Rewrite each case's expected output from the code as it is now."""
    cases = load()["cases"]
    for case in cases:
        case["expected"] = plain(extract_page(html_of(case), case["url"]))
    write(cases)


def write(cases: list[dict[str, Any]]) -> None:
    """One case a line, so that a diff shows which pages changed."""
    lines = ",\n".join(json.dumps(case, ensure_ascii=False, separators=(",", ":"))
                       for case in cases)
    GOLDEN.write_text('{"fields":' + json.dumps(FIELDS) + ',\n"cases":[\n' + lines + "\n]}\n",
                      encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(__doc__)
    regenerate()
