"""Command-line mistakes: exit 2 and one line naming the file and the key,
said before any work is done (no database created, no audit run)."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver

# A page on loopback with no links: an audit of it is quick and offline. Port
# 9 (where nothing listens) until the module's server starts: a check of
# which not one page could be fetched exits 1, so the page is served.
PAGE = ('[[pages]]\nurl = "http://127.0.0.1:9/a.html"\n'
        '[checker]\nallow_private_networks = ["127.0.0.1/32"]\ntimeout = 1\nretries = 0\n')
PORT = 9


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><head><title>A page</title></head><body><p>No links.</p></body></html>"
        if self.path == "/dead-link.html":  # a page with something to mail its owner
            body = b'<html><head><title>B</title></head><body><p><a href="/gone">Gone</a></p></body></html>'
        self.send_response(404 if self.path == "/gone" else 200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module", autouse=True)
def served_page() -> Iterator[None]:
    global PAGE, PORT
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = PAGE, PORT
    PORT = server.server_address[1]
    PAGE = PAGE.replace("127.0.0.1:9/", f"127.0.0.1:{PORT}/")
    yield
    PAGE, PORT = before
    server.shutdown()
    server.server_close()


def monitor(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *args], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env={**os.environ, **(env or {})},
    )
    return result.returncode, result.stdout, result.stderr


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(PAGE + f'[database]\npath = "{tmp_path / "m.db"}"\n' + extra, encoding="utf-8")
    return path


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", [["run"], ["serve"]])
def test_unset_smtp_password_is_said_before_the_audit(tmp_path: Path, command: list[str]) -> None:
    """Was: `run` audited, rendered, queued, then exit 1 on the missing variable."""
    path = config(tmp_path, f'[report]\ndir = "{tmp_path / "out"}"\n'
                            '[email]\nusername = "bob"\npassword_env = "MONITOR_TEST_UNSET_PW"\n'
                            'sender = "monitor@sclero.org"\nrecipients = ["webmaster@sclero.org"]\n')
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_TEST_UNSET_PW"}
    result = subprocess.run([sys.executable, "-m", "monitor", *command, "--config", str(path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert str(path) in line and "email.password_env" in line and "MONITOR_TEST_UNSET_PW" in line
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "out").exists()


def test_smtp_password_not_needed_when_mail_is_off(tmp_path: Path) -> None:
    """Also with a login configured: was exit 1 after the audit (the weekly
    job asked for the password though nothing was to be sent)."""
    path = config(tmp_path, f'[report]\ndir = "{tmp_path / "out"}"\n'
                            '[email]\nenabled = false\nusername = "bob"\n'
                            'password_env = "MONITOR_TEST_UNSET_PW"\n')
    code, out, err = monitor(tmp_path, "run", "--config", str(path),
                             env={"MONITOR_TEST_UNSET_PW": ""})
    assert code == 0, err
    assert "mail:   off ([email] enabled = false), nothing sent" in out  # was silent


def test_report_send_without_smtp_password_renders_nothing(tmp_path: Path) -> None:
    """Was: the report was rendered and queued, then exit 1."""
    path = config(tmp_path, f'[report]\ndir = "{tmp_path / "out"}"\n'
                            '[email]\nusername = "bob"\npassword_env = "MONITOR_TEST_UNSET_PW"\n'
                            'sender = "monitor@sclero.org"\nrecipients = ["webmaster@sclero.org"]\n')
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    code, _, err = monitor(tmp_path, "report", "--config", str(path), "--send",
                           env={"MONITOR_TEST_UNSET_PW": ""})
    assert code == 2, err
    assert "email.password_env" in one_line(err)
    assert not (tmp_path / "out").exists()
    code, _, err = monitor(tmp_path, "report", "--config", str(path))  # no mail: no password needed
    assert code == 0, err


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_unusable_report_dir_is_said_before_the_audit(tmp_path: Path, where: str, command: str) -> None:
    """Was: the whole audit ran, then exit 1 with FileExistsError / NotADirectoryError."""
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" if where == "file" else tmp_path / "a_file" / "out"
    path = config(tmp_path, f'[report]\ndir = "{out}"\n[email]\nenabled = false\n')
    code, _, err = monitor(tmp_path, command, "--config", str(path))
    assert code == 2, err
    line = one_line(err)
    assert str(path) in line and "report.dir" in line and "not a directory" in line
    assert not (tmp_path / "m.db").exists()


needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")


@needs_proc
@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_report_dir_the_system_will_not_create_is_said_before_the_audit(tmp_path: Path, command: str) -> None:
    """Permission bits let root through: /proc/reports passed the check, the
    audit ran, then "FileNotFoundError: [Errno 2] ... '/proc/reports'", exit 1, no key."""
    path = config(tmp_path, '[report]\ndir = "/proc/monitor-test-reports"\n[email]\nenabled = false\n')
    code, _, err = monitor(tmp_path, command, "--config", str(path))
    assert code == 2, err
    line = one_line(err)
    assert line.startswith(f"monitor: {path}: report.dir: cannot create /proc/monitor-test-reports"), line
    assert not (tmp_path / "m.db").exists()


@needs_proc
def test_a_database_folder_the_system_will_not_create_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(PAGE + '[database]\npath = "/proc/monitor-test/m.db"\n', encoding="utf-8")
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 2, err
    assert one_line(err).startswith(f"monitor: {path}: database.path: cannot create /proc/monitor-test"), err


def test_the_folder_check_leaves_nothing_behind(tmp_path: Path) -> None:
    from monitor.cli import dir_problem

    assert dir_problem(tmp_path / "a" / "b" / "c") is None
    assert dir_problem(tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # neither the folders it made nor its probe file
    (tmp_path / "f").write_text("x")
    assert dir_problem(tmp_path / "f" / "b") == f"cannot create {tmp_path / 'f' / 'b'}: {tmp_path / 'f'} is not a directory"
    assert dir_problem(tmp_path / "f") == f"{tmp_path / 'f'} is not a directory"


@pytest.mark.parametrize(("page", "said"), [
    ("http://127.0.0.1:9/a.html", None),  # the configured page: nothing to say
    ("http://127.0.0.1:9/aa.html", "; did you mean http://127.0.0.1:9/a.html?"),
    ("https://127.0.0.1:9/a.html", "; did you mean http://127.0.0.1:9/a.html?"),
    ("http://elsewhere.invalid/completely/other/index.html", ""),
])
def test_a_page_given_that_is_not_configured_is_audited_with_a_warning(
        tmp_path: Path, page: str, said: str | None) -> None:
    """Was: audited without a word (a typo, a 404, exit 0), under its own title."""
    page, said = page.replace(":9/", f":{PORT}/"), said and said.replace(":9/", f":{PORT}/")
    path = config(tmp_path)
    code, _, err = monitor(tmp_path, "check", "--config", str(path), "--page", page, "--format", "json")
    # the contract accepts any URL; one that cannot be fetched (no TLS there, no such host) is
    # the whole audit here: exit 1, said last
    read = page.startswith(f"http://127.0.0.1:{PORT}/")
    assert code == (0 if read else 1), err
    warning = f"--page {page}: not a [[pages]] url of {path}; audited anyway, under its own title"
    if said is None:
        assert "--page" not in err, err
    else:
        assert f"\n{warning}{said}\n" in f"\n{err}", err


@pytest.mark.parametrize(("out", "said"), [
    ("a_file/r", "not a directory"),
    # `--out "$DIR"` with DIR unset wrote the report and an index.html
    # into the working directory (Path("") is ".")
    ("", "--out: is empty: give the folder to write the report in (. for the working directory)"),
    ("  ", "--out: is empty"),
])
def test_unusable_report_out_is_a_usage_error(tmp_path: Path, out: str, said: str) -> None:
    path = config(tmp_path, '[email]\nenabled = false\n')
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    (tmp_path / "a_file").write_text("x")
    code, _, err = monitor(tmp_path, "report", "--config", str(path), "--out", out)
    assert code == 2, err
    assert "--out" in one_line(err) and said in err
    assert not list(tmp_path.glob("*.html")), "nothing written in the working directory"


def test_report_out_names_the_html_file_or_a_folder(tmp_path: Path) -> None:
    """Walkthrough 9 #10: `report --out weekly.html` made a folder weekly.html."""
    path = config(tmp_path, '[email]\nenabled = false\n')
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    target = tmp_path / "out" / "weekly.html"
    for _ in range(2):  # written again next week: replaced, not refused
        code, out, err = monitor(tmp_path, "report", "--config", str(path), "--out", str(target))
        assert code == 0, err
        assert target.is_file() and (tmp_path / "out" / "weekly.json").is_file()
        assert f"report: {target}\n" in out and f"data:   {tmp_path / 'out' / 'weekly.json'}\n" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["weekly.html", "weekly.json"]
    # An existing folder stays a folder, whatever its name.
    folder = tmp_path / "kept.html"
    folder.mkdir()
    code, out, err = monitor(tmp_path, "report", "--config", str(path), "--out", str(folder))
    assert code == 0, err
    assert (folder / "index.html").is_file() and list(folder.glob("report-*-run-1.html"))


def test_report_out_file_writes_both_files_or_neither(tmp_path: Path) -> None:
    """Review 9 #7: with a folder weekly.json in the way, `--out weekly.html`
    wrote weekly.html, left weekly.json.tmp, and said the report was not
    saved. Now: neither file, no .tmp, exit 1 naming the folder in the way;
    last week's weekly.html is kept as it was."""
    path = config(tmp_path, '[email]\nenabled = false\n')
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    out = tmp_path / "single"
    out.mkdir()
    (out / "weekly.json").mkdir()
    code, _, err = monitor(tmp_path, "report", "--config", str(path), "--out", str(out / "weekly.html"))
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and "cannot save the report" in err, err
    assert f"{out / 'weekly.json'}: Is a directory" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["weekly.json"]
    (out / "weekly.html").write_text("last week")
    code, _, err = monitor(tmp_path, "report", "--config", str(path), "--out", str(out / "weekly.html"))
    assert code == 1, err
    assert sorted(p.name for p in out.iterdir()) == ["weekly.html", "weekly.json"]
    assert (out / "weekly.html").read_text() == "last week"
    (out / "weekly.json").rmdir()
    code, _, err = monitor(tmp_path, "report", "--config", str(path), "--out", str(out / "weekly.html"))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["weekly.html", "weekly.json"]
    assert (out / "weekly.html").read_text() != "last week"


@pytest.mark.parametrize("run_id", ["0", "-1", "99999999999999999999999"])
def test_impossible_run_ids_are_usage_errors(tmp_path: Path, run_id: str) -> None:
    """Was: exit 1 "there is no run 0", or an OverflowError (exit 1)."""
    path = config(tmp_path)
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    code, _, err = monitor(tmp_path, "report", "--config", str(path), f"--run={run_id}")
    assert code == 2, err
    assert "--run" in err and "Traceback" not in err and "OverflowError" not in err


def test_every_option_of_every_command_says_what_it_does() -> None:
    """`history --format` had no help text."""
    import click

    from monitor.cli import cli

    bare = [f"{name} {opt.opts[0]}" for name, command in cli.commands.items() for opt in command.params
            if isinstance(opt, click.Option) and not opt.help and opt.name != "help"]
    assert bare == []


@pytest.mark.parametrize(("command", "said", "unsaid"), [
    ("report", ["--run ID", "by its number"], ["9223372036854775807", "<=x<="]),
    ("serve", ["reports", "dashboard", "/ and /reports/ lead to /reports/index.html"],
     ["opens the latest"]),  # both redirect to the list
    ("history", ["json: every check with its redirects"], []),
    # The README's paths (walkthrough 9 #12): cron has no venv on its PATH.
    ("run", ["/opt/citation-monitor/venv/bin/monitor run --config /etc/citation-monitor/monitor.toml",
             "Exits 1 when a message could not be delivered"], ["/etc/monitor/"]),
    ("report", ["ending in .html is the HTML file itself"], ["Directory for the HTML"]),
])
def test_help_in_plain_words(command: str, said: list[str], unsaid: list[str]) -> None:
    from click.testing import CliRunner

    from monitor.cli import cli

    text = " ".join(CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output.split())
    assert all(words in text for words in said) and not any(words in text for words in unsaid), text


@pytest.mark.parametrize("width", [80, 60])
def test_the_command_list_is_not_clipped(width: int) -> None:
    """Was: "check    One audit now: fetch the pages, extract, check, classify,..."
    (click clips a docstring's first sentence to fit)."""
    from click.testing import CliRunner

    from monitor.cli import cli

    text = CliRunner().invoke(cli, ["--help"], terminal_width=width).output
    listed = text.split("Commands:\n", 1)[1]
    assert "..." not in listed, listed
    assert all(f"  {name} " in listed for name in cli.commands)


@pytest.mark.parametrize("url", ["www.sclero.org/scleroderma/", "not-a-url", ""])
def test_history_of_a_non_url_is_a_usage_error(tmp_path: Path, url: str) -> None:
    """Was: exit 0, "not-a-url: never checked"."""
    path = config(tmp_path)
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    code, out, err = monitor(tmp_path, "history", url, "--config", str(path))
    assert code == 2, out + err
    assert "http" in one_line(err) and "never checked" not in out


def test_debug_keeps_the_exit_status_of_a_config_error(tmp_path: Path) -> None:
    """Was: with --debug, a configuration error was a traceback and exit 1."""
    code, _, err = monitor(tmp_path, "--debug", "check", "--config", str(tmp_path / "missing.toml"))
    assert code == 2, err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("monitor: ")
    assert "file not found" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("where", ["a_dir", "a_file/m.db"])
def test_unusable_database_path_names_the_key(tmp_path: Path, where: str) -> None:
    """Was: exit 1 "cannot create the database .../m.db: File exists", no key named."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    path = tmp_path / "monitor.toml"
    path.write_text(PAGE + f'[database]\npath = "{tmp_path / where}"\n', encoding="utf-8")
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 2, err
    line = one_line(err)
    assert str(path) in line and "database.path" in line and "directory" in line


@pytest.mark.parametrize("args", [("check",), ("run",), ("report",), ("serve",),
                                  ("history", "http://127.0.0.1:9/a.html")])
def test_a_database_path_that_is_not_sqlite_names_the_file_and_key(
        tmp_path: Path, args: tuple[str, ...]) -> None:
    """Walkthrough 9 #16: was exit 1 "monitor: .../monitor.db is not a SQLite
    database (file is not a database)", no file or key named."""
    (tmp_path / "notes.db").write_text("my notes, not a database\n" * 10, encoding="utf-8")
    path = tmp_path / "monitor.toml"
    path.write_text(PAGE + f'[database]\npath = "{tmp_path / "notes.db"}"\n[email]\nenabled = false\n',
                    encoding="utf-8")
    code, _, err = monitor(tmp_path, *args, "--config", str(path))
    assert code == 2, err
    line = one_line(err)
    assert f"{path}: database.path: {tmp_path / 'notes.db'} is a file of another kind" in line, line
    assert (tmp_path / "notes.db").read_text(encoding="utf-8").startswith("my notes")


@pytest.mark.parametrize("args", [("check",), ("report",), ("history", "http://127.0.0.1:9/a.html")])
def test_another_programs_sqlite_database_is_refused_untouched(tmp_path: Path, args: tuple[str, ...]) -> None:
    """robust9 #6: `database.path` naming the CMS's SQLite file: check added
    the monitor's ten tables to it and exited 0."""
    import sqlite3

    cms = tmp_path / "cms.sqlite"
    db = sqlite3.connect(cms)
    db.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                     "INSERT INTO customers (name) VALUES ('Ada');")
    db.close()
    before = cms.read_bytes()
    path = tmp_path / "monitor.toml"
    path.write_text(PAGE + f'[database]\npath = "{cms}"\n[email]\nenabled = false\n', encoding="utf-8")
    code, _, err = monitor(tmp_path, *args, "--config", str(path))
    assert code == 2, err
    line = one_line(err)
    assert f"{path}: database.path: {cms} is another program's SQLite database (tables: customers)" in line, line
    assert cms.read_bytes() == before


@pytest.mark.parametrize("args", [("check",), ("report",)])
def test_a_database_path_that_is_a_device_names_the_key(tmp_path: Path, args: tuple[str, ...]) -> None:
    """robust9 #14: /dev/null was "database /dev/null: disk I/O error", exit 1."""
    path = tmp_path / "monitor.toml"
    path.write_text(PAGE + '[database]\npath = "/dev/null"\n[email]\nenabled = false\n', encoding="utf-8")
    code, _, err = monitor(tmp_path, *args, "--config", str(path))
    assert code == 2, err
    assert f"{path}: database.path: /dev/null is not a regular file" in one_line(err)


def _database_beside_its_config(tmp_path: Path, written: str) -> tuple[Path, Path, Path]:
    """site/conf/monitor.toml saying database.path = `written`, a database at
    site/conf/m.db (made by a real audit) and an empty folder to run from:
    (config, database, elsewhere)."""
    conf, elsewhere = tmp_path / "site" / "conf", tmp_path / "elsewhere"
    conf.mkdir(parents=True)
    elsewhere.mkdir()
    path = conf / "monitor.toml"
    text = PAGE + '[database]\npath = "{}"\n[email]\nenabled = false\n'
    path.write_text(text.format("m.db"), encoding="utf-8")
    code, _, err = monitor(conf, "check", "--config", str(path))
    assert code == 0 and (conf / "m.db").is_file(), err
    path.write_text(text.format(written), encoding="utf-8")
    return path, conf / "m.db", elsewhere


@pytest.mark.parametrize("args", [("history", "http://127.0.0.1:9/a.html"), ("report",), ("check",), ("run",)])
@pytest.mark.parametrize(("written", "run_from"), [("conf/m.db", "site"), ("var/m.db", None)])
def test_a_relative_database_found_beside_the_config_is_named_not_remade(
        tmp_path: Path, args: tuple[str, ...], written: str, run_from: str | None) -> None:
    """Was (history, report): "no database at conf/m.db yet ...: `monitor check`
    or `monitor run` makes it", advice that starts a second, empty history;
    check and run did just that, silently."""
    path, db, elsewhere = _database_beside_its_config(tmp_path, written)
    code, out, err = monitor(elsewhere, *args, "--config", str(path))
    assert code == 2, out + err
    line = one_line(err)
    assert f"no database at {elsewhere / written}, but there is one at {db}" in line, line
    assert f'database.path "{written}"' in line and str(path) in line
    if run_from:
        assert f"run the command from {tmp_path / run_from}, or make database.path absolute" in line, line
    else:
        assert f'make database.path absolute ("{db}")' in line and "run the command from" not in line, line
    assert "monitor check" not in line and "monitor run" not in line
    assert list(elsewhere.iterdir()) == []  # no second database


def test_a_relative_database_nowhere_is_said_with_its_absolute_path(tmp_path: Path) -> None:
    path, _, elsewhere = _database_beside_its_config(tmp_path, "var/other.db")
    code, _, err = monitor(elsewhere, "report", "--config", str(path))
    assert code == 1, err
    assert f"no database at var/other.db (from the working directory: {elsewhere / 'var/other.db'}) yet" in err


@pytest.mark.parametrize(("cwd", "config", "written", "found", "run_from"), [
    ("site", "conf/monitor.toml", "conf/m.db", None, None),  # there from the cwd: nothing to say
    ("site/conf", "monitor.toml", "m.db", None, None),
    ("other", "../site/conf/monitor.toml", "conf/m.db", "site/conf/m.db", "site"),  # the config's parent's layout
    ("other", "../site/conf/monitor.toml", "m.db", "site/conf/m.db", "site/conf"),  # relative to its folder
    ("other", "../site/conf/monitor.toml", "x/m.db", "site/conf/m.db", None),  # its name, beside it
    ("other", "../site/conf/monitor.toml", "nope.db", None, None),  # nothing anywhere: the plain message
    ("other", "../site/conf/monitor.toml", "conf", None, None),  # a folder is not a database
])
def test_misplaced_database_looks_beside_the_config_only(
        tmp_path: Path, cwd: str, config: str, written: str, found: str | None, run_from: str | None) -> None:
    from monitor.cli import misplaced_database

    (tmp_path / "site" / "conf" / "conf").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "site" / "conf" / "m.db").write_bytes(b"")
    said = misplaced_database(written, Path(config), cwd=tmp_path / cwd)
    if found is None:
        assert said is None
        return
    assert said is not None and f"there is one at {tmp_path / found}:" in said, said
    if run_from:
        assert f"run the command from {tmp_path / run_from}," in said, said
    else:
        assert "run the command from" not in said
    assert misplaced_database(str(tmp_path / "site/conf/nope.db"), Path(config), cwd=tmp_path) is None

@pytest.mark.parametrize("args", [("report",), ("run",)])
def test_a_relative_report_dir_found_beside_the_config_is_named_not_remade(
        tmp_path: Path, args: tuple[str, ...]) -> None:
    """Run from another folder, `report.dir = "reports"` wrote this week's
    report into a second, new folder: its index of reports started again
    and the earlier weeks were out of the webmaster's sight."""
    conf, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (conf / "reports").mkdir(parents=True)
    (conf / "reports" / "index.html").write_text("earlier weeks", encoding="utf-8")
    elsewhere.mkdir()
    path = conf / "monitor.toml"
    path.write_text(PAGE + f'[database]\npath = "{conf / "m.db"}"\n[report]\ndir = "reports"\n'
                    '[email]\nenabled = false\n', encoding="utf-8")
    code, _, err = monitor(conf, "check", "--config", str(path))  # from the right folder: fine
    assert code == 0, err
    code, out, err = monitor(elsewhere, *args, "--config", str(path))
    assert code == 2, out + err
    line = one_line(err)
    assert line.startswith(f"monitor: {path}: report.dir \"reports\" is read from the working directory"), line
    assert f"no folder of reports at {elsewhere / 'reports'}, but there is one at {conf / 'reports'}" in line
    assert f"run the command from {conf}, or make report.dir absolute" in line
    assert list(elsewhere.iterdir()) == []  # no second folder of reports
    code, _, err = monitor(conf, "report", "--config", str(path))
    assert code == 0 and (conf / "reports" / "index.html").read_text(encoding="utf-8") != "earlier weeks", err


@pytest.mark.parametrize("section", ["checker", "email"])
def test_a_relative_ca_file_beside_the_config_is_named(tmp_path: Path, section: str) -> None:
    """Was: "checker.ca_file: no such file: ca.pem", though it sat beside the config."""
    conf, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    conf.mkdir()
    elsewhere.mkdir()
    (conf / "ca.pem").write_text("not read here", encoding="utf-8")
    path = conf / "monitor.toml"
    text = PAGE if section == "checker" else PAGE.replace("[checker]", '[email]\nca_file = "ca.pem"\n[checker]')
    if section == "checker":
        text += 'ca_file = "ca.pem"\n'
    path.write_text(text, encoding="utf-8")
    code, _, err = monitor(elsewhere, "check", "--config", str(path))
    assert code == 2, err
    line = one_line(err)
    assert f"{section}.ca_file: \"ca.pem\" is read from the working directory: no file at {elsewhere / 'ca.pem'}, " \
           f"but there is one at {conf / 'ca.pem'}: run the command from {conf}, or make {section}.ca_file absolute" in line
    (conf / "ca.pem").unlink()
    code, _, err = monitor(elsewhere, "check", "--config", str(path))
    assert code == 2 and f"{section}.ca_file: no such file: ca.pem" in one_line(err)


# -- what the terminal says after an audit ------------------------------------------


async def test_pages_that_could_not_be_fetched_are_named_on_stderr(tmp_path: Path, aiohttp_server: Any) -> None:
    """Was: "run 1: 1 URLs on 2 pages checked", exit 0; only WARNING log lines said it."""
    from aiohttp import web

    from simkit import run_monitor

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>P</title></head><body><a href='/ok'>x</a></body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/page.html", page)
    app.router.add_get("/ok", page)
    server = await aiohttp_server(app)
    good, typo = (f"http://127.0.0.1:{server.port}/{name}" for name in ("page.html", "pgae.html"))
    path = tmp_path / "monitor.toml"
    path.write_text(f'[[pages]]\nurl = "{good}"\n[[pages]]\nurl = "{typo}"\n'
                    '[checker]\nallow_private_networks = ["127.0.0.1/32"]\ntimeout = 2\nretries = 0\n'
                    f'soft404_probe = false\n[database]\npath = "{tmp_path / "m.db"}"\n'
                    f'[report]\ndir = "{tmp_path / "out"}"\n[email]\nenabled = false\n', encoding="utf-8")
    said = f"  {typo}: HTTP 404"
    for args in (["check", "--format", "json"], ["run"]):
        code, out, err = await run_monitor(*args, "--config", str(path))
        assert code == 0, err  # flagged pages are results: the command did its job
        assert "1 of 2 pages could not be fetched; its links were not checked:" in err, err
        line = next(line for line in err.splitlines() if line.startswith(said))
        assert line.endswith(f"(check its [[pages]] url in {path})"), line
        assert err.count(typo) == 1, err  # said once, not also as a WARNING log line
    assert "run 2: 1 link checked (1 URL) on 1 of 2 pages in" in out


async def test_a_page_whose_address_redirects_permanently_is_named_with_where_to_update_it(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """Finding 16 (walkthrough 8): a [[pages]] url answering 301 was followed
    silently, while the same redirect on a cited link is "moved". Said on
    stderr by check and run, in check's JSON (pages[].moved_to) and in the
    report; a 302 is not a move and says nothing."""
    import json

    from aiohttp import web

    from simkit import run_monitor

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Raynaud's</title></head><body><a href='/ok'>x</a>"
                                 "</body></html>", content_type="text/html")

    def redirect(code: int) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(status=code, headers={"Location": "/new/raynauds.html"})
        return handler

    app = web.Application()
    for path in ("/new/raynauds.html", "/direct.html", "/ok"):
        app.router.add_get(path, page)
    app.router.add_get("/raynauds.html", redirect(301))
    app.router.add_get("/temporary.html", redirect(302))
    server = await aiohttp_server(app)
    old, temporary, direct = (f"http://127.0.0.1:{server.port}/{name}"
                              for name in ("raynauds.html", "temporary.html", "direct.html"))
    new = f"http://127.0.0.1:{server.port}/new/raynauds.html"
    path = tmp_path / "monitor.toml"
    path.write_text("".join(f'[[pages]]\nurl = "{url}"\n' for url in (old, temporary, direct))
                    + '[checker]\nallow_private_networks = ["127.0.0.1/32"]\ntimeout = 2\nretries = 0\n'
                    f'soft404_probe = false\n[database]\npath = "{tmp_path / "m.db"}"\n'
                    f'[report]\ndir = "{tmp_path / "out"}"\n[email]\nenabled = false\n', encoding="utf-8")
    said = f"{old}: permanently redirects to {new}; update its [[pages]] url in {path}"
    for args in (["check", "--format", "json"], ["run"]):
        code, out, err = await run_monitor(*args, "--config", str(path))
        assert code == 0, err
        assert said in err.splitlines(), err
        assert temporary not in err and direct not in err and "could not be fetched" not in err, err
        if args[0] == "check":
            pages = {p["url"]: p for p in json.loads(out)["pages"]}
            assert [pages[u]["moved_to"] for u in (old, temporary, direct)] == [new, None, None]
            assert list(pages[old])[-2:] == ["moved_to", "not_modified"]  # added after the others
    report = next((tmp_path / "out").glob("report-*.html")).read_text(encoding="utf-8")
    assert report.replace("&rsquo;", "\u2019").count(
        f"address in the monitor\u2019s configuration redirects to <a href=\"{new}\"") == 1


def test_a_page_refused_by_connect_to_names_the_key_and_file_not_the_url(tmp_path: Path,
                                                                         free_port: int) -> None:
    """Was: "the server could not be reached (DNS: name www.sclero.org not
    found: ...) (check its [[pages]] url in demo.toml)": no DNS query was
    made and the url was right (the demo's config after the demo). The
    other page is mapped, to a port where nothing listens: a failure of the
    network, so the audit runs and is recorded (review 15 #3)."""
    path = tmp_path / "demo.toml"
    path.write_text('[[pages]]\nurl = "https://www.sclero.org/a.html"\n'
                    '[[pages]]\nurl = "http://mirror.example.org/b.html"\n'
                    f'[checker]\nallow_private_networks = ["127.0.0.1/32"]\n'
                    f'[checker.connect_to]\n"*" = "refuse"\n"mirror.example.org:80" = "127.0.0.1:{free_port}"\n'
                    f'[database]\npath = "{tmp_path / "m.db"}"\n', encoding="utf-8")
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 1, err  # no page at all could be fetched: nothing was audited
    assert "  http://mirror.example.org/b.html: the server could not be reached (connection refused)" in err
    with sqlite3.connect(tmp_path / "m.db") as db:
        assert db.execute("select count(*) from runs").fetchone() == (1,)  # recorded, as before
    assert err.splitlines()[-1].startswith("monitor: no watched page could be fetched"), err
    line = next(line for line in err.splitlines() if line.startswith("  https://www.sclero.org/a.html"))
    assert line == (f'  https://www.sclero.org/a.html: refused by checker.connect_to in {path} ("*" = "refuse"): '
                    "www.sclero.org is not mapped there, so the page was not requested"), line


@pytest.mark.parametrize("demo", [True, False])
def test_a_config_whose_connect_to_refuses_every_page_stops_before_recording_a_run(
        tmp_path: Path, demo: bool) -> None:
    """Review 15 #3: `monitor check --config monitor-demo/demo.toml` (the
    demo's results-only file, "*" = "refuse") recorded a run of 0 links,
    "2 of 2 pages could not be fetched", which then led the demo's index.
    Nothing was attempted: a configuration error, said in one line."""
    path = tmp_path / "demo.toml"
    path.write_text('[[pages]]\nurl = "https://www.sclero.org/a.html"\n'
                    '[[pages]]\nurl = "https://www.sclero.org/b.html"\n'
                    '[checker.connect_to]\n"*" = "refuse"\n"other.example.org:443" = "127.0.0.1:9"\n'
                    f'[database]\npath = "{tmp_path / "m.db"}"\n[email]\nenabled = false\n', encoding="utf-8")
    if demo:
        (tmp_path / ".monitor-demo").write_text("", encoding="utf-8")
    said = (f'monitor: {path}: checker.connect_to: "*" = "refuse" refuses every page to audit '
            "(www.sclero.org not mapped there): nothing would be fetched, so no audit was recorded; ")
    for command in (["check"], ["check", "--page", "https://www.sclero.org/a.html"], ["run"]):
        code, out, err = monitor(tmp_path, *command, "--config", str(path))
        assert code == 2 and out == "", (command, err)
        assert one_line(err).startswith(said), err
        if demo:
            assert err.endswith("this file of `monitor demo` only reads the demo's results: to audit again, "
                                "run `monitor demo --serve` and use the demo-live.toml it writes\n"), err
        else:
            assert err.endswith('map each page\'s host:port there to the address to use, or remove '
                                '"*" = "refuse"\n'), err
    if (tmp_path / "m.db").exists():
        with sqlite3.connect(tmp_path / "m.db") as db:
            assert db.execute("select count(*) from runs").fetchone() == (0,)


GAI_TEXT = {socket.EAI_NONAME: "Name or service not known",
            socket.EAI_AGAIN: "Temporary failure in name resolution"}
"""glibc's words, as socket.getaddrinfo raises them."""


class FailingDNS(AbstractResolver):
    """The system resolver failing as it does: no real DNS is asked in tests."""

    def __init__(self, error: socket.gaierror) -> None:
        self.error = error

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> Any:
        raise self.error

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(("path", "overrides", "timeout", "expected"), [
    ("/status/404", {}, 2.0, "HTTP 404: the page is not at this address"),
    ("/status/410", {}, 2.0, "HTTP 410: the site says the page was removed"),
    ("/status/403", {}, 2.0, "HTTP 403: the server refused access to the monitor"),
    ("/status/503", {}, 2.0, "HTTP 503: the site had a server error (often temporary)"),
    ("/status/418", {}, 2.0, "HTTP 418: the server refused the request"),
    ("/slow?delay=5", {}, 0.3, "timed out after 0.3 s"),
    ("dns", {"connect_to": (("*", "refuse"),)}, 2.0,  # the configuration's policy, not DNS: no query made
     'refused by checker.connect_to ("*" = "refuse"): www.sclero.org is not mapped there, '
     "so the page was not requested"),
    ("special", {}, 2.0,  # the monitor's own resolver says why
     "the server could not be reached (DNS: name www.sclero.invalid not found: "
     "special-use name (RFC 6761), not looked up)"),
    ("nxdomain", {}, 2.0, "the server could not be reached (DNS: name www.sclero.org not found)"),
    ("no_dns_server", {}, 2.0,
     "the server could not be reached (DNS: Temporary failure in name resolution, looking up www.sclero.org)"),
    ("refused", {}, 2.0, "the server could not be reached (connection refused)"),
    ("/ok", {"allow_private_networks": False}, 2.0,
     "refused by policy: 127.0.0.1 -> 127.0.0.1 is not a public address (checker.allow_private_networks; "
     'to check it: allow_private_networks = ["127.0.0.1/32"] under [checker])'),
    ("tls", {}, 2.0, "the secure connection failed (TLS: certificate not trusted: "),
])
async def test_why_a_watched_page_could_not_be_fetched_is_said_for_a_webmaster(
        path: str, overrides: dict[str, Any], timeout: float, expected: str, site: Any, make_site: Any,
        tls_ca: Any, free_port: int, checker_settings: Any, client_for: Any) -> None:
    """This text is the terminal's, the JSON's pages[].error and the report's
    note on the page. Was the exception's: "ClientConnectorDNSError: Cannot
    connect to host www.sclero.org:443 ssl:default [...]", or a bare "HTTP 404"."""
    from monitor.pages import fetch_page

    url = site.url(path)
    if path == "dns":
        url = "https://www.sclero.org/scleroderma/a.html"
    elif path == "special":
        url = "https://www.sclero.invalid/scleroderma/a.html"
    elif path == "refused":
        url = f"http://127.0.0.1:{free_port}/a.html"
    elif path == "tls":  # a certificate from a CA the monitor was not told to trust
        url = (await make_site(tls_ca.server_context())).url("/ok")
    resolver: dict[str, Any] = {}
    if path in ("nxdomain", "no_dns_server"):  # what the system resolver raises (socket.getaddrinfo)
        url = "https://www.sclero.org/scleroderma/a.html"
        code = socket.EAI_NONAME if path == "nxdomain" else socket.EAI_AGAIN
        resolver["dns"] = FailingDNS(socket.gaierror(code, GAI_TEXT[code]))
    client = await client_for(checker_settings(**overrides), **resolver)
    page = await fetch_page(client, url, timeout=timeout)
    assert page.status == "error"
    assert page.error.startswith(expected) if expected.endswith(" ") else page.error == expected
    assert "Error:" not in page.error and "Cannot connect" not in page.error


# -- history of what the report lists -------------------------------------------------


def _history_database(tmp_path: Path) -> Path:
    """A real database: a run whose page lists a malformed link (line 118)
    and a retracted article that answers 200."""
    import datetime as dt

    from monitor.store import Store
    from monitor.types import Citation, LinkKind, LinkStatus, Observation, PageRecord, UrlState, Verdict

    at = dt.datetime(2026, 11, 20, 6, tzinfo=dt.timezone.utc)
    page, article = "https://www.sclero.org/raynauds.html", "https://pubmed.ncbi.nlm.nih.gov/29470812/"
    with Store.open(tmp_path / "m.db") as store:
        run = store.start_run(at)
        store.record_page(PageRecord(run_id=run.id, url=page, status="ok", http_status=200, links=2,
                                     name="Raynaud's treatments"))
        store.record_citations(run.id, page, [
            Citation(page_url=page, url=None, raw_href="http://", anchor_text="Keeping Warm", section="",
                     kind=LinkKind.CITATION, line=118, skip_reason="invalid_url"),
            Citation(page_url=page, url=article, raw_href=article, anchor_text="Oral treprostinil",
                     section="", kind=LinkKind.CITATION, line=90)])
        store.record_observations(run.id, [(
            Observation(url=article, checked_at=at, http_status=200),
            Verdict(url=article, status=LinkStatus.OK, reason="ok", notice="retracted",
                    notice_detail="PubMed links a retraction notice."),
            UrlState(url=article, status=LinkStatus.OK, reason="ok", last_checked_at=at, first_seen_at=at))])
        store.finish_run(run.id, at)
    path = tmp_path / "monitor.toml"
    path.write_text(f'[[pages]]\nurl = "{page}"\n[database]\npath = "{tmp_path / "m.db"}"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(("url", "expected"), [
    ("http://", ["http://: malformed, never requested: it is not a valid address, so nobody can open it; "
                 "fix the link on the page",
                 "  on Raynaud's treatments (https://www.sclero.org/raynauds.html): line 118",
                 "  listed since run 1 (2026-11-20)"]),
    ("https://pubmed.ncbi.nlm.nih.gov/29470812/",
     ["now: ok (retracted: the link works, but the page says the cited article was retracted; "
      "annotate or remove the entry)"]),
])
def test_history_of_what_the_report_lists(tmp_path: Path, url: str, expected: list[str]) -> None:
    """Was: "http://: never checked (not found in m.db)" of a malformed link
    the report lists; "now: ok" of a retracted article, the notice unsaid."""
    from click.testing import CliRunner

    from monitor.cli import cli

    result = CliRunner().invoke(cli, ["history", url, "--config", str(_history_database(tmp_path))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-len(expected):] == expected, result.output
    assert "never checked" not in result.output


@pytest.mark.parametrize("command", ["history", "accept"])
def test_a_typed_address_urlsplit_refuses_gets_an_answer_not_a_traceback(tmp_path: Path, command: str) -> None:
    """Was: "monitor: ValueError: Invalid IPv6 URL", exit 1 (found by helper
    fuzz14). A page may cite such an address (invalid_url): history looks it
    up; accept says it is on no page."""
    from click.testing import CliRunner

    from monitor.cli import cli

    result = CliRunner().invoke(cli, [command, "https://a[b/", "--config", str(_history_database(tmp_path))])
    assert "ValueError" not in result.output, result.output
    if command == "history":
        assert result.exit_code == 0 and "https://a[b/: never checked" in result.output, result.output
    else:
        assert result.exit_code == 2 and "https://a[b/: not on any page of the latest audit" in result.output


def test_history_json_of_a_link_never_requested_says_where_and_why(tmp_path: Path) -> None:
    """The text said it; the JSON gave only "observations": []."""
    import json

    from click.testing import CliRunner

    from monitor.cli import cli

    config = _history_database(tmp_path)
    result = CliRunner().invoke(cli, ["history", "http://", "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # the keys of before first, in their order; where it stands now after them (added, at the end)
    assert list(data) == ["url", "observations", "never_requested", "cited", "off_the_pages_since_run",
                          "absent_in_runs", "excluded_since_run"]
    assert {k: data[k] for k in list(data)[:3]} == {
        "url": "http://", "observations": [],
        "never_requested": {"reason": "invalid_url", "listed_since_run": 1, "latest_run": 1,
                            "places": [{"page": "https://www.sclero.org/raynauds.html", "line": 118,
                                        "section": ""}]}}
    assert data["cited"] == [{"page": "https://www.sclero.org/raynauds.html", "line": 118, "section": "",
                              "entry_title": None, "run_id": 1}]
    assert data["off_the_pages_since_run"] is None and data["absent_in_runs"] == []
    checked = CliRunner().invoke(cli, ["history", "https://pubmed.ncbi.nlm.nih.gov/29470812/",
                                       "--config", str(config), "--format", "json"])
    assert "never_requested" not in json.loads(checked.output)


# -- the mail's addresses: written by the user, or no mail (review 13 #1) --------------


async def _monitor_for(seconds: float, *args: str) -> tuple[int | None, str]:
    """`python -m monitor ARGS` given `seconds` to exit (a `serve` that
    started runs on: killed, None); (exit status, stderr)."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        err = await asyncio.wait_for(proc.communicate(), seconds)
        return proc.returncode, err[1].decode()
    except asyncio.TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
        return None, err.decode()


async def test_no_report_is_mailed_to_an_address_nobody_wrote(tmp_path: Path) -> None:
    """Was: a file without [email] recipients mailed the report, and the
    page owner's part, to the placeholder webmaster@example.org. Now the
    commands that mail stop before anything is audited or recorded (exit 2,
    one line naming the file, the key and the line to add); the others work."""
    from monitor.demo.run import MailSink
    from simkit import run_monitor

    sink = MailSink(tmp_path / "mail")
    await sink.start()
    try:
        out = tmp_path / "out"
        path = config(tmp_path, f'[report]\ndir = "{out}"\n[email]\nhost = "127.0.0.1"\n'
                                f'port = {sink.port}\nsecurity = "none"\n')
        path.write_text(path.read_text().replace('[checker]', 'owner = "editor@sclero.org"\n[checker]', 1))
        for command in ("run", "serve"):
            code, err = await _monitor_for(60, command, "--config", str(path))
            assert code == 2, (command, err)
            assert one_line(err).startswith(f"monitor: {path}: email.sender, email.recipients: not set, "), err
            assert 'add sender = "monitor@your-site.org" and recipients = ["you@your-site.org"] under [email], ' \
                   "or enabled = false to keep the reports without mailing them" in err
            assert not (tmp_path / "m.db").exists() and not out.exists(), command

        # `check`, `report` (without --send), `history` and `accept` need no address
        code, stdout, err = await run_monitor("check", "--config", str(path))
        assert code == 0, err
        code, stdout, err = await run_monitor("report", "--config", str(path))
        assert code == 0 and "report: " in stdout, err
        page = f"http://127.0.0.1:{PORT}/a.html"
        code, stdout, err = await run_monitor("history", page, "--config", str(path))
        assert code == 0, err

        # only the webmaster's list missing: the owner's part is no replacement for it
        path.write_text(path.read_text().replace('security = "none"\n',
                                                 'security = "none"\nsender = "monitor@sclero.org"\n'))
        code, stdout, err = await run_monitor("report", "--config", str(path), "--send")
        assert code == 2, (stdout, err)
        assert one_line(err) == (
            f"monitor: {path}: email.recipients: not set, so the weekly report goes to no one (page "
            'owners receive only their pages\' part): add recipients = ["you@your-site.org"] under '
            "[email], or enabled = false to keep the reports without mailing them")
    finally:
        await sink.stop()
    assert sink.received == []


# -- report and run: what became of the mail, and of --run ----------------------------


async def test_the_mail_is_said_by_whom_it_went_to(tmp_path: Path) -> None:
    """Was: "sent:   run-1:all", "sent:   run-1:owner:raynaud-editor@sclero.org"
    (the outbox's own keys) on the terminal."""
    from monitor.demo.run import MailSink
    from simkit import run_monitor

    sink = MailSink(tmp_path / "mail")
    await sink.start()
    try:
        path = tmp_path / "monitor.toml"
        path.write_text(PAGE.replace('[checker]', 'owner = "Editor@Sclero.org"\n[checker]', 1)
                        .replace("/a.html", "/dead-link.html")
                        + f'[database]\npath = "{tmp_path / "m.db"}"\n[report]\ndir = "{tmp_path / "out"}"\n'
                        f'[email]\nhost = "127.0.0.1"\nport = {sink.port}\nsecurity = "none"\n'
                        'sender = "monitor@sclero.org"\n'
                        'recipients = ["webmaster@sclero.org", "web2@sclero.org"]\n', encoding="utf-8")
        code, out, err = await run_monitor("run", "--config", str(path))
    finally:
        await sink.stop()
    assert code == 0, err
    sent = [line for line in out.splitlines() if line.startswith("sent")]
    assert sent[0] == "sent to webmaster@sclero.org, web2@sclero.org (email.recipients)", out
    assert sent[1:] == ["sent to editor@sclero.org (page owner)"], out
    assert len(sink.received) == len(sent) and "run-1:" not in out
    # without [report] base_url the editors read "kept by the webmaster": the
    # way to link it is said to the webmaster, here, once
    assert out.count("set [report] base_url to link it in the mail") == 1, out
    # ... and in the webmaster's own copy, with the file's path (review 13 #5)
    saved = next((tmp_path / "out").glob("report-*-run-1.html")).resolve()
    mails = [message_from_bytes(p.read_bytes(), policy=default_policy) for p in sink.received]
    (webmasters,) = [m for m in mails if "webmaster@" in str(m["To"])]
    (owners,) = [m for m in mails if "webmaster@" not in str(m["To"])]
    for kind in ("html", "plain"):
        mine = webmasters.get_body((kind,)).get_content()  # type: ignore[union-attr]
        assert f"The full report is saved on the monitor's machine: {saved}" in mine
        assert "kept by the webmaster" not in mine
        editors = owners.get_body((kind,)).get_content()  # type: ignore[union-attr]
        assert "The full report is kept by the webmaster." in editors
        assert str(saved.parent) not in editors and "base_url" not in editors


async def test_a_report_kept_from_an_earlier_run_names_whom_it_went_to(tmp_path: Path) -> None:
    """Was "sent to email.recipients, run 1's report": the README says the
    mail lines name who received what. The addresses are the message's own
    (its day's list), not today's configuration (review 13 #18)."""
    from monitor.demo.run import MailSink
    from simkit import run_monitor

    sink = MailSink(tmp_path / "mail")
    await sink.start()
    await sink.stop()  # its port: nothing listens there now
    path = config(tmp_path, f'[report]\ndir = "{tmp_path / "out"}"\n[email]\nhost = "127.0.0.1"\n'
                            f'port = {sink.port}\nsecurity = "none"\nsender = "monitor@sclero.org"\n'
                            'recipients = ["old-webmaster@sclero.org"]\n')
    code, out, err = await run_monitor("run", "--config", str(path))
    assert code == 1 and "kept in the outbox" in err, (out, err)
    assert "NOT SENT to old-webmaster@sclero.org (email.recipients): " in err, err
    closed = sink.port
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "m.db")) as db, db:
        db.execute("UPDATE outbox SET next_attempt_at = created_at")  # its backoff over: a week later
    await sink.start()
    try:
        path.write_text(path.read_text().replace("old-webmaster@", "webmaster@")
                        .replace(f"port = {closed}\n", f"port = {sink.port}\n"))
        code, out, err = await run_monitor("run", "--config", str(path))
    finally:
        await sink.stop()
    assert code == 0, (out, err)
    sent = sorted(line for line in out.splitlines() if line.startswith("sent"))
    assert sent == ["sent to old-webmaster@sclero.org (email.recipients), run 1's report",
                    "sent to webmaster@sclero.org (email.recipients)"], out
    assert len(sink.received) == 2


@pytest.mark.parametrize(("key", "addresses", "expected"), [
    ("run-1:all", {"run-1:all": ["old@x.org"]}, "old@x.org (email.recipients), run 1's report"),
    ("run-2:all", {"run-2:all": ["w@x.org"]}, "w@x.org (email.recipients)"),  # as it went, not the file
    ("run-2:all", {"run-2:all": [f"a{i}@x.org" for i in range(1, 5)]},
     "a1@x.org, a2@x.org, a3@x.org, a4@x.org (email.recipients)"),
    ("run-2:all", {"run-2:all": [f"a{i}@x.org" for i in range(1, 31)]},  # one line, whatever the list
     "a1@x.org, a2@x.org, a3@x.org and 27 more (email.recipients)"),
    ("run-2:owner:ed@x.org", {"run-2:owner:ed@x.org": ["ed@x.org"]}, "ed@x.org (page owner)"),
])
def test_delivery_words_name_the_addresses_a_message_went_to(key: str, addresses: dict[str, list[str]],
                                                             expected: str) -> None:
    from monitor.cli import delivery_words

    assert delivery_words(key, ["a@x.org", "b@x.org"], 2, addresses) == expected


@pytest.mark.parametrize(("key", "run_id", "expected"), [
    ("run-2:all", 2, "a@x.org, b@x.org (email.recipients)"),
    ("run-2:owner:ed@x.org", 2, "ed@x.org (page owner)"),
    ("run-1:owner:ed@x.org", 2, "ed@x.org (page owner), run 1's report"),  # kept last week, sent now
    ("run-1:all", None, "a@x.org, b@x.org (email.recipients)"),
    ("run-1:all", 2, "email.recipients, run 1's report"),  # kept: sent to that day's list
    ("run-2:all:retry:b@x.org", 2, "b@x.org (again: refused the first time)"),
    ("run-2:owner:ed@x.org:retry:ed@x.org", 2, "ed@x.org (again: refused the first time)"),
    ("something-else", 2, "something-else"),  # a key of another kind: as it is
])
def test_delivery_words(key: str, run_id: int | None, expected: str) -> None:
    from monitor.cli import delivery_words

    assert delivery_words(key, ["a@x.org", "b@x.org"], run_id) == expected


def test_report_send_with_mail_off_says_nothing_was_sent_and_why(tmp_path: Path) -> None:
    """Was: "mail:   off ([email] enabled = false), nothing sent" on stdout,
    as the weekly job says it, for a request made by name."""
    path = config(tmp_path, f'[report]\ndir = "{tmp_path / "out"}"\n[email]\nenabled = false\n')
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    code, out, err = monitor(tmp_path, "report", "--config", str(path), "--send")
    assert code == 0, err  # the report is rendered; mail off is a valid configuration
    assert (f"mail:   NOT SENT: --send asks to mail the report, but [email] enabled = false in {path}; "
            "nothing was sent or queued") in err.splitlines(), err
    assert "mail:" not in out and "sent to" not in out
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "m.db")) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def test_report_of_a_run_that_is_not_there_says_which_are(tmp_path: Path) -> None:
    """Was: "there is no run 99" alone."""
    path = config(tmp_path)
    for _ in range(2):
        code, _, err = monitor(tmp_path, "check", "--config", str(path))
        assert code == 0, err
    code, _, err = monitor(tmp_path, "report", "--config", str(path), "--run", "99")
    assert code == 2, err  # a usage mistake, as --run 0 is (was 1: contract12 #6)
    assert one_line(err) == f"monitor: {tmp_path / 'm.db'}: there is no run 99; runs 1-2 exist"
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(("ids", "expected"), [
    ([], "no run exists yet"),
    ([1], "run 1 exists"),
    ([3, 1, 2], "runs 1-3 exist"),
    ([1, 2, 5, 7, 8], "runs 1-2, 5, 7-8 exist"),  # pruned and partial runs leave gaps
    ([1, 3, 5, 7, 9, 11, 13, 15], "runs 1, 3, 5, ..., 11, 13, 15 exist"),
])
def test_runs_phrase(ids: list[int], expected: str) -> None:
    from monitor.output import runs_phrase

    assert runs_phrase(ids) == expected


@pytest.mark.parametrize("agent", ["a\\u0000b", "a\\u0001b", "a\\u007fb", "a\\u001b[31mb"])
def test_a_user_agent_with_a_control_character_is_said_before_anything_is_done(
        tmp_path: Path, agent: str) -> None:
    """contract12 #1: only CR and LF were refused. A NUL, DEL or ESC passed,
    aiohttp refused every request, each page was "not a usable address",
    a run with nothing read was recorded, and `check` exited 1."""
    path = tmp_path / "monitor.toml"
    path.write_text(PAGE + f'user_agent = "{agent}"\n[database]\npath = "{tmp_path / "m.db"}"\n',
                    encoding="utf-8")
    code, out, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 2, out + err
    line = one_line(err)
    assert line.startswith(f"monitor: {path}: checker.user_agent: holds "), line
    assert not (tmp_path / "m.db").exists()  # nothing recorded for a mistake in the file


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_database_another_process_is_writing_to_is_said_in_a_webmasters_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """contract12 #9: another process holding the write lock past the busy
    timeout (a `monitor run` or `serve` writing, a backup) ended in SQLite's
    bare "database is locked", exit 1, nothing saying what to do."""
    import sqlite3

    from click.testing import CliRunner

    from monitor.cli import cli

    path = config(tmp_path, '[email]\nenabled = false\n[report]\ndir = "out"\n')
    code, _, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 0, err
    monkeypatch.setattr("monitor.store.BUSY_TIMEOUT_S", 0.2)  # the 10 s wait, shortened
    monkeypatch.chdir(tmp_path)
    other = sqlite3.connect(tmp_path / "m.db", isolation_level=None)  # another writer
    try:
        other.execute("BEGIN IMMEDIATE")
        result = CliRunner().invoke(cli, [command, "--config", str(path)])
    finally:
        other.close()
    assert result.exit_code == 1, result.output
    assert one_line(result.stderr) == (
        f"monitor: the database {tmp_path / 'm.db'} is busy: another process is writing to it (a "
        "`monitor run`, `check` or `serve`, a backup, the sqlite3 shell); try again when it has finished")


@pytest.mark.parametrize(("watched", "allow", "expected"), [
    ('[[pages]]\nurl = "http://127.0.0.1:18999/a.html"\n[[pages]]\nurl = "http://127.0.0.1:18999/b.html"\n',
     None, '[[pages]] #1 url: http://127.0.0.1:18999/a.html is on a private network address (127.0.0.1), which the '
     'checker refuses (checker.allow_private_networks); to check it: allow_private_networks = ["127.0.0.1/32"] '
     "under [checker] (and 1 more page like it)"),
    ('[[pages]]\nurl = "https://www.sclero.org/a.html"\n[[pages]]\nurl = "http://localhost:8080/intranet.html"\n',
     None, '[[pages]] #2 url: http://localhost:8080/intranet.html is on a private network address (127.0.0.1), '
     "which the checker refuses (checker.allow_private_networks); to check it: "
     'allow_private_networks = ["localhost"] under [checker]'),
    # the numeric forms the socket layer reads as 127.0.0.1 (review 13b #3)
    *[(f'[[pages]]\nurl = "http://{host}:18999/a.html"\n', None,
       f"[[pages]] #1 url: http://{host}:18999/a.html is on a private network address (127.0.0.1), which the "
       'checker refuses (checker.allow_private_networks); to check it: allow_private_networks = ["127.0.0.1/32"] '
       "under [checker]") for host in ("127.1", "0x7f.1", "2130706433", "0177.0.0.1", "127.0.0.1.")],
    # a site read from its sitemap alone (review 13b #4)
    ('[[sites]]\nsitemap = "http://127.0.0.1:18999/sitemap.xml"\n', None,
     "[[sites]] #1 sitemap: http://127.0.0.1:18999/sitemap.xml is on a private network address (127.0.0.1), which "
     'the checker refuses (checker.allow_private_networks); to check it: allow_private_networks = ["127.0.0.1/32"] '
     "under [checker]"),
    ('[[pages]]\nurl = "http://localhost:18999/a.html"\n', '["::1/128"]', None),  # localhost may resolve to ::1
    ('[[sites]]\nstart = "http://[::1]:8080/"\n', None,
     "[[sites]] #1 start: http://[::1]:8080/ is on a private network address (::1), which the checker refuses "
     '(checker.allow_private_networks); to check it: allow_private_networks = ["::1/128"] under [checker]'),
    ('[[pages]]\nurl = "http://10.1.2.3/a.html"\n', '["127.0.0.1/32"]',
     "[[pages]] #1 url: http://10.1.2.3/a.html is on a private network address (10.1.2.3), which the checker "
     'refuses (checker.allow_private_networks); to check it: allow_private_networks = ["10.1.2.3/32"] under [checker]'),
    ('[[pages]]\nurl = "http://10.1.2.3/a.html"\n', '["10.1.2.0/24"]', None),
    ('[[pages]]\nurl = "http://127.0.0.1:18999/a.html"\n', "true", None),
    ('[[pages]]\nurl = "http://localhost:18999/a.html"\n', '["localhost"]', None),
    ('[[pages]]\nurl = "https://www.sclero.org/a.html"\n', None, None),  # a name: the audit resolves it
])
def test_a_watched_page_on_a_refused_address_is_a_config_error(
        tmp_path: Path, watched: str, allow: str | None, expected: str | None) -> None:
    """Review 13 #18: a [[pages]] url on 127.0.0.1 without allow_private_networks
    was found by the audit, which recorded a run that checked nothing and printed
    the refusal twice per page. An address written as such (or localhost) is known
    to be refused before anything runs: one line, exit 2, no database made. Allowed
    ones pass (read, not fetched: no traffic leaves loopback in tests)."""
    from monitor.config import load_settings
    from monitor.netguard import refused_watched_pages

    path = tmp_path / "m.toml"
    checker = f"[checker]\nallow_private_networks = {allow}\n" if allow else ""
    path.write_text(watched + checker + f'[database]\npath = "{tmp_path / "m.db"}"\n', encoding="utf-8")
    if expected is None:
        assert refused_watched_pages(load_settings(path)) is None
        return
    code, out, err = monitor(tmp_path, "check", "--config", str(path))
    assert code == 2, err
    assert one_line(err) == f"monitor: {path}: {expected}"
    assert out == "" and not (tmp_path / "m.db").exists()


def test_check_page_looks_only_at_the_pages_it_fetches(tmp_path: Path) -> None:
    """Review 13b #7: a page on [::1] (not allowed) stopped `check --page` of
    another, allowed page; the whole file is still refused for a full audit."""
    from monitor.config import load_settings
    from monitor.netguard import refused_watched_pages

    path = tmp_path / "m.toml"
    path.write_text('[[pages]]\nurl = "http://127.0.0.1:18999/a.html"\n[[pages]]\nurl = "http://[::1]:18999/b.html"\n'
                    '[checker]\nallow_private_networks = ["127.0.0.1/32"]\n', encoding="utf-8")
    settings = load_settings(path)
    assert refused_watched_pages(settings, ["http://127.0.0.1:18999/a.html"]) is None
    refused = refused_watched_pages(settings, ["http://[::1]:18999/b.html"])
    assert refused is not None and "[[pages]] #2 url: http://[::1]:18999/b.html" in refused
    assert refused_watched_pages(settings) == refused
