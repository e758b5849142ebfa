"""Acceptance tests for issue 12, written from the issue text alone by someone who had not read the implementation."""

# Assumptions beyond the fixture contract (the tests that rely on one say which):
# A1  Every subcommand accepts `--json` after its name (`login EMAIL --send --json`, `whoami --json`, ...).
# A2  `--token-file PATH|-` is a global option placed before the subcommand: `vpsagent --token-file - servers list`.
# A3  A failed SMTP delivery (server down, sender rejected, certificate refused) is exit 1 ("failure").
# A4  A wrong, expired, burned or unknown code is exit 2 or 3 (bad input / not logged in); we accept either.
# A5  `users edit EMAIL --role R`, `users disable EMAIL`, `tokens revoke NAME` take the email / name positionally.
# A6  Session and API tokens are URL-safe text (token_urlsafe / token_hex style, >= 40 characters), and the client
#     token file holds the session token in clear text (it is protected by its 0600 mode, not encrypted).
# A7  `users list --json` gives one object per user; a disabled user carries `"disabled": true` or the word
#     "disabled" as a value; role names appear as plain values ("viewer", "operator", "admin").
# A8  `history --json` gives one object per audit row inside a list; the row's command text, user email and token
#     name appear somewhere inside that object (key names are not assumed).
# A9  An explicitly given API token (VPSAGENT_TOKEN, --token-file) is what counts; to keep this unambiguous the
#     tests log the saved session out before using a token.
# A10 `VPSAGENT_SECRET` is set for every call (any string is accepted as the master secret), so no key file is
#     created and no "created a key file" note makes two otherwise identical outputs differ.
# A11 `users add` is always called with no SMTP configured, so that an invitation mail (if the implementation sends
#     one) never disturbs the mail counts of these tests.
# A12 The OS user named under `auth off` is getpass.getuser() or the passwd name of the current uid.
# A13 While a user is logged in, `whoami --json` names that user's email (checked with auth required only).
# A14 With auth required, role checks come before any work: `ask` by a viewer is exit 3 before any AI call.

from __future__ import annotations

import base64
import getpass
import json
import os
import pwd
import re
import stat
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

ADA = "ada@example.com"      # the first user: becomes admin
VIC = "vic@example.com"      # a viewer
OTTO = "otto@example.com"    # an operator
DORA = "dora@example.com"    # a user who gets disabled
NOBODY = "nobody@example.com"  # never added

NULL_KEYRING = "keyring.backends.null.Keyring"
FAIL_KEYRING = "keyring.backends.fail.Keyring"
MASTER_SECRET = base64.b64encode(bytes(range(32))).decode()
NEW_SECRET = base64.b64encode(bytes(range(32, 64))).decode()
BASE_ENV = {"PYTHON_KEYRING_BACKEND": NULL_KEYRING, "VPSAGENT_SECRET": MASTER_SECRET}
NO_AI = {"ANTHROPIC_API_KEY": "sk-ant-acceptance-dummy", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}

OK, FAILURE, USAGE, NOT_ALLOWED, INTEGRITY = 0, 1, 2, 3, 7
CODE_REFUSED = (USAGE, NOT_ALLOWED)  # A4
MINUTE, HOUR, DAY = 60, 3600, 86400

EIGHT_DIGITS = re.compile(r"(?<!\d)\d{8}(?!\d)")
TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-]{40,}")
ERROR_LINE = re.compile(r"^\s*(vpsagent: )?error:", re.IGNORECASE)
OS_USERS = {getpass.getuser(), pwd.getpwuid(os.getuid()).pw_name}


# ---------------------------------------------------------------------------------------------- helpers


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def _show(r: Any) -> str:
    return f"exit={r.exit_code}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def _strings(obj: Any) -> list[str]:
    """Every scalar value inside a JSON document, as strings."""
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    if obj is None:
        return []
    return [obj if isinstance(obj, str) else json.dumps(obj)]


def _rows_with(obj: Any, marker: str) -> list[dict]:
    """Objects that are elements of some list in the document and mention `marker` (A7, A8)."""
    found: list[dict] = []

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for e in o:
                if isinstance(e, dict) and marker in json.dumps(e):
                    found.append(e)
                walk(e)

    walk(obj)
    return found


def _error_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ERROR_LINE.match(ln)]


def _assert_one_error_line(r: Any, *, mentions: tuple[str, ...] = ()) -> str:
    assert "Traceback" not in r.stderr, _show(r)
    lines = _error_lines(r.stderr)
    assert len(lines) == 1, "expected exactly one 'error:' line\n" + _show(r)
    if mentions:
        assert any(m.lower() in lines[0].lower() for m in mentions), f"{lines[0]!r} should mention one of {mentions}"
    return lines[0]


def _snapshot(home: Path) -> dict[Path, bytes]:
    cfg = home / "config"
    if not cfg.exists():
        return {}
    return {p: p.read_bytes() for p in cfg.rglob("*") if p.is_file() and not p.is_symlink()}


def _new_token_files(before: dict[Path, bytes], after: dict[Path, bytes]) -> list[Path]:
    return [p for p, data in after.items()
            if before.get(p) != data and TOKEN_RUN.search(data.decode("utf-8", "replace"))]


def _tokens_in(path: Path) -> list[str]:
    return TOKEN_RUN.findall(path.read_bytes().decode("utf-8", "replace"))


def _wrong(code: str, k: int = 1) -> str:
    return f"{(int(code) + k) % 10**8:08d}"


def _normalised(text: str, email: str) -> str:
    return text.replace(email, "<EMAIL>")


def _db_text(engine: Any) -> str:
    """Every value of every row of every table, as text (bytes also as hex)."""
    import sqlalchemy as sa

    chunks: list[str] = []
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {quote(table)}")):
                for value in row:
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        raw = bytes(value)
                        chunks += [raw.decode("latin-1"), raw.hex()]
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


def _write_0600(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Vps:
    """Drives the CLI with a base environment, records every result, and logs users in through real mail."""

    def __init__(self, cli: Any, mail: Any, home: Path, run_vpsagent: Any) -> None:
        self.cli, self.mail, self.home, self.run_vpsagent = cli, mail, home, run_vpsagent
        self.extra_env: dict[str, str] = {}
        self.results: list[Any] = []
        self.codes: list[str] = []
        self.inprocess_verifies: set[int] = set()  # in-process `--code-stdin` runs (see the output-secrets test)
        self.session_file: Path | None = None

    def env(self, extra: dict[str, str] | None = None, smtp: bool | dict[str, str] = True) -> dict[str, str]:
        e = dict(BASE_ENV)
        if smtp is True and self.mail is not None:
            e.update(self.mail.env)
        elif isinstance(smtp, dict):
            e.update(smtp)
        e.update(self.extra_env)
        e.update(extra or {})
        return e

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
                 smtp: bool | dict[str, str] = True) -> Any:
        r = self.cli(*args, input=input, env=self.env(env, smtp))
        self.results.append(r)
        return r

    def real(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        p = self.run_vpsagent(*args, input=input, env=self.env(env), timeout=60)
        r = Result(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))
        self.results.append(r)
        return r

    def add_user(self, email: str, *flags: str) -> Any:
        r = self("users", "add", email, *flags, smtp=False)  # A11
        assert r.exit_code == OK, _show(r)
        return r

    def mails_to(self, email: str) -> list[Any]:
        return [m for m in self.mail.messages if email in str(m.get("To", ""))]

    def send(self, email: str, *flags: str, env: dict[str, str] | None = None) -> Any:
        return self("login", email, "--send", *flags, env=env)

    def code(self, email: str) -> str:
        code = self.mail.last_code(email)
        assert code is not None, f"no code in the mail to {email}: {self.mail.messages!r}"
        self.codes.append(code)
        return code

    def verify(self, email: str, code: str, *flags: str, env: dict[str, str] | None = None) -> Any:
        r = self("login", email, "--code-stdin", *flags, input=code + "\n", env=env)
        self.inprocess_verifies.add(id(r))
        return r

    def login(self, email: str, env: dict[str, str] | None = None) -> str:
        r = self.send(email, env=env)
        assert r.exit_code == OK, _show(r)
        code = self.code(email)
        before = _snapshot(self.home)
        r = self.verify(email, code, env=env)
        assert r.exit_code == OK, _show(r)
        files = _new_token_files(before, _snapshot(self.home))
        self.session_file = files[0] if len(files) == 1 else None
        return code

    def logout(self) -> Any:
        return self("logout")

    def become(self, email: str) -> str:
        self.logout()
        return self.login(email)

    def team(self, *members: tuple[str, str], require: bool = True) -> None:
        """ADA (first user, admin) logged in; `members` added with their roles; auth required if asked."""
        self.add_user(ADA)
        self.login(ADA)
        for email, role in members:
            self.add_user(email, "--role", role)
        if require:
            r = self("auth", "require")
            assert r.exit_code == OK, _show(r)

    def mint(self, name: str, *flags: str) -> str:
        r = self("tokens", "create", name, *flags, "--json")
        assert r.exit_code == OK, _show(r)
        return r.json()["data"]["token"]


def _whoami_data(vps: Vps, env: dict[str, str] | None = None) -> dict:
    r = vps("whoami", "--json", env=env)
    assert r.exit_code == OK, _show(r)
    doc = r.json()
    assert doc["ok"] is True
    return doc["data"]


def _assert_not_logged_in_as(vps: Vps, email: str) -> None:
    r = vps("whoami", "--json")
    assert email not in r.stdout + r.stderr, _show(r)


@pytest.fixture
def mail(smtp_server):
    return smtp_server(mode="plain")


@pytest.fixture
def vps(cli, mail, home, run_vpsagent) -> Vps:
    return Vps(cli, mail, home, run_vpsagent)


# ---------------------------------------------------------------------------------------------- SMTP delivery


@pytest.mark.parametrize("mode", ["plain", "starttls", "implicit"])
def test_code_is_delivered_over_each_smtp_mode(vps, smtp_server, mode):
    vps.mail = smtp_server(mode=mode)
    vps.add_user(ADA)
    r = vps.send(ADA)
    assert r.exit_code == OK, _show(r)
    assert len(vps.mails_to(ADA)) == 1
    code = vps.code(ADA)
    assert re.fullmatch(r"\d{8}", code)
    assert vps.verify(ADA, code).exit_code == OK


def test_mail_goes_from_the_configured_sender_to_the_address(vps):
    vps.add_user(ADA)
    assert vps.send(ADA).exit_code == OK
    msg = vps.mails_to(ADA)[-1]
    assert parseaddr(str(msg["From"]))[1] == parseaddr(vps.mail.env["VPSAGENT_MAIL_FROM"])[1]
    assert parseaddr(str(msg["To"]))[1] == ADA


def test_starttls_certificate_is_refused_until_its_ca_file_is_configured(vps, smtp_server):
    # A3
    vps.mail = smtp_server(mode="starttls", trusted=True)
    vps.add_user(ADA)
    without_ca = {k: v for k, v in vps.mail.env.items() if k != "VPSAGENT_SMTP_CA_FILE"}
    r = vps("login", ADA, "--send", smtp=without_ca)
    assert r.exit_code == FAILURE, _show(r)
    _assert_one_error_line(r, mentions=("certif", "tls", "ssl"))
    assert vps.mails_to(ADA) == []
    r = vps.send(ADA)  # the same server, now with its CA file
    assert r.exit_code == OK, _show(r)
    assert len(vps.mails_to(ADA)) == 1


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_untrusted_certificate_is_refused_and_nothing_is_sent(vps, smtp_server, mode):
    # A3, A4
    vps.mail = smtp_server(mode=mode, trusted=False)
    vps.add_user(ADA)
    r = vps.send(ADA)
    assert r.exit_code == FAILURE, _show(r)
    _assert_one_error_line(r, mentions=("certif", "tls", "ssl"))
    assert vps.mails_to(ADA) == []
    assert vps.verify(ADA, "12345678").exit_code in CODE_REFUSED


@pytest.mark.parametrize("failure", [{"down": True}, {"reject_sender": True}], ids=["down", "rejects-sender"])
def test_smtp_failure_is_one_error_line_and_no_code_counts_as_sent(vps, smtp_server, failure):
    # A3, A4
    vps.mail = smtp_server(mode="plain", **failure)
    vps.add_user(ADA)
    r = vps.send(ADA)
    assert r.exit_code == FAILURE, _show(r)
    _assert_one_error_line(r)
    assert r.stdout.strip() == ""
    assert vps.mail.last_code(ADA) is None
    for guess in ("00000000", "12345678", "99999999"):
        assert vps.verify(ADA, guess).exit_code in CODE_REFUSED
    _assert_not_logged_in_as(vps, ADA)


@pytest.mark.parametrize("failure", [{"down": True}, {"reject_sender": True}], ids=["down", "rejects-sender"])
def test_smtp_failure_never_shows_the_smtp_password(vps, smtp_server, failure):
    # A1, A3
    vps.mail = smtp_server(mode="plain", **failure)
    vps.add_user(ADA)
    plain = vps.send(ADA)
    as_json = vps.send(ADA, "--json")
    assert as_json.exit_code == FAILURE
    doc = as_json.json()
    assert doc["ok"] is False and doc["exit_code"] == FAILURE and doc["errors"]
    for r in (plain, as_json):
        assert vps.mail.password not in r.stdout + r.stderr, _show(r)


@pytest.mark.parametrize("flags", [("--send",), ()], ids=["send", "interactive"])
def test_login_without_smtp_exits_2_says_how_to_configure_and_prints_no_code(vps, flags):
    vps.add_user(ADA)
    r = vps("login", ADA, *flags, smtp=False)
    assert r.exit_code == USAGE, _show(r)
    _assert_one_error_line(r, mentions=("smtp_url",))
    assert not EIGHT_DIGITS.search(r.stdout + r.stderr), _show(r)


def test_login_without_smtp_json_envelope_says_usage_error_and_has_no_code(vps):
    # A1
    vps.add_user(ADA)
    r = vps("login", ADA, "--send", "--json", smtp=False)
    assert r.exit_code == USAGE
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == USAGE
    assert "smtp_url" in json.dumps(doc["errors"]).lower()
    assert not EIGHT_DIGITS.search(r.stdout + r.stderr)


def test_sending_never_prints_the_code(vps):
    # A1
    vps.add_user(ADA)
    for flags in ((), ("--json",)):
        r = vps.send(ADA, *flags)
        assert r.exit_code == OK, _show(r)
        code = vps.code(ADA)
        assert code not in r.stdout + r.stderr
        assert not EIGHT_DIGITS.search(r.stdout + r.stderr)


# ---------------------------------------------------------------------------------------------- codes


def test_the_mailed_code_has_eight_digits_and_logs_the_user_in(vps):
    # A13
    vps.team((VIC, "viewer"))
    vps.logout()
    assert vps.send(VIC).exit_code == OK
    code = vps.code(VIC)
    assert re.fullmatch(r"\d{8}", code)
    r = vps.verify(VIC, code)
    assert r.exit_code == OK, _show(r)
    assert VIC in json.dumps(_whoami_data(vps))


def test_a_code_works_only_once(vps):
    # A4
    vps.team((VIC, "viewer"))
    code = vps.become(VIC)
    assert vps.logout().exit_code == OK
    assert vps.verify(VIC, code).exit_code in CODE_REFUSED
    assert vps("servers", "list").exit_code == NOT_ALLOWED


def test_a_new_request_voids_the_older_code(vps):
    # A4, A13
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    older = vps.code(VIC)
    vps.send(VIC)
    newer = vps.code(VIC)
    if older == newer:
        pytest.skip("two random codes happened to be equal")
    assert vps.verify(VIC, older).exit_code in CODE_REFUSED
    _assert_not_logged_in_as(vps, VIC)
    assert vps.verify(VIC, newer).exit_code == OK
    assert VIC in json.dumps(_whoami_data(vps))


def test_a_code_is_still_valid_after_nine_minutes(vps, clock):
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    code = vps.code(VIC)
    clock.advance(9 * MINUTE)
    assert vps.verify(VIC, code).exit_code == OK


def test_a_code_expires_after_ten_minutes(vps, clock):
    # A4
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    code = vps.code(VIC)
    clock.advance(10 * MINUTE + 1)
    assert vps.verify(VIC, code).exit_code in CODE_REFUSED
    _assert_not_logged_in_as(vps, VIC)


def test_a_wrong_code_is_one_clear_error_line(vps):
    # A4
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    r = vps.verify(VIC, _wrong(vps.code(VIC)))
    assert r.exit_code in CODE_REFUSED, _show(r)
    _assert_one_error_line(r)
    assert r.stdout.strip() == ""


def test_four_wrong_tries_then_the_right_code_still_works(vps):
    # A4
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    code = vps.code(VIC)
    for k in range(1, 5):
        assert vps.verify(VIC, _wrong(code, k)).exit_code in CODE_REFUSED
    assert vps.verify(VIC, code).exit_code == OK


def test_five_wrong_tries_burn_the_code(vps):
    # A4
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    code = vps.code(VIC)
    for k in range(1, 6):
        assert vps.verify(VIC, _wrong(code, k)).exit_code in CODE_REFUSED
    assert vps.verify(VIC, code).exit_code in CODE_REFUSED  # the 6th attempt, with the right code
    _assert_not_logged_in_as(vps, VIC)


def test_after_a_burned_code_a_fresh_code_works(vps):
    # A4
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    burned = vps.code(VIC)
    for k in range(1, 6):
        vps.verify(VIC, _wrong(burned, k))
    assert vps.send(VIC).exit_code == OK
    assert vps.verify(VIC, vps.code(VIC)).exit_code == OK


def test_a_code_is_bound_to_its_address(vps):
    # A4
    vps.team((VIC, "viewer"), (OTTO, "operator"))
    vps.send(VIC)
    vps.send(OTTO)
    vic_code, otto_code = vps.code(VIC), vps.code(OTTO)
    if vic_code == otto_code:
        pytest.skip("two random codes happened to be equal")
    assert vps.verify(OTTO, vic_code).exit_code in CODE_REFUSED
    _assert_not_logged_in_as(vps, OTTO)
    assert vps.verify(VIC, vic_code).exit_code == OK


def test_the_sixth_code_request_within_an_hour_is_refused(vps):
    vps.team((VIC, "viewer"))
    for _ in range(5):
        r = vps.send(VIC)
        assert r.exit_code == OK, _show(r)
    r = vps.send(VIC)
    assert r.exit_code in (USAGE, NOT_ALLOWED), _show(r)  # the issue does not say which
    _assert_one_error_line(r)
    assert len(vps.mails_to(VIC)) == 5


def test_code_requests_are_allowed_again_after_an_hour(vps, clock):
    vps.team((VIC, "viewer"))
    for _ in range(5):
        assert vps.send(VIC).exit_code == OK
    clock.advance(HOUR + MINUTE)
    assert vps.send(VIC).exit_code == OK
    assert len(vps.mails_to(VIC)) == 6


def test_the_send_rate_limit_is_per_address(vps):
    vps.team((VIC, "viewer"), (OTTO, "operator"))
    for _ in range(6):
        vps.send(VIC)
    assert vps.send(OTTO).exit_code == OK
    assert len(vps.mails_to(OTTO)) == 1


def test_an_unknown_address_gets_the_same_answer_as_a_known_one(vps):
    vps.team((VIC, "viewer"))
    known = vps.send(VIC)
    unknown = vps.send(NOBODY)
    assert len(vps.mails_to(VIC)) == 1
    assert vps.mails_to(NOBODY) == []
    assert unknown.exit_code == known.exit_code == OK
    assert _normalised(unknown.stdout, NOBODY) == _normalised(known.stdout, VIC)
    assert _normalised(unknown.stderr, NOBODY) == _normalised(known.stderr, VIC)


def test_an_unknown_address_gets_the_same_json_answer_as_a_known_one(vps):
    # A1
    vps.team((VIC, "viewer"))
    known = vps.send(VIC, "--json")
    unknown = vps.send(NOBODY, "--json")
    assert unknown.exit_code == known.exit_code
    assert _normalised(json.dumps(unknown.json(), sort_keys=True), NOBODY) == \
        _normalised(json.dumps(known.json(), sort_keys=True), VIC)


def test_a_disabled_address_gets_the_same_answer_and_cannot_log_in(vps):
    # A4, A5
    vps.team((VIC, "viewer"), (DORA, "viewer"), require=True)
    assert vps("users", "disable", DORA).exit_code == OK
    known = vps.send(VIC)
    disabled = vps.send(DORA)
    assert disabled.exit_code == known.exit_code
    assert _normalised(disabled.stdout, DORA) == _normalised(known.stdout, VIC)
    assert _normalised(disabled.stderr, DORA) == _normalised(known.stderr, VIC)
    mailed = vps.mail.last_code(DORA)
    for guess in filter(None, (mailed, "12345678")):
        assert vps.verify(DORA, guess).exit_code in CODE_REFUSED
    _assert_not_logged_in_as(vps, DORA)


def test_a_wrong_code_gets_the_same_answer_for_unknown_and_known_addresses(vps):
    # A4
    vps.team((VIC, "viewer"))
    vps.send(VIC)
    vps.send(NOBODY)
    guess = _wrong(vps.code(VIC))
    known = vps.verify(VIC, guess)
    unknown = vps.verify(NOBODY, guess)
    assert known.exit_code in CODE_REFUSED
    assert unknown.exit_code == known.exit_code
    assert _normalised(unknown.stdout, NOBODY) == _normalised(known.stdout, VIC)
    assert _normalised(unknown.stderr, NOBODY) == _normalised(known.stderr, VIC)


# ---------------------------------------------------------------------------------------------- sessions


def test_whoami_json_carries_the_email_and_the_role(vps):
    # A13
    vps.team()
    values = _strings(_whoami_data(vps))
    assert ADA in json.dumps(values)
    assert "admin" in values


def test_whoami_with_auth_off_names_the_os_user(vps):
    # A12
    data = _whoami_data(vps)
    assert OS_USERS & set(_strings(data)), data
    r = vps("whoami")
    assert r.exit_code == OK
    assert any(u in r.stdout for u in OS_USERS), _show(r)


def test_logout_revokes_the_session_so_a_saved_copy_no_longer_works(vps):
    # A6
    vps.team()
    path = vps.session_file
    assert path is not None, "login with the null keyring should create one token file in the config dir"
    saved = path.read_text()
    assert vps("servers", "list").exit_code == OK
    assert vps.logout().exit_code == OK
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    _write_0600(path, saved)
    r = vps("servers", "list")
    assert r.exit_code == NOT_ALLOWED, _show(r)


def test_logout_removes_the_local_token_file(vps):
    # A6
    vps.team()
    path = vps.session_file
    assert path is not None and path.exists()
    tokens = _tokens_in(path)
    assert vps.logout().exit_code == OK
    assert not path.exists()
    for data in _snapshot(vps.home).values():
        assert not any(t.encode() in data for t in tokens)


def test_the_session_token_is_stored_only_hashed(vps, engine):
    # A6
    vps.team()
    assert vps.session_file is not None
    tokens = _tokens_in(vps.session_file)
    assert tokens, "the token file should hold the session token"
    text = _db_text(engine)
    assert ADA in text  # the grep sees the tables
    for t in tokens:
        assert t not in text


@pytest.mark.parametrize("backend", [NULL_KEYRING, FAIL_KEYRING], ids=["null", "fail"])
def test_without_a_keyring_the_session_goes_to_a_0600_file_in_a_0700_directory(vps, backend):
    vps.add_user(ADA)
    code = vps.login(ADA, env={"PYTHON_KEYRING_BACKEND": backend})
    path = vps.session_file
    assert path is not None, "exactly one token file should appear in the config dir"
    assert path.is_relative_to(vps.home / "config")
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    content = path.read_bytes()
    assert code.encode() not in content and content.strip() != code.encode()


def test_a_real_process_with_a_failing_keyring_logs_in_through_the_file_without_hanging(vps):
    # A13 (run_vpsagent's 60 s timeout is the "never hang" bound)
    vps.team()
    env = {"PYTHON_KEYRING_BACKEND": FAIL_KEYRING}
    vps.logout()
    assert vps.real("login", ADA, "--send", env=env).exit_code == OK
    code = vps.code(ADA)
    before = _snapshot(vps.home)
    r = vps.real("login", ADA, "--code-stdin", input=code + "\n", env=env)
    assert r.exit_code == OK, _show(r)
    files = _new_token_files(before, _snapshot(vps.home))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    r = vps.real("whoami", "--json", env=env)
    assert r.exit_code == OK and ADA in r.stdout, _show(r)


def test_a_token_file_readable_by_others_is_refused_with_exit_7(vps):
    vps.team()
    assert vps.session_file is not None
    vps.session_file.chmod(0o644)
    r = vps("servers", "list")
    assert r.exit_code == INTEGRITY, _show(r)
    _assert_one_error_line(r)


def test_a_session_is_still_valid_after_29_days(vps, clock):
    vps.team()
    clock.advance(29 * DAY)
    assert vps("servers", "list").exit_code == OK


def test_a_session_expires_after_30_days_by_default(vps, clock):
    vps.team()
    clock.advance(30 * DAY + HOUR)
    r = vps("servers", "list")
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r, mentions=("login",))


def test_the_session_lifetime_setting_is_honoured(vps, clock):
    vps.extra_env = {"VPSAGENT_SESSION_TTL": "1d"}
    vps.team()
    assert vps("servers", "list").exit_code == OK
    clock.advance(DAY + HOUR)
    assert vps("servers", "list").exit_code == NOT_ALLOWED


# ---------------------------------------------------------------------------------------------- API tokens


def test_tokens_create_json_gives_the_token_in_data_token(vps):
    # A9
    vps.team()
    token = vps.mint("ci-json")
    assert isinstance(token, str) and len(token) >= 32
    vps.logout()
    assert vps("servers", "list", env={"VPSAGENT_TOKEN": token}).exit_code == OK


def test_tokens_create_prints_the_token_once_on_stdout(vps):
    # A6, A9
    vps.team()
    r = vps("tokens", "create", "ci-plain")
    assert r.exit_code == OK, _show(r)
    runs = TOKEN_RUN.findall(r.stdout)
    assert runs, _show(r)
    token = max(runs, key=len)
    assert token not in r.stderr
    vps.logout()
    assert vps("servers", "list", env={"VPSAGENT_TOKEN": token}).exit_code == OK


def test_tokens_list_never_shows_the_token_again(vps):
    # A1
    vps.team()
    token = vps.mint("listed-token")
    for flags in ((), ("--json",)):
        r = vps("tokens", "list", *flags)
        assert r.exit_code == OK, _show(r)
        assert "listed-token" in r.stdout
        assert token not in r.stdout + r.stderr


def test_an_api_token_works_through_the_environment(vps):
    # A9, A13 (whoami with a token names the token's owner)
    vps.team()
    token = vps.mint("env-token")
    vps.logout()
    assert vps("servers", "list").exit_code == NOT_ALLOWED
    assert vps("servers", "list", env={"VPSAGENT_TOKEN": token}).exit_code == OK
    assert ADA in json.dumps(_whoami_data(vps, env={"VPSAGENT_TOKEN": token}))


def test_an_api_token_works_through_a_token_file(vps, tmp_path):
    # A2, A9
    vps.team()
    token = vps.mint("file-token")
    vps.logout()
    path = tmp_path / "ci-token"
    _write_0600(path, token + "\n")
    r = vps("--token-file", str(path), "servers", "list")
    assert r.exit_code == OK, _show(r)


def test_an_api_token_works_through_token_file_stdin(vps):
    # A2, A9
    vps.team()
    token = vps.mint("stdin-token")
    vps.logout()
    r = vps("--token-file", "-", "servers", "list", input=token + "\n")
    assert r.exit_code == OK, _show(r)


@pytest.mark.parametrize("where", ["before", "after"], ids=["global", "on-command"])
def test_a_token_as_a_flag_value_is_a_usage_error(vps, where):
    vps.team()
    token = vps.mint("flag-token")
    vps.logout()
    args = ("--token", token, "servers", "list") if where == "before" else ("servers", "list", "--token", token)
    r = vps(*args)
    assert r.exit_code == USAGE, _show(r)


def test_a_revoked_token_is_refused_with_exit_3(vps):
    # A5, A9
    vps.team()
    token = vps.mint("to-revoke")
    assert vps("servers", "list", env={"VPSAGENT_TOKEN": token}).exit_code == OK
    assert vps("tokens", "revoke", "to-revoke").exit_code == OK
    vps.logout()
    r = vps("servers", "list", env={"VPSAGENT_TOKEN": token})
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r)


def test_an_expired_token_is_refused_with_exit_3(vps, clock):
    # A9
    vps.team()
    token = vps.mint("short-lived", "--expires", "1d")
    vps.logout()
    assert vps("servers", "list", env={"VPSAGENT_TOKEN": token}).exit_code == OK
    clock.advance(2 * DAY)
    r = vps("servers", "list", env={"VPSAGENT_TOKEN": token})
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r)


def test_a_90_day_token_outlives_a_session_and_then_expires(vps, clock):
    # A9
    vps.team()
    token = vps.mint("quarterly", "--expires", "90d")
    vps.logout()
    clock.advance(60 * DAY)
    assert vps("servers", "list", env={"VPSAGENT_TOKEN": token}).exit_code == OK
    clock.advance(31 * DAY)
    assert vps("servers", "list", env={"VPSAGENT_TOKEN": token}).exit_code == NOT_ALLOWED


def test_an_unknown_token_is_refused_with_exit_3(vps):
    vps.team()
    vps.logout()
    r = vps("servers", "list", env={"VPSAGENT_TOKEN": "vpsagent_" + "x" * 43})
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r)


def test_a_token_role_limits_what_it_can_do(vps):
    # A9
    vps.team()
    token = vps.mint("read-only", "--role", "viewer")
    vps.logout()
    env = {"VPSAGENT_TOKEN": token}
    assert vps("servers", "list", env=env).exit_code == OK
    r = vps("run", "-s", "local", "true", env=env)
    assert r.exit_code == NOT_ALLOWED, _show(r)


def test_an_operator_cannot_mint_an_admin_token(vps):
    # A9
    vps.team((OTTO, "operator"))
    vps.become(OTTO)
    r = vps("tokens", "create", "escalate", "--role", "admin", "--json")
    if r.exit_code != OK:
        assert r.exit_code in (USAGE, NOT_ALLOWED), _show(r)
        return
    token = r.json()["data"]["token"]
    vps.logout()
    r = vps("users", "add", "mallory@example.com", "--role", "admin", env={"VPSAGENT_TOKEN": token}, smtp=False)
    assert r.exit_code == NOT_ALLOWED, _show(r)


def test_an_api_token_is_stored_only_hashed(vps, engine):
    vps.team()
    token = vps.mint("hashed-token")
    text = _db_text(engine)
    assert "hashed-token" in text  # the grep sees the tokens table
    assert token not in text


# ---------------------------------------------------------------------------------------------- users and roles


def test_the_first_user_added_becomes_admin(vps):
    # A7, A13
    r = vps("users", "add", ADA, smtp=False)  # nobody logged in, no users yet: bootstrap
    assert r.exit_code == OK, _show(r)
    vps.login(ADA)
    assert vps("auth", "require").exit_code == OK
    assert "admin" in _strings(_whoami_data(vps))
    rows = _rows_with(vps("users", "list", "--json").json()["data"], ADA)
    assert rows and "admin" in _strings(rows[0])


def test_a_later_user_added_without_a_role_is_not_admin(vps):
    # A13
    vps.team()
    vps.add_user(VIC)
    vps.become(VIC)
    assert "admin" not in _strings(_whoami_data(vps))
    assert vps("users", "add", OTTO, smtp=False).exit_code == NOT_ALLOWED


def test_users_list_shows_each_user_with_role_and_name(vps):
    # A7
    vps.team()
    vps.add_user(OTTO, "--role", "operator", "--name", "Otto Operator")
    r = vps("users", "list")
    assert r.exit_code == OK, _show(r)
    assert OTTO in r.stdout and "Otto Operator" in r.stdout and "operator" in r.stdout and ADA in r.stdout
    rows = _rows_with(vps("users", "list", "--json").json()["data"], OTTO)
    assert rows
    assert {"operator", "Otto Operator"} <= set(_strings(rows[0]))


def test_users_edit_changes_the_role(vps):
    # A5, A7
    vps.team((VIC, "viewer"))
    assert vps("users", "edit", VIC, "--role", "operator").exit_code == OK
    rows = _rows_with(vps("users", "list", "--json").json()["data"], VIC)
    assert rows and "operator" in _strings(rows[0]) and "viewer" not in _strings(rows[0])
    vps.become(VIC)
    assert vps("run", "-s", "local", "true").exit_code == OK


def test_users_disable_marks_the_user_disabled(vps):
    # A5, A7
    vps.team((VIC, "viewer"), (DORA, "viewer"))
    assert vps("users", "disable", DORA).exit_code == OK
    data = vps("users", "list", "--json").json()["data"]

    def is_disabled(row: dict) -> bool:
        return row.get("disabled") is True or "disabled" in [s.lower() for s in _strings(row)]

    assert is_disabled(_rows_with(data, DORA)[0])
    assert not is_disabled(_rows_with(data, VIC)[0])


@pytest.mark.parametrize("command", [("servers", "list"), ("history",), ("test", "history")], ids=" ".join)
def test_a_viewer_can_read(vps, command):
    vps.team((VIC, "viewer"))
    vps.become(VIC)
    r = vps(*command)
    assert r.exit_code == OK, _show(r)


VIEWER_DENIED = [
    (("run", "-s", "local", "true"), None, "operator"),
    (("ask", "-s", "local", "how full is the disk?"), None, "operator"),
    (("servers", "add", "web9", "--host", "127.0.0.1", "--port", "2222", "--user", "deploy", "--password-stdin"),
     "not-a-real-password\n", "admin"),
]


@pytest.mark.parametrize(("command", "stdin", "role"), VIEWER_DENIED, ids=["run", "ask", "servers-add"])
def test_a_viewer_cannot_change_things_and_is_told_the_role_needed(vps, command, stdin, role):
    # A14
    vps.team((VIC, "viewer"))
    vps.become(VIC)
    r = vps(*command, input=stdin, env=NO_AI)
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r, mentions=(role,))


def test_an_operator_can_run_on_local(vps):
    vps.team((OTTO, "operator"))
    vps.become(OTTO)
    r = vps("run", "-s", "local", "echo operator-was-here")
    assert r.exit_code == OK, _show(r)
    assert "operator-was-here" in r.stdout


OPERATOR_DENIED = [
    (("servers", "add", "web9", "--host", "127.0.0.1", "--port", "2222", "--user", "deploy", "--password-stdin"),
     "not-a-real-password\n"),
    (("users", "add", "eve@example.com", "--role", "viewer"), None),
    (("secret", "rekey"), None),
]


@pytest.mark.parametrize(("command", "stdin"), OPERATOR_DENIED, ids=["servers-add", "users-add", "secret-rekey"])
def test_an_operator_cannot_do_admin_work(vps, command, stdin):
    # A14
    vps.team((OTTO, "operator"))
    vps.become(OTTO)
    r = vps(*command, input=stdin, env={"VPSAGENT_NEW_SECRET": NEW_SECRET}, smtp=False)
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r, mentions=("admin",))


def test_an_admin_can_add_servers_and_users_and_run(vps):
    vps.team()
    r = vps("servers", "add", "web1", "--host", "127.0.0.1", "--port", "2222", "--user", "deploy",
            "--password-stdin", input="not-a-real-password\n")
    assert r.exit_code == OK, _show(r)
    vps.add_user(VIC, "--role", "viewer")
    assert vps("run", "-s", "local", "true").exit_code == OK
    r = vps("servers", "list")
    assert r.exit_code == OK and "web1" in r.stdout


@pytest.mark.parametrize("role", ["viewer", "operator"])
@pytest.mark.parametrize("mode", ["off", "require"])
def test_only_an_admin_can_change_the_auth_mode(vps, role, mode):
    member = VIC if role == "viewer" else OTTO
    vps.team((member, role))
    vps.become(member)
    r = vps("auth", mode)
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r, mentions=("admin",))
    vps.logout()
    assert vps("servers", "list").exit_code == NOT_ALLOWED  # still required


def test_an_admin_can_turn_auth_off_and_anonymous_use_works_again(vps):
    vps.team()
    assert vps("auth", "off").exit_code == OK
    vps.logout()
    assert vps("servers", "list").exit_code == OK
    assert vps("run", "-s", "local", "true").exit_code == OK


def test_with_auth_off_by_default_everything_works_as_the_os_user(vps):
    # A8, A12
    vps.add_user(ADA)  # users exist, nobody is logged in, auth was never required
    assert vps("servers", "list").exit_code == OK
    r = vps("run", "-s", "local", "echo as-the-os-user")
    assert r.exit_code == OK and "as-the-os-user" in r.stdout
    rows = _rows_with(vps("history", "--json").json()["data"], "echo as-the-os-user")
    assert rows and any(u in json.dumps(row) for row in rows for u in OS_USERS)


def test_adding_users_needs_an_admin_once_auth_is_required(vps):
    vps.team()
    vps.logout()
    r = vps("users", "add", VIC, "--role", "viewer", smtp=False)
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r)


# ---------------------------------------------------------------------------------------------- auth required


@pytest.mark.parametrize("command", [("servers", "list"), ("history",), ("run", "-s", "local", "true")], ids=" ".join)
def test_auth_required_refuses_anonymous_use_with_one_line_saying_how_to_log_in(vps, command):
    vps.team()
    vps.logout()
    r = vps(*command)
    assert r.exit_code == NOT_ALLOWED, _show(r)
    _assert_one_error_line(r, mentions=("login",))
    assert r.stdout.strip() == ""


def test_auth_required_json_error_envelope(vps):
    vps.team()
    vps.logout()
    r = vps("servers", "list", "--json")
    assert r.exit_code == NOT_ALLOWED
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == NOT_ALLOWED
    assert doc["errors"] and "login" in doc["errors"][0]["message"].lower()


def test_auth_required_commands_work_after_login(vps):
    vps.team()
    vps.logout()
    assert vps("servers", "list").exit_code == NOT_ALLOWED
    vps.login(ADA)
    for command in (("servers", "list"), ("history",), ("run", "-s", "local", "true")):
        r = vps(*command)
        assert r.exit_code == OK, _show(r)


def test_auth_required_is_enforced_for_every_client_of_the_database(vps, tmp_path):
    vps.team()
    other_home = tmp_path / "another-client"
    other_home.mkdir()
    r = vps.real("servers", "list", env={"VPSAGENT_HOME": str(other_home)})
    assert r.exit_code == NOT_ALLOWED, _show(r)


# ---------------------------------------------------------------------------------------------- who, everywhere


def test_history_rows_name_the_logged_in_user(vps):
    # A8
    vps.team((OTTO, "operator"))
    vps.become(OTTO)
    assert vps("run", "-s", "local", "echo hi-from-otto").exit_code == OK
    rows = _rows_with(vps("history", "--json").json()["data"], "echo hi-from-otto")
    assert rows and any(OTTO in json.dumps(row) for row in rows)


def test_history_rows_name_the_token_used(vps):
    # A8, A9
    vps.team()
    token = vps.mint("nightly-ci", "--role", "operator")
    vps.logout()
    env = {"VPSAGENT_TOKEN": token}
    assert vps("run", "-s", "local", "echo hi-from-ci", env=env).exit_code == OK
    rows = _rows_with(vps("history", "--json", env=env).json()["data"], "echo hi-from-ci")
    assert rows and any(ADA in json.dumps(row) and "nightly-ci" in json.dumps(row) for row in rows)


def test_history_user_filters_by_email(vps):
    vps.team((OTTO, "operator"))
    assert vps("run", "-s", "local", "echo mark-ada").exit_code == OK
    vps.become(OTTO)
    assert vps("run", "-s", "local", "echo mark-otto").exit_code == OK
    r = vps("history", "--user", OTTO, "--json")
    assert r.exit_code == OK, _show(r)
    assert "mark-otto" in r.stdout and "mark-ada" not in r.stdout
    r = vps("history", "--user", ADA, "--json")
    assert "mark-ada" in r.stdout and "mark-otto" not in r.stdout


def test_history_verify_passes_with_user_and_token_rows(vps):
    vps.team((OTTO, "operator"))
    token = vps.mint("verify-ci", "--role", "operator")
    assert vps("run", "-s", "local", "echo by-ada").exit_code == OK
    vps.become(OTTO)
    assert vps("run", "-s", "local", "echo by-otto").exit_code == OK
    vps.logout()
    assert vps("run", "-s", "local", "echo by-token", env={"VPSAGENT_TOKEN": token}).exit_code == OK
    r = vps("history", "verify", env={"VPSAGENT_TOKEN": token})
    assert r.exit_code == OK, _show(r)


# ---------------------------------------------------------------------------------------------- secrets


def test_code_session_token_and_smtp_password_never_appear_in_output(vps):
    # A1, A6
    vps.team((OTTO, "operator"))
    vps.logout()
    r = vps.send(OTTO, "--json")
    assert r.exit_code == OK and r.json()["ok"] is True
    code = vps.code(OTTO)
    before = _snapshot(vps.home)
    r = vps.real("login", OTTO, "--code-stdin", input=code + "\n")  # a real process: no test-runner echo
    assert r.exit_code == OK, _show(r)
    files = _new_token_files(before, _snapshot(vps.home))
    assert len(files) == 1
    tokens = _tokens_in(files[0])
    assert tokens
    for command in (("whoami", "--json"), ("run", "--json", "-s", "local", "echo secret-check"),
                    ("history", "--json"), ("tokens", "list", "--json"), ("servers", "list", "--json"),
                    ("users", "list", "--json")):
        vps(*command)
    secrets_ = [*vps.codes, *tokens, vps.mail.password]
    for res in vps.results:
        # click's test runner echoes stdin into stdout when a command prompts; the real process above is the
        # check for the `--code-stdin` step, so an in-process one only has its stderr checked.
        stdout = "" if id(res) in vps.inprocess_verifies else res.stdout
        for s in secrets_:
            assert s not in stdout and s not in res.stderr, f"secret leaked\n{_show(res)}"


def test_code_session_token_and_smtp_password_never_stored(vps, engine):
    # A6
    vps.team((OTTO, "operator"))
    code = vps.become(OTTO)
    session_file = vps.session_file
    assert session_file is not None
    tokens = _tokens_in(session_file)
    assert tokens
    secrets_ = [code, *tokens, vps.mail.password]
    text = _db_text(engine)
    assert OTTO in text  # the grep sees the users table
    for s in secrets_:
        assert s not in text
    for path in vps.home.rglob("*"):  # the SQLite file, its WAL, logs, config
        if path.is_file() and path != session_file:
            data = path.read_bytes()
            for s in secrets_:
                assert s.encode() not in data, f"{s!r} found in {path}"
    assert code.encode() not in session_file.read_bytes()


# ---------------------------------------------------------------------------------------------- migration


def _existing_home(vps: Vps) -> tuple[Any, Any]:
    r = vps("servers", "add", "web1", "--host", "127.0.0.1", "--port", "2222", "--user", "deploy",
            "--password-stdin", input="not-a-real-password\n")
    assert r.exit_code == OK, _show(r)
    assert vps("run", "-s", "local", "echo before-upgrade").exit_code == OK
    servers = vps("servers", "list", "--json").json()["data"]
    history = vps("history", "--json").json()["data"]
    return servers, history


def test_db_upgrade_keeps_servers_and_history(vps):
    servers, history = _existing_home(vps)
    assert "web1" in json.dumps(servers) and "before-upgrade" in json.dumps(history)
    r = vps("db", "upgrade")
    assert r.exit_code == OK, _show(r)
    assert vps("servers", "list", "--json").json()["data"] == servers
    assert vps("history", "--json").json()["data"] == history
    assert vps("history", "verify").exit_code == OK


def test_after_db_upgrade_of_an_existing_home_the_first_user_is_admin(vps):
    _existing_home(vps)
    assert vps("db", "upgrade").exit_code == OK
    vps.add_user(ADA)
    vps.login(ADA)
    assert vps("auth", "require").exit_code == OK
    assert "admin" in _strings(_whoami_data(vps))
    r = vps("servers", "list")
    assert r.exit_code == OK and "web1" in r.stdout
