"""Configuration: every mistake is one line naming the file, the key and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import CheckerSettings, load_settings, parse_settings
from monitor.errors import ConfigError

PAGE = '[[pages]]\nurl = "https://www.sclero.org/a.html"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads() -> None:
    settings = load_settings(Path(__file__).parent.parent / "config" / "monitor.toml")
    assert settings.pages[0].url.startswith("https://www.sclero.org/")
    assert settings.checker.per_host == 4
    assert settings.email.password_env == "MONITOR_SMTP_PASSWORD"


def test_defaults_apply_when_sections_are_missing(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PAGE))
    assert settings.checker == CheckerSettings()
    assert settings.schedule.cron == "0 6 * * mon"


@pytest.mark.parametrize(
    "text, key, problem",
    [
        (PAGE + "[checker]\nper_hosts = 1\n", "checker.per_hosts", "unknown key"),
        (PAGE + "[checker]\ntimeout = \"15\"\n", "checker.timeout", "expected a number"),
        (PAGE + "[checker]\nconcurrency = 0\n", "checker.concurrency", "between 1 and 10000"),
        (PAGE + "[checker]\nretries = true\n", "checker.retries", "got a boolean"),
        (PAGE + "[checker]\nallow_private_networks = [\"not a net!\"]\n",
         "checker.allow_private_networks #1", "CIDR"),
        (PAGE + "[checker]\nallow_private_networks = \"yes\"\n", "checker.allow_private_networks",
         "expected true or false or a list"),
        ('[[pages]]\nurl = "ftp://www.sclero.org/"\n', "[[pages]] #1 url", "http:// or https://"),
        ('[[pages]]\nurl = "www.sclero.org/page.html"\n', "[[pages]] #1 url", "http:// or https://"),
        # counted from 1, and the address it meant offered (walkthrough 9 #18)
        ('[[pages]]\nurl = "www.sclero.org/raynauds/a-to-z.html"\n', "[[pages]] #1 url",
         "got 'www.sclero.org/raynauds/a-to-z.html'; did you mean 'https://www.sclero.org/raynauds/a-to-z.html'?"),
        (PAGE + '[[sites]]\nstart = "//www.sclero.org/"\n', "[[sites]] #1 start",
         "did you mean 'https://www.sclero.org/'?"),
        (PAGE + '[[pages]]\nurl = "https://a.org/"\nowner = "nobody"\n', "[[pages]] #2 owner", "not an email"),
        (PAGE + '[[sites]]\nmax_pages = 5\n', "[[sites]] #1", "needs a start URL or a sitemap URL"),
        ('[[pages]]\nurl = "https://exa mple.org/"\n', "[[pages]] #1 url", "spaces"),
        ('[[pages]]\nurl = "https://example.org:99999/"\n', "[[pages]] #1 url", "not a valid URL"),
        ('[[pages]]\nname = "no url"\n', "[[pages]] #1 url", "is required"),
        ('[[pages]]\nurl = "https://a.org/"\nowner = "nobody"\n', "[[pages]] #1 owner", "not an email"),
        ("[checker]\ntimeout = 5\n", "pages", "no [[pages]]"),
        (PAGE + "[email]\nsecurity = \"ssl\"\n", "email.security", "must be one of"),
        (PAGE + "[email]\npassword = \"hunter2\"\n", "email.password", "environment"),
        (PAGE + "[email]\nrecipients = \"a@b.org\"\n", "email.recipients", "expected a list"),
        (PAGE + "[email]\nrecipients = [\"a@b.org\\r\\nBcc: x@y.org\"]\n", "email.recipients #1",
         "not an email"),
        (PAGE + "[schedule]\ncron = \"0 6 * *\"\n", "schedule.cron", "five fields"),
        (PAGE + "[database]\nkeep_weeks = -1\n", "database.keep_weeks", "between 0 and 5200"),
        (PAGE + "[report]\nkeep_weeks = -1\n", "report.keep_weeks", "between 0 and 5200"),
        (PAGE + "[report]\nbase_url = \"reports/out\"\n", "report.base_url", "http:// or https://"),
        (PAGE + "[server]\nallowed_hosts = [\"https://links.sclero.org/\"]\n", "server.allowed_hosts #1",
         "no scheme, port or path"),
        (PAGE + "[server]\nallowed_hosts = \"links.sclero.org\"\n", "server.allowed_hosts", "expected a list"),
        (PAGE + "[database]\nkeep_weeks = 52.5\n", "database.keep_weeks", "expected an integer"),
        (PAGE + "[schedule]\ncron = \"0 25 * * mon\"\n", "schedule.cron", "invalid cron"),
        (PAGE + "[schedule]\ncron = \"0 6 * * 8\"\n", "schedule.cron", "weekday 8 is not 0-7 (0 and 7 are Sunday)"),
        # a digit to str.isdigit, not to int: "invalid literal for int() with base 10"
        (PAGE + "[schedule]\ncron = \"0 6 * * \u00b9\"\n", "schedule.cron",
         "weekday '\u00b9' is neither 0-7 nor a day name"),
        (PAGE + "[schedule]\ncron = \"0 6 * * 5-1\"\n", "schedule.cron", "weekday range '5-1' runs backwards"),
        (PAGE + "[schedule]\ncron = \"0 6 * * 1/0\"\n", "schedule.cron", "weekday step '1/0' is 0"),
        (PAGE + "[schedule]\ncron = \"0 6 1 * mon\"\n", "schedule.cron",
         "a day of the month and a weekday together mean 'either' in a crontab"),
        (PAGE + "[schedule]\ntimezone = \"Mars/Olympus\"\n", "schedule.timezone", "unknown time zone"),
        (PAGE + "[schedule]\nrechecks = [1, -2]\n", "schedule.rechecks #2", "positive"),
        (PAGE + "[databse]\npath = \"x.db\"\n", "databse", "unknown key"),
        # "did you mean": the closest known key (was only the list of them)
        (PAGE + "[checker]\nretrys = 3\n", "checker.retrys", "unknown key (did you mean retries? known keys here: "),
        (PAGE + "[databse]\npath = \"x.db\"\n", "databse", "unknown key (did you mean database? "),
        (PAGE + "[email]\nreciepients = [\"a@b.org\"]\n", "email.reciepients", "did you mean recipients?"),
        # a required key misspelt: both named (was only "pages[0].url: is required")
        ('[[pages]]\nuri = "https://a.org/x"\nname = "X"\n', "[[pages]] #1 url",
         "is required; the table has 'uri' instead: did you mean url?"),
        ('[[pages]]\nname = "X"\nlink = "https://a.org/x"\n', "[[pages]] #1 url", "is required (found instead: link)"),
        ("checker = 3\n" + PAGE, "checker", "must be a table"),
        (PAGE + "[checker]\nca_file = \"/nonexistent/ca.pem\"\n", "checker.ca_file", "no such file"),
        (PAGE + "[checker]\nexclude = [\"^https://ok/\", \"(unclosed\"]\n", "checker.exclude #2",
         "not a valid regular expression"),
        ('[[sites]]\nstart = "https://a.org/"\nexclude_links = ["*.pdf"]\n', "[[sites]] #1 exclude_links #1",
         "not a valid regular expression"),
        # nan passed every bound check; inf failed mid-audit (OverflowError, exit 1)
        (PAGE + "[checker]\ntimeout = nan\n", "checker.timeout", "finite number"),
        (PAGE + "[checker]\ntimeout = inf\n", "checker.timeout", "finite number"),
        (PAGE + "[email]\ntimeout = -inf\n", "email.timeout", "finite number"),
        (PAGE + "[schedule]\nrechecks = [1, inf]\n", "schedule.rechecks #2", "positive"),
        # accepted, then an OverflowError/ValueError (exit 1) after the audit, when reporting or pruning
        (PAGE + "[database]\nkeep_weeks = 100000000000000\n", "database.keep_weeks", "between 0 and"),
        (PAGE + "[report]\nmax_citation_age_years = 100000\n", "report.max_citation_age_years",
         "between 0 and"),
        (PAGE + "[report]\nconfirm_after_hours = 1e300\n", "report.confirm_after_hours", "between 0 and"),
        (PAGE + "[schedule]\nmisfire_grace_hours = 1e300\n", "schedule.misfire_grace_hours",
         "between 0 and"),
        (PAGE + "[schedule]\nrechecks = [1e300]\n", "schedule.rechecks #1", "at most"),
        # was audited twice per run, each link listed twice
        (PAGE + PAGE, "[[pages]] #2 url", "same page as [[pages]] #1"),
        # accepted, then the weekly job failed after its audit (exit 1), or mailed a default silently
        (PAGE + "[email]\nrecipients = []\n", "email.recipients", "no one"),
        (PAGE + "[email]\nrecipients = [\"a@\"]\n", "email.recipients #1", "not an email"),
        (PAGE + "[email]\nsender = \"@sclero.org\"\n", "email.sender", "not an email"),
        (PAGE + "[email]\nsender = \"\"\n", "email.sender", "not an email"),
        (PAGE + "[email]\nhost = \" \"\n", "email.host", "must not be empty"),
        (PAGE + "[email]\nusername = \"bob\"\npassword_env = \"\"\n", "email.password_env",
         "must name an environment variable"),
        (PAGE + "[email]\nusername = \"bob\"\npassword_env = \"$SMTP_PASS\"\n", "email.password_env",
         "without the $: 'SMTP_PASS'"),
        (PAGE + "[email]\npassword_env = \"SMTP PASS\"\n", "email.password_env",
         "not the name of an environment variable"),
        # contract12 #1: only CR and LF were refused; then every request failed
        (PAGE + "[checker]\nuser_agent = \"a\\u0000b\"\n", "checker.user_agent", "holds NUL (U+0000) at character 2"),
        (PAGE + "[checker]\nuser_agent = \"a\\u0001b\"\n", "checker.user_agent", "a control character (U+0001)"),
        (PAGE + "[checker]\nuser_agent = \"a\\u007fb\"\n", "checker.user_agent", "holds DEL (U+007F)"),
        (PAGE + "[checker]\nuser_agent = \"a\\u001b[31mb\"\n", "checker.user_agent", "holds ESC (U+001B)"),
        (PAGE + "[checker]\nuser_agent = \"a\\tb\"\n", "checker.user_agent", "holds a tab"),
        (PAGE + "[checker]\nuser_agent = \"a\\u0085b\"\n", "checker.user_agent", "(U+0085)"),
        (PAGE + "[checker]\nuser_agent = \"a\\r\\nX-Injected: 1\"\n", "checker.user_agent",
         "holds a carriage return (U+000D)"),
        (PAGE + "[checker]\nuser_agent = \" \"\n", "checker.user_agent", "non-empty"),
        # contract12 #13: a port out of range was taken, then failed as a connection error
        # a digit to str.isdigit, not to int: the bare "monitor: ValueError", exit 1
        (PAGE + '[checker]\nconnect_to = {"a.org:443" = "127.0.0.1:\u00b2"}\n', "checker.connect_to.a.org:443",
         "expected host:port, got '127.0.0.1:\u00b2'"),
        (PAGE + '[checker]\nconnect_to = {"a.org:\u00b3" = "127.0.0.1:443"}\n', "checker.connect_to.a.org:\u00b3",
         "expected host:port"),
        (PAGE + '[checker]\nconnect_to = {"a.org:443" = "127.0.0.1:99999"}\n', "checker.connect_to.a.org:443",
         "port 99999 is not a port number (1 to 65535) in '127.0.0.1:99999'"),
        (PAGE + '[checker]\nconnect_to = {"a.org:443" = "127.0.0.1:0"}\n', "checker.connect_to.a.org:443",
         "port 0 is not a port number"),
        (PAGE + '[checker]\nconnect_to = {"a.org:70000" = "127.0.0.1:8443"}\n', "checker.connect_to.a.org:70000",
         "port 70000 is not a port number"),
        # ... and names and a subject were folded to one line, silently
        (PAGE + "[report]\nsite_name = \"Sclero\\r\\nBcc: x@y.org\"\n", "report.site_name",
         "holds a carriage return (U+000D) at character 7: write it as one line of text"),
        (PAGE + "[report]\nsite_name = \"Sclero\\u0000\"\n", "report.site_name", "holds NUL"),
        ('[[pages]]\nurl = "https://a.org/"\nname = """Raynaud\ntreatments"""\n', "[[pages]] #1 name",
         "holds a line break (U+000A) at character 8"),
        ('[[pages]]\nurl = "https://a.org/"\nowner = "ed@a.org\\u0000"\n', "[[pages]] #1 owner",
         "not an email address: it holds NUL (U+0000) at character 9"),
        ('[[pages]]\nurl = "https://a.org/"\nowner = "ed@a.org\\nBcc: x@y.org"\n', "[[pages]] #1 owner",
         "not an email address: it holds a line break"),
        ('[[sites]]\nstart = "https://a.org/"\nname = "A\\u001b[2J"\n', "[[sites]] #1 name", "holds ESC"),
        # ... and a password in an address was printed wherever the address is
        ('[[pages]]\nurl = "https://webmaster:s3cret@www.sclero.org/a.html"\n', "[[pages]] #1 url",
         "holds a password (user:password@ before the host name): the address is printed in the report, "
         "the mail and the command's output"),
        ('[[sites]]\nstart = "https://webmaster:s3cret@www.sclero.org/"\n', "[[sites]] #1 start",
         "holds a password"),
        (PAGE + '[report]\nbase_url = "https://u:s3cret@www.sclero.org/audits/"\n', "report.base_url",
         "holds a password"),
        # contract12 #8: "" was the working directory (and keep_weeks pruned there)
        (PAGE + "[report]\ndir = \"\"\n", "report.dir", "must not be empty"),
        (PAGE + "[report]\ndir = \"  \"\n", "report.dir", "must not be empty"),
        # NUL in a file name, control characters or spaces in a host: a bare
        # "monitor: ValueError: embedded null byte" (exit 1) from check,
        # report, report --send or serve, or an error on two lines
        (PAGE + '[database]\npath = "var/m\\u0000.db"\n', "database.path", "holds NUL (U+0000) at character 6"),
        (PAGE + '[report]\ndir = "out\\u0000"\n', "report.dir", "holds NUL (U+0000) at character 4"),
        (PAGE + '[checker]\nca_file = "/etc/ssl/a\\u0000.pem"\n', "checker.ca_file", "holds NUL"),
        (PAGE + '[email]\nca_file = "/etc/ssl/a\\u0000.pem"\n', "email.ca_file", "holds NUL"),
        (PAGE + '[email]\nhost = "smtp.sclero.org\\u0000"\n', "email.host", "holds NUL (U+0000) at character 16"),
        (PAGE + '[email]\nhost = "smtp.sclero.org\\r\\nX"\n', "email.host", "holds a carriage return"),
        (PAGE + '[email]\nhost = "smtp sclero.org"\n', "email.host",
         "expected a host name or address, got 'smtp sclero.org'"),
        (PAGE + '[server]\nhost = "127.0.0.1\\u0000"\n', "server.host", "holds NUL"),
        (PAGE + '[server]\nhost = "127.0.0.1\\nx"\n', "server.host", "holds a line break"),
        (PAGE + '[server]\nhost = "http://a b/"\n', "server.host", "expected a host name or address"),
    ],
)
def test_mistakes_name_file_key_and_problem(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}:"), message
    assert problem in message


@pytest.mark.parametrize(
    "raw, problem",
    [
        (b"[[pages]\nurl = 1", "invalid TOML"),
        (b"\xff\xfe[[pages]]", "not UTF-8"),
    ],
)
def test_unreadable_files(tmp_path: Path, raw: bytes, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match=problem):
        load_settings(path)


@pytest.mark.parametrize(("raw", "said"), [
    # walkthrough 13: an address without quotes; the example's key written a second time
    ('[[pages]]\nurl = https://www.sclero.org/a.html\n',
     'invalid TOML: Invalid value (at line 2, column 7): url = https://www.sclero.org/a.html; text such as '
     'an address, a name or an e-mail address goes in "quotes"'),
    ('[[pages]]\nurl = "https://www.sclero.org/a.html"\n[checker]\nallow_private_networks = false\n'
     'allow_private_networks = ["127.0.0.1/32"]\n',
     'invalid TOML: Cannot overwrite a value (at line 5, column 42): allow_private_networks = ["127.0.0.1/32"]; '
     "this key is already set in this table, e.g. the example's allow_private_networks = false: change that "
     "line rather than add one"),
    ('[[pages]]\nurl = "https://www.sclero.org/a.html"\n[email]\npassword = hunter2\n',
     "invalid TOML: Invalid value (at line 4, column 12): password = ***; text such as an address"),
])
def test_a_toml_mistake_shows_its_line_and_the_usual_cause(tmp_path: Path, raw: str, said: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(raw, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {said}") and "\n" not in message and "hunter2" not in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_a_password_in_an_address_is_not_echoed(tmp_path: Path) -> None:
    """The line goes to the terminal, a cron mail, the journal: the password
    must not, even when the address has other mistakes too."""
    for url in ("https://webmaster:s3cret@www.sclero.org/a.html", "https://webmaster:s3cret@exa mple.org/",
                " https://webmaster:s3cret@www.sclero.org/", "https://webmaster:s3cret@www.sclero.org:99999/",
                # written without its https://: no password a URL parser sees, echoed whole before
                "webmaster:s3cret@www.sclero.org/a.html", " webmaster:s3cret@www.sclero.org/a.html"):
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, f'[[pages]]\nurl = "{url}"\n'))
        assert "s3cret" not in str(caught.value), str(caught.value)


@pytest.mark.parametrize("text", [
    PAGE + '[checker]\nuser_agent = "citation-monitor/0.1 (café; +mailto:webmaster@sclero.org)"\n',
    PAGE + '[checker]\nconnect_to = {"a.org:443" = "127.0.0.1:65535", "b.org:1" = "[::1]:1"}\n',
    PAGE + '[report]\nsite_name = "Sclero.org — “Raynaud’s” 日本語"\ndir = "."\n',
    '[[pages]]\nurl = "https://a.org/"\nname = "DM/PM — treatments"\nowner = "ed@a.org"\n',
    '[[pages]]\nurl = "https://bob@a.org/"\n',  # a user name is no secret
    # no login: the default variable, another name, or the key left out
    PAGE + '[email]\nusername = ""\npassword_env = "MONITOR_SMTP_PASSWORD"\n',
    PAGE + '[email]\nusername = ""\n',
    PAGE + '[email]\npassword_env = ""\n',  # no login, so no password read: "" kept working
    PAGE + '[email]\nusername = "bob"\npassword_env = "SMTP_PASS_2"\n',
    PAGE + '[database]\npath = "var/a\\nb.db"\n',  # odd, but a file name may hold a line break
    PAGE + '[email]\nhost = " smtp.sclero.org "\n[server]\nhost = "::1"\n',
])
def test_what_the_new_checks_leave_alone(tmp_path: Path, text: str) -> None:
    load_settings(write(tmp_path, text))


def test_no_recipients_when_mail_is_off(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PAGE + "[email]\nenabled = false\nrecipients = []\n"))
    assert settings.email.recipients == ()


def test_allow_list_and_connect_to(tmp_path: Path) -> None:
    settings = parse_settings({
        "pages": [{"url": "https://a.org/"}],
        "checker": {"allow_private_networks": ["10.0.0.0/8", "staging.intranet"],
                    "connect_to": {"a.org:443": "127.0.0.1:8443", "*": "refuse"}},
    }, "x.toml")
    assert settings.checker.allow_private_networks == ("10.0.0.0/8", "staging.intranet")
    assert ("a.org:443", "127.0.0.1:8443") in settings.checker.connect_to
    assert ("*", "refuse") in settings.checker.connect_to


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, PAGE + "[checker]\nper_hosts = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "checker.per_hosts" in lines[0]
    assert "Traceback" not in result.stderr


CLEAR_LOGIN = 'sends the password in clear'


@pytest.mark.parametrize(("email", "refused"), [
    # the contract's example, and config/monitor.toml's
    ('host = "localhost"\nport = 587\nsecurity = "starttls"\nusername = ""', False),
    # a login in clear to another machine
    ('host = "smtp.example.org"\nport = 25\nsecurity = "none"\nusername = "monitor"', True),
    ('host = "192.0.2.25"\nsecurity = "none"\nusername = "monitor"', True),
    ('host = "10.0.0.5"\nsecurity = "none"\nusername = "monitor"', True),  # private is not local
    ('host = "2001:db8::25"\nsecurity = "none"\nusername = "monitor"', True),
    ('host = "localhost.example.org"\nsecurity = "none"\nusername = "monitor"', True),
    ('host = "127.0.0.1.nip.io"\nsecurity = "none"\nusername = "monitor"', True),
    # ... on purpose
    ('host = "smtp.example.org"\nsecurity = "none"\nusername = "monitor"\nallow_plain_login = true', False),
    # a relay on this machine: the password never leaves it
    ('host = "localhost"\nport = 25\nsecurity = "none"\nusername = "monitor"', False),
    ('host = "LOCALHOST."\nsecurity = "none"\nusername = "monitor"', False),
    ('host = "mail.localhost"\nsecurity = "none"\nusername = "monitor"', False),
    ('host = "127.0.0.1"\nsecurity = "none"\nusername = "monitor"', False),
    ('host = "127.0.0.53"\nsecurity = "none"\nusername = "monitor"', False),
    ('host = "::1"\nsecurity = "none"\nusername = "monitor"', False),
    ('host = "[::1]"\nsecurity = "none"\nusername = "monitor"', False),
    ('host = "::ffff:127.0.0.1"\nsecurity = "none"\nusername = "monitor"', False),  # 127.0.0.1 mapped
    ('host = "::ffff:10.0.0.1"\nsecurity = "none"\nusername = "monitor"', True),
    # no login, or an encrypted one, or no mail at all
    ('host = "smtp.example.org"\nport = 25\nsecurity = "none"\nusername = ""', False),
    ('host = "smtp.example.org"\nsecurity = "starttls"\nusername = "monitor"', False),
    ('host = "smtp.example.org"\nport = 465\nsecurity = "tls"\nusername = "monitor"', False),
    ('host = "smtp.example.org"\nsecurity = "none"\nusername = "monitor"\nenabled = false', False),
])
def test_a_password_in_clear_to_another_machine_is_refused(tmp_path: Path, email: str, refused: bool) -> None:
    """`security = "none"` with a login sends the password as base64 over the
    wire: fine to a relay on this machine, refused to any other unless
    `allow_plain_login` says the network is trusted."""
    path = write(tmp_path, PAGE + "[email]\n" + email + "\n")
    if not refused:
        assert load_settings(path).email.security in ("none", "starttls", "tls")
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: email.security: ") and CLEAR_LOGIN in message, message
    assert '"starttls"' in message and '"tls"' in message and "email.allow_plain_login" in message


def test_allow_plain_login_is_a_boolean(tmp_path: Path) -> None:
    path = write(tmp_path, PAGE + '[email]\nallow_plain_login = "yes"\n')
    with pytest.raises(ConfigError, match="email.allow_plain_login: expected true or false"):
        load_settings(path)


# -- the mail's addresses: the user's to write (review 13 #1) -----------------------------

TO_FIX = 'add recipients = ["you@your-site.org"] under [email], or enabled = false'
FROM_FIX = 'add sender = "monitor@your-site.org"'


def test_no_made_up_address_is_a_default(tmp_path: Path) -> None:
    """"webmaster@example.org" received the report of a site whose file had
    no [email]; a file without the keys now has no address at all."""
    settings = load_settings(write(tmp_path, PAGE))
    assert settings.email.recipients == () and settings.email.sender == ""


@pytest.mark.parametrize(("email", "keys", "said"), [
    ("", "email.sender, email.recipients", [FROM_FIX, 'and recipients = ["you@your-site.org"] under [email]']),
    ('[email]\nhost = "127.0.0.1"\n', "email.sender, email.recipients", [FROM_FIX]),
    ('[email]\nsender = "monitor@sclero.org"\n', "email.recipients", [TO_FIX, "goes to no one:"]),
    ('[email]\nrecipients = ["webmaster@sclero.org"]\n', "email.sender", [FROM_FIX, "enabled = false"]),
    # page owners are extra recipients, not the webmaster's replacement
    ('[email]\nsender = "monitor@sclero.org"\n', "email.recipients",
     [TO_FIX, "page owners receive only their pages' part"]),
    ("", "email.sender, email.recipients", [FROM_FIX, "page owners receive only their pages' part"]),
])
def test_a_command_that_mails_needs_both_addresses(tmp_path: Path, email: str, keys: str,
                                                   said: list[str]) -> None:
    from monitor.config import require_mail_addresses

    page = PAGE + ('owner = "editor@sclero.org"\n' if "owners" in said[-1] else "")
    path = write(tmp_path, page + email)
    settings = load_settings(path)  # check, history, accept, report: no address needed
    with pytest.raises(ConfigError) as caught:
        require_mail_addresses(settings)
    message = str(caught.value)
    assert message.startswith(f"{path}: {keys}: not set") and "\n" not in message
    for words in said:
        assert words in message


@pytest.mark.parametrize("email", [
    '[email]\nenabled = false\n',  # the reports kept, not mailed
    '[email]\nsender = "monitor@sclero.org"\nrecipients = ["webmaster@sclero.org"]\n',
])
def test_mail_off_or_both_addresses_written_is_enough(tmp_path: Path, email: str) -> None:
    from monitor.config import require_mail_addresses

    require_mail_addresses(load_settings(write(tmp_path, PAGE + email)))


def test_one_recipient_written_as_a_string_is_answered_with_the_list(tmp_path: Path) -> None:
    path = write(tmp_path, PAGE + '[email]\nrecipients = "webmaster@sclero.org"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (f"{path}: email.recipients: expected a list, got the string "
                                 "'webmaster@sclero.org': write it as a list, "
                                 'recipients = ["webmaster@sclero.org"]')


def test_the_contract_s_example_config_mails_as_written(tmp_path: Path) -> None:
    """../shared/CONTRACT.md writes sender and recipients as the user's own values."""
    from monitor.config import require_mail_addresses

    settings = load_settings(write(tmp_path, PAGE + (
        '[email]\nhost = "localhost"\nport = 587\nsecurity = "starttls"\nusername = ""\n'
        'password_env = "MONITOR_SMTP_PASSWORD"\nsender = "monitor@example.org"\n'
        'recipients = ["webmaster@example.org"]\n')))
    require_mail_addresses(settings)
    assert settings.email.recipients == ("webmaster@example.org",)
