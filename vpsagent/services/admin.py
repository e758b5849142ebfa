"""Operations on vpsagent itself: doctor, database upgrade/current, secret rekey."""

from __future__ import annotations

import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent.errors import CredentialError, InvalidInput, VpsAgentError
from vpsagent.secret import Secret
from vpsagent.settings import Settings, mask_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from vpsagent.crypto import Keyring
    from vpsagent.db.models import DeploySecret, GithubIntegration, Server
    from vpsagent.services.context import Context

MIN_SECRET_LEN = 16


# -- doctor ---------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


@dataclass
class DoctorReport:
    """Values are bare (a path, a masked URL, null when unset): where each setting came
    from is in `sources`, and what a person is told about a value is in `notes`."""

    paths: dict[str, str | None]
    settings: dict[str, str | None]
    checks: list[Check] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


def doctor(settings: Settings) -> DoctorReport:
    """Every path and setting in use (secrets masked) and whether each part works."""
    report = DoctorReport(paths=_doctor_paths(settings), settings=_doctor_settings(settings),
                          sources=_doctor_sources(settings), notes=_doctor_notes(settings))
    add = report.checks.append
    engine = _check_database(settings, add)
    _check_permissions(settings, add)
    _check_secret(settings, engine, add)
    add(Check("anthropic api key", "ok" if settings.anthropic_api_key else "warn",
              "set" if settings.anthropic_api_key else "ANTHROPIC_API_KEY not set: `ask`, `chat`, "
              "`test generate` need it"))
    if settings.smtp_url:
        add(_check_smtp(settings.smtp_url))
    else:
        add(Check("smtp", "ok", "not configured (VPSAGENT_SMTP_URL): `login` needs it"))
    add(_check_policy(settings))
    add(_check_sandbox())
    return report


def doctor_servers(ctx: Context) -> list[Check]:
    """`doctor --servers`: connect to every server, as `servers check` does, but pin nothing
    (a doctor only looks): each one's host key and how long the connection took."""
    from vpsagent.db.inventory import LOCAL
    from vpsagent.services.fleet import Selection
    from vpsagent.services.probe import check_servers

    try:
        results = check_servers(ctx, Selection.of(all_=True), pin=False)
    except VpsAgentError as exc:
        return [Check("servers", "fail", exc.line())]
    checks = []
    for r in results:
        if r.server == LOCAL:
            continue
        if r.ok:
            ms = f", connected in {r.connect_ms:.0f} ms" if r.connect_ms is not None else ""
            checks.append(Check(f"server {r.server}", "ok", f"{r.address}: {r.host_key_type} {r.fingerprint}{ms}"))
        elif r.error_code == "host_key_unknown":
            checks.append(Check(f"server {r.server}", "warn", f"{r.address}: host key not pinned yet "
                                f"(`vpsagent servers check {r.server}` pins it)"))
        else:
            checks.append(Check(f"server {r.server}", "fail", r.error or str(r.status)))
    return checks or [Check("servers", "ok", "no servers in the inventory besides `local`")]


def _check_sandbox() -> Check:
    """Whether this machine (the `local` server) offers the read-only sandbox."""
    import subprocess

    from vpsagent.remote.sandbox import DETECT, Sandbox, parse_detect

    try:
        out = subprocess.run(["/bin/sh", "-c", DETECT], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    kind = parse_detect(out)
    if kind == Sandbox.NONE:
        return Check("sandbox", "warn", "no read-only sandbox on this machine (install bubblewrap, or run as root): "
                     "read-only commands on `local` run unconfined")
    return Check("sandbox", "ok", f"read-only commands on `local` run in a read-only view ({kind})")


def _doctor_paths(settings: Settings) -> dict[str, str | None]:
    return {
        "home": str(settings.home) if settings.home else None,
        "config dir": str(settings.config_dir),
        "data dir": str(settings.data_dir),
        "config file": str(settings.config_file),
        "key file": str(settings.key_file),
        "policy file": str(settings.policy_file),
    }


def _doctor_settings(settings: Settings) -> dict[str, str | None]:
    """Each setting in use; secrets only say whether they are set (`***`)."""
    has_secret = settings.secret is not None or settings.key_file.exists()
    return {
        "database_url": mask_url(settings.database_url),
        "secret": "***" if has_secret else None,
        "model": settings.model,
        "anthropic_api_key": "***" if settings.anthropic_api_key else None,
        "anthropic_base_url": settings.anthropic_base_url or None,
        "smtp_url": "smtp(s)://***" if settings.smtp_url else None,
        "mail_from": settings.mail_from or None,
        "github_token": "***" if settings.github_token else None,
        "github_api_url": settings.github_api_url,
    }


def _doctor_sources(settings: Settings) -> dict[str, str]:
    """Where each setting came from: flag, environment, config file or default."""
    src = {k: str(v) for k, v in settings.sources.items() if k in ("database_url", "model") and v}
    if settings.secret is not None:
        src["secret"] = str(settings.secret_source)
    elif settings.key_file.exists():
        src["secret"] = "key file"
    return src


def _doctor_notes(settings: Settings) -> dict[str, str]:
    """What a person is told beside a value (text only; never part of the value)."""
    notes = {"home": "not set: platform defaults"} if not settings.home else {}
    for name, path in (("config file", settings.config_file), ("policy file", settings.policy_file)):
        if not path.exists():
            notes[name] = "absent"
    if settings.secret is None and not settings.key_file.exists():
        notes["secret"] = "none yet: a key file is created when the first credential is stored"
    if not settings.anthropic_base_url:
        notes["anthropic_base_url"] = "default"
    return notes


def _check_database(settings: Settings, add: Callable[[Check], None]) -> Engine | None:
    """Connect and read the revision without migrating anything. The engine, when it
    connected (the secret check opens the vault with it), else None."""
    from vpsagent.db.engine import KNOWN_REVISIONS, SCHEMA_HEAD, current_revision, make_engine

    try:
        engine = make_engine(settings.database_url, default_dir=settings.data_dir)
        with engine.connect() as conn:
            rev = current_revision(conn)
    except VpsAgentError as exc:
        add(Check("database", "fail", exc.line()))
        return None
    except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
        add(Check("database", "fail", f"cannot connect: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"))
        return None
    if rev == SCHEMA_HEAD:
        add(Check("database", "ok", f"{engine.dialect.name}, schema {rev} (current)"))
    elif rev is None:
        add(Check("database", "ok", f"{engine.dialect.name}, empty (the schema is created on first use)"))
    elif rev in KNOWN_REVISIONS:
        add(Check("database", "warn", f"schema {rev}, behind {SCHEMA_HEAD}: run `vpsagent db upgrade`"))
    else:
        add(Check("database", "fail", f"schema {rev} is newer than this vpsagent: upgrade vpsagent"))
    return engine


def _check_permissions(settings: Settings, add: Callable[[Check], None]) -> None:
    """The SQLite database holds the audit log and the encrypted credentials: owner-only."""
    from vpsagent.db.engine import exposed_files

    if not settings.database_url.startswith("sqlite"):
        return
    exposed = exposed_files(settings.database_url)
    if exposed:
        add(Check("database permissions", "fail", "; ".join(exposed)))
    else:
        add(Check("database permissions", "ok", "the database and its directory are readable by you only"))


def _check_secret(settings: Settings, engine: Engine | None, add: Callable[[Check], None]) -> None:
    """The master secret (the variable or the key file), and whether it opens the vault."""
    secret: Secret | None
    try:
        if settings.secret is None and engine is not None and _check_pending_key(settings, engine, add):
            return  # the pending key is the one that opens the credentials (said in its check)
        if settings.secret is not None:
            secret = settings.secret
            if len(secret.reveal_str()) < MIN_SECRET_LEN:
                add(Check("secret", "warn", f"{settings.secret_source} is shorter than {MIN_SECRET_LEN} characters"))
            else:
                add(Check("secret", "ok", f"from {settings.secret_source}"))
        elif settings.key_file.exists():
            mode = stat.S_IMODE(settings.key_file.stat().st_mode)
            if mode & 0o077:
                add(Check("secret", "fail", f"key file mode {mode:04o} is readable by others: chmod 600 {settings.key_file}"))
                secret = None
            else:
                secret = Secret(settings.key_file.read_text().strip())
                add(Check("secret", "ok", f"key file {settings.key_file} (mode {mode:04o})"))
        else:
            secret = None
            add(_no_key_file(settings, engine))
        if secret is not None and engine is not None:
            _check_vault(engine, secret, add)
    except VpsAgentError as exc:
        add(Check("secret", "fail", exc.line()))


def _vault_verifier(engine: Engine) -> str | None:
    from sqlalchemy import inspect

    from vpsagent.services.vault import read_verifier

    with engine.connect() as conn:
        if not inspect(conn).has_table("vault"):
            return None
    return read_verifier(engine)


def _no_key_file(settings: Settings, engine: Engine | None) -> Check:
    if engine is not None and _vault_verifier(engine) is not None:
        from vpsagent.services.vault import stored_credentials

        if stored_credentials(engine):
            return Check("secret", "fail", f"VPSAGENT_SECRET is not set and the key file {settings.key_file} is "
                         "missing, but the database holds encrypted credentials: set VPSAGENT_SECRET or restore "
                         "the key file")
    return Check("secret", "ok", "no secret yet: a key file is created when the first credential is stored")


def _check_pending_key(settings: Settings, engine: Engine, add: Callable[[Check], None]) -> bool:
    """A `secret.key.new` left by an interrupted `secret rekey`: True when it is the key the
    vault verifies (the next command adopts it)."""
    from vpsagent.services.vault import pending_key_file, pending_key_opens

    pending = pending_key_file(settings.key_file)
    if not pending.exists():
        return False
    verifier = _vault_verifier(engine)
    if verifier is not None and pending_key_opens(settings.key_file, verifier):
        add(Check("pending key", "warn", f"{pending} is the key the credentials are encrypted with (a `secret "
                  f"rekey` was interrupted after its commit): the next command adopts it as {settings.key_file}"))
        return True
    add(Check("pending key", "warn", f"{pending} is left from a `secret rekey` that did not commit: the "
              f"credentials still use {settings.key_file}; remove {pending.name} once no rekey is running"))
    return False


def _check_policy(settings: Settings) -> Check:
    """The agent's policy file parses (a broken one would stop every `ask`)."""
    from vpsagent.safety.policy import load_policy

    if not settings.policy_file.exists():
        return Check("policy", "ok", "no policy file: the default rules apply")
    try:
        load_policy(settings.policy_file)
    except VpsAgentError as exc:
        return Check("policy", "fail", exc.message)
    return Check("policy", "ok", f"{settings.policy_file} parses")


def _check_vault(engine: Engine, secret: Secret, add: Callable[[Check], None]) -> None:
    from sqlalchemy import inspect

    from vpsagent.crypto import Keyring, params_of
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Vault

    with engine.connect() as conn:
        if not inspect(conn).has_table("vault"):
            return
    with session_scope(engine) as s:
        vault = s.get(Vault, 1)
    if vault is None:
        return
    try:
        Keyring(secret, params_of(vault.verifier)).check_verifier(vault.verifier)
        add(Check("credentials", "ok", "the secret opens this database's credentials"))
    except CredentialError as exc:
        add(Check("credentials", "fail", exc.message))


def _check_smtp(url: Secret) -> Check:
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url.reveal_str())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            return Check("smtp", "fail", "VPSAGENT_SMTP_URL must look like smtp://user:pass@host:port or smtps://...")
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
        tls = "TLS" if parts.scheme == "smtps" else ("STARTTLS" if parse_qs(parts.query).get("starttls") else "plain")
        return Check("smtp", "ok", f"{parts.hostname}:{port} ({tls}) — configuration only, not contacted")
    except ValueError:  # its text can quote the password (e.g. as a "port")
        return Check("smtp", "fail", "VPSAGENT_SMTP_URL is malformed: expected smtp://user:pass@host:port")


# -- database -------------------------------------------------------------------------------

@dataclass
class DbRevision:
    url: str
    dialect: str
    revision: str | None
    head: str
    before: str | None = None


def db_current(settings: Settings) -> DbRevision:
    from vpsagent.db.engine import SCHEMA_HEAD, current_revision, make_engine

    engine = make_engine(settings.database_url, default_dir=settings.data_dir)
    try:
        with engine.connect() as conn:
            rev = current_revision(conn)
    except Exception as exc:  # noqa: BLE001
        from vpsagent.errors import DatabaseError

        raise DatabaseError(f"cannot connect to {mask_url(settings.database_url)}: "
                            f"{str(exc).splitlines()[0]}") from None
    return DbRevision(mask_url(settings.database_url), engine.dialect.name, rev, SCHEMA_HEAD)


def db_upgrade(settings: Settings) -> DbRevision:
    from vpsagent.db.engine import SCHEMA_HEAD, ensure_schema, make_engine

    before = db_current(settings).revision
    engine = make_engine(settings.database_url, default_dir=settings.data_dir)
    ensure_schema(engine)
    return DbRevision(mask_url(settings.database_url), engine.dialect.name, SCHEMA_HEAD, SCHEMA_HEAD, before)


# -- secret rekey ------------------------------------------------------------------------------

@dataclass
class RekeyResult:
    records: int
    fields: int
    key_file: str | None  # the key file that now holds the new secret, if we wrote one
    next_step: str


def rekey(settings: Settings, engine: Engine, new_secret: Secret | None, notify: Callable[[str], None]) -> RekeyResult:
    """Re-encrypt every credential under a new secret, in one transaction, verified before commit."""
    import os

    from vpsagent.crypto import Keyring, new_params
    from vpsagent.services.vault import get_keyring

    uses_key_file = settings.secret is None
    new_secret = _checked_new_secret(new_secret, uses_key_file)
    old = get_keyring(settings, engine, notify)  # proves the current secret first
    if settings.secret is not None and new_secret == settings.secret:
        raise InvalidInput("the new secret is the same as the current one")
    new = Keyring(new_secret, new_params())

    # The new key goes to disk (beside the old one) before the commit, so a crash can never
    # leave credentials encrypted under a secret that exists nowhere.
    pending = _write_pending_key(settings.key_file, new_secret) if uses_key_file else None
    try:
        records, fields = _reencrypt_all(engine, old, new)
    except BaseException:
        if pending is not None:
            pending.unlink(missing_ok=True)
        raise
    if pending is not None:
        try:
            os.replace(pending, settings.key_file)
        except FileNotFoundError:  # another vpsagent adopted it first (services/vault.py)
            pass
        return RekeyResult(records, fields, str(settings.key_file), "the key file now holds the new secret")
    return RekeyResult(records, fields, None,
                       f"set {settings.secret_source} to the new secret everywhere vpsagent runs "
                       "(the old one no longer opens the credentials)")


def _checked_new_secret(new_secret: Secret | None, uses_key_file: bool) -> Secret:
    """The new secret as given, or a random one for a key file; long enough either way."""
    import secrets as pysecrets

    if new_secret is None:
        if not uses_key_file:
            raise InvalidInput("give the new secret in VPSAGENT_NEW_SECRET or on stdin")
        new_secret = Secret(pysecrets.token_urlsafe(32))
    if len(new_secret.reveal_str()) < MIN_SECRET_LEN:
        raise InvalidInput(f"the new secret must be at least {MIN_SECRET_LEN} characters")
    return new_secret


def _write_pending_key(key_file: Path, new_secret: Secret) -> Path:
    """The new secret in `<key file>.new` (mode 600, synced), renamed over the key file after the commit."""
    import os

    pending = key_file.with_name(key_file.name + ".new")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new_secret.reveal_str() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return pending


def _reencrypt_all(engine: Engine, old: Keyring, new: Keyring) -> tuple[int, int]:
    """Every envelope re-encrypted and the vault's verifier replaced, checked under the new
    key before the one transaction commits. Returns (records, fields) changed."""
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import ENCRYPTED_FIELDS, Vault, utcnow

    records = fields = 0
    with session_scope(engine) as s:
        for table, cols in ENCRYPTED_FIELDS.items():
            for row in _rows(s, table):
                touched = False
                for col in cols:
                    env = getattr(row, col)
                    if not env:
                        continue
                    plain = old.decrypt(env, table=table, record_id=_row_id(row), field=col)
                    setattr(row, col, new.encrypt(plain.reveal_bytes(), table=table, record_id=_row_id(row), field=col))
                    fields += 1
                    touched = True
                records += touched
                s.add(row)
        vault = s.get(Vault, 1)
        assert vault is not None
        vault.verifier = new.make_verifier()
        vault.rotated_at = utcnow()
        s.add(vault)
        s.flush()
        # verify: every stored envelope opens under the new secret before we commit
        for table, cols in ENCRYPTED_FIELDS.items():
            for row in _rows(s, table):
                for col in cols:
                    if getattr(row, col):
                        new.decrypt(getattr(row, col), table=table, record_id=_row_id(row), field=col)
        new.check_verifier(vault.verifier)
    return records, fields


def _rows(s: Session, table: str) -> Sequence[Server | GithubIntegration | DeploySecret]:
    """Every row of a table that holds envelopes (db.types.ENCRYPTED_FIELDS names them)."""
    from sqlmodel import select

    from vpsagent.db.models import DeploySecret, GithubIntegration, Server

    if table == "servers":
        return s.exec(select(Server)).all()
    if table == "github_integrations":
        return s.exec(select(GithubIntegration)).all()
    if table == "deploy_secrets":
        return s.exec(select(DeploySecret)).all()
    raise KeyError(table)  # a table added to ENCRYPTED_FIELDS must be added here (a test rekeys every one)


def _row_id(row: Server | GithubIntegration | DeploySecret) -> int:
    assert row.id is not None, "a stored row has its id"
    return row.id
