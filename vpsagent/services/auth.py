"""Logins: users and roles, emailed one-time codes, sessions, API tokens, the auth mode.

Everything secret is stored only as a hash. Login codes are 8 digits from `secrets`,
kept as HMAC-SHA256 under a key derived from the master secret and bound to the login
attempt they were sent for; valid 10 minutes, used once, burnt after 5 wrong tries; a
new request voids the older ones; at most 5 requests per address per hour. An address
without an account (or a disabled one) gets the same words, the same exit code and the
same SMTP round trips (a rehearsal without the message), so nobody can learn who has an
account. Sessions and API tokens are 256-bit random tokens, stored as SHA-256.

The auth mode lives in the database (`db_settings`), so every client of a shared
database obeys it: `off` (a personal database: identity is the OS user, nothing is
enforced) or `required` (every command that reads or changes servers, credentials,
history or conversations needs a login or a token with a role that allows it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.db.types import utcnow
from vpsagent.secret import Secret
from vpsagent.services.context import Context

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


class Role(StrEnum):
    VIEWER = "viewer"  # inventory without secrets, history, test history and reports, own conversations
    OPERATOR = "operator"  # + run, ask, chat, test run, support, deploy, apply
    ADMIN = "admin"  # + servers add/edit/remove/import, users, others' tokens, secret rekey, auth mode

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class AuthMode(StrEnum):
    OFF = "off"
    REQUIRED = "required"


# Which role each command needs when the database requires logins (None: no login needed,
# the command touches no server, credential, history or conversation). A command missing
# here needs ADMIN: the table fails closed, and a test checks that every command is in it.
COMMAND_ROLES: Mapping[str, Role | None] = {
    "login": None, "logout": None, "whoami": None, "doctor": None, "db current": None,
    "test validate": None, "safety check": None, "completion": None,
    "servers list": Role.VIEWER, "servers show": Role.VIEWER,
    "history": Role.VIEWER, "history show": Role.VIEWER, "history verify": Role.VIEWER,
    "test history": Role.VIEWER, "test show": Role.VIEWER,
    "conversations list": Role.VIEWER, "conversations show": Role.VIEWER, "conversations export": Role.VIEWER,
    "tokens create": Role.VIEWER, "tokens list": Role.VIEWER, "tokens revoke": Role.VIEWER,
    "support list": Role.VIEWER, "support show": Role.VIEWER,
    "deploy list": Role.VIEWER, "deploy show": Role.VIEWER, "deploy releases": Role.OPERATOR,
    "plan show": Role.VIEWER, "plan validate": Role.VIEWER, "plan list": Role.VIEWER, "plan history": Role.VIEWER,
    "run": Role.OPERATOR, "ask": Role.OPERATOR, "chat": Role.OPERATOR, "servers check": Role.OPERATOR,
    "test run": Role.OPERATOR, "test generate": Role.OPERATOR, "support": Role.OPERATOR,
    "deploy": Role.OPERATOR, "deploy rollback": Role.OPERATOR, "deploy unlock": Role.OPERATOR,
    "deploy validate": Role.VIEWER, "apply": Role.OPERATOR, "ssh": Role.OPERATOR, "cp": Role.OPERATOR,
    "github list": Role.VIEWER, "github connect": Role.ADMIN, "github remove": Role.ADMIN,
    "deploy secret list": Role.VIEWER, "deploy secret set": Role.ADMIN, "deploy secret remove": Role.ADMIN,
}

CODE_DIGITS = 8
CODE_TTL = timedelta(minutes=10)
MAX_TRIES = 5  # wrong codes before the code is burnt
SENDS_PER_HOUR = 5
TOKEN_PREFIX = "vpsa_"
DEFAULT_TOKEN_TTL = "90d"
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
# Only refresh last_used_at this often: every command of a logged-in user would otherwise write.
LAST_USED_EVERY = timedelta(minutes=1)
WRONG_CODE = "the code is wrong, expired or already used"
NEW_CODE_HINT = "ask for a new one with `vpsagent login EMAIL`"


@dataclass(frozen=True)
class Identity:
    """Who runs this command: a user through a session or an API token, or only the OS user."""

    os_user: str | None
    user_id: int | None = None
    email: str | None = None
    name: str = ""
    role: Role | None = None
    via: str = "os"  # os | session | token
    token_name: str | None = None
    expires_at: datetime | None = None

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None


@dataclass(frozen=True)
class LoginAttempt:
    email: str
    attempt: str
    expires_at: datetime


@dataclass(frozen=True)
class Grant:
    """A new session or API token: the token itself is shown once and never stored."""

    token: Secret
    email: str
    role: Role
    expires_at: datetime | None
    name: str | None = None


@dataclass(frozen=True)
class UserView:
    email: str
    name: str
    role: Role
    disabled: bool
    created_at: datetime | None
    last_login_at: datetime | None


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    owner: str
    role: Role
    prefix: str
    created_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


# --------------------------------------------------------------------------- helpers


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise errors.InvalidInput(f"{email!r} is not an email address")
    return email


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise errors.InvalidInput(f"unknown role {value!r}: use viewer, operator or admin") from None


def _code_key(ctx: Context) -> bytes:
    """A key for login codes, derived from the master secret (HKDF), never stored."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from vpsagent.services.vault import master_secret

    secret = master_secret(ctx.settings, ctx.engine, ctx.notify)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"vpsagent login codes v1").derive(secret.reveal_bytes())


def _code_hash(key: bytes, attempt: str, code: str) -> str:
    return hmac.new(key, f"{attempt}:{code}".encode(), hashlib.sha256).hexdigest()


def token_hash(token: Secret) -> str:
    return hashlib.sha256(token.reveal_bytes()).hexdigest()


def _aware(dt: datetime | None) -> datetime | None:
    from datetime import UTC

    return None if dt is None else (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt)


# --------------------------------------------------------------------------- the auth mode


def auth_mode(engine: Engine) -> AuthMode:
    from sqlalchemy import select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import db_settings

    with transaction(engine) as conn:
        value = conn.execute(select(db_settings.c.value).where(db_settings.c.key == "auth_mode")).scalar()
    return AuthMode.REQUIRED if value == AuthMode.REQUIRED else AuthMode.OFF


def set_auth_mode(ctx: Context, mode: AuthMode) -> AuthMode:
    """`auth require` / `auth off`: admins only, whatever the current mode."""
    from sqlalchemy import delete, func, insert, select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import db_settings, users

    who = require_admin(ctx)
    with transaction(ctx.engine) as conn:
        if mode == AuthMode.REQUIRED:
            admins = conn.execute(select(func.count()).select_from(users).where(
                users.c.role == Role.ADMIN, users.c.disabled.is_(False))).scalar_one()
            if not admins:  # pragma: no cover - require_admin already needs one
                raise errors.UsageError("add an admin first: `vpsagent users add EMAIL`")
        conn.execute(delete(db_settings).where(db_settings.c.key == "auth_mode"))
        conn.execute(insert(db_settings).values(key="auth_mode", value=str(mode), updated_at=utcnow(),
                                                updated_by=who.email))
    return mode


# --------------------------------------------------------------------------- who is this


def _os_user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def identify(ctx: Context, token: Secret | None, *, explicit: bool) -> Identity:
    """The identity a token stands for. `explicit`: the user handed us this token (VPSAGENT_TOKEN,
    --token-file), so a bad one is an error; a stale stored login is only an error when the
    database requires logins."""
    base = Identity(os_user=_os_user())
    if token is None:
        return base
    found = _lookup(ctx.engine, token, base.os_user)
    if found is None:
        if explicit or auth_mode(ctx.engine) == AuthMode.REQUIRED:
            what = "the API token" if explicit else "your login"
            raise errors.NotLoggedIn(f"{what} is not valid (expired, revoked or unknown)",
                                     hint="log in with `vpsagent login EMAIL`")
        return base
    return found


def _lookup(engine: Engine, token: Secret, os_user: str | None) -> Identity | None:
    """The user behind a session or API token that is valid now, or None."""
    from sqlalchemy import select, update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import api_tokens, sessions, users

    h, now = token_hash(token), utcnow()
    with transaction(engine) as conn:
        for t, via in ((sessions, "session"), (api_tokens, "token")):
            row = conn.execute(select(t, users.c.email.label("user_email"), users.c.name.label("user_name"),
                                      users.c.role.label("user_role"), users.c.disabled)
                               .join(users, users.c.id == t.c.user_id).where(t.c.token_hash == h)).first()
            if row is None:
                continue
            expires = _aware(row.expires_at)
            if row.revoked_at is not None or row.disabled or (expires is not None and expires <= now):
                return None
            last = _aware(row.last_used_at)
            if last is None or now - last > LAST_USED_EVERY:
                conn.execute(update(t).where(t.c.id == row.id).values(last_used_at=now))
            role = Role(row.user_role)
            if via == "token":  # a token never has more than its owner has now
                role = min(role, Role(row.role), key=lambda r: r.rank)
            return Identity(os_user=os_user, user_id=row.user_id, email=row.user_email, name=row.user_name,
                            role=role, via=via, token_name=row.name if via == "token" else None,
                            expires_at=expires)
    return None


def authorize(ctx: Context, command: str) -> None:
    """Check that this command may run for whoever runs it; NotLoggedIn / NotAllowed (exit 3).

    Commands that need no login (and every command while the database does not require
    logins) pass without resolving anyone: `doctor` and `--help` never touch the database.
    """
    need = COMMAND_ROLES.get(command, Role.ADMIN)
    if need is None or auth_mode(ctx.engine) == AuthMode.OFF:
        return
    _require(ctx.identity(), need, command)


def _require(ident: Identity, need: Role, what: str) -> Identity:
    if not ident.logged_in or ident.role is None:
        raise errors.NotLoggedIn(f"`{what}` needs a login: this database requires one",
                                 hint="vpsagent login EMAIL (scripts: VPSAGENT_TOKEN or --token-file)")
    if ident.role.rank < need.rank:
        raise errors.NotAllowed(f"`{what}` needs the {need} role; {ident.email} has {ident.role}")
    return ident


def require_admin(ctx: Context, what: str = "this") -> Identity:
    return _require(ctx.identity(), Role.ADMIN, what)


# --------------------------------------------------------------------------- login codes


def request_code(ctx: Context, email: str) -> LoginAttempt:
    """Send a login code to `email` (or, for an address without an active account, go through
    the same motions without sending anything)."""
    from vpsagent.services import mail

    cfg = mail.smtp_config(ctx.settings)  # no SMTP: exit 2, saying what to set
    email = normalize_email(email)
    key = _code_key(ctx)
    attempt, code = secrets.token_hex(16), f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    expires = utcnow() + CODE_TTL
    row_id, eligible = _store_code(ctx.engine, email, attempt, _code_hash(key, attempt, code), expires)
    try:
        if eligible:
            mail.send(cfg, email, "Your vpsagent login code",
                      f"Your vpsagent login code is {code}\n\nIt is valid for 10 minutes and works once.\n"
                      "If you did not ask for it, ignore this message.\n")
        else:
            mail.rehearse(cfg)
    except mail.MailError:
        _set_code_state(ctx.engine, row_id, "failed")  # never usable: it was not sent
        raise
    _set_code_state(ctx.engine, row_id, "sent")
    return LoginAttempt(email=email, attempt=attempt, expires_at=expires)


def _store_code(engine: Engine, email: str, attempt: str, code_hash: str, expires: datetime) -> tuple[int, bool]:
    from sqlalchemy import func, insert, select, update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import otp_codes, users

    now = utcnow()
    with transaction(engine) as conn:
        recent = conn.execute(select(func.count()).select_from(otp_codes).where(
            otp_codes.c.email == email, otp_codes.c.created_at > now - timedelta(hours=1))).scalar_one()
        if recent >= SENDS_PER_HOUR:
            raise errors.NotAllowed(f"too many login codes asked for {email} in the last hour",
                                    hint="wait a while, then ask again")
        user = conn.execute(select(users.c.id, users.c.disabled).where(users.c.email == email)).first()
        conn.execute(update(otp_codes).where(otp_codes.c.email == email,
                                             otp_codes.c.state.in_(("pending", "sent"))).values(state="void"))
        row_id = conn.execute(insert(otp_codes).values(
            email=email, user_id=user.id if user is not None else None, attempt=attempt, code_hash=code_hash,
            state="pending", created_at=now, expires_at=expires, attempts=0).returning(otp_codes.c.id)).scalar_one()
    return int(row_id), user is not None and not user.disabled


def _set_code_state(engine: Engine, row_id: int, state: str) -> None:
    from sqlalchemy import update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import otp_codes

    with transaction(engine) as conn:
        conn.execute(update(otp_codes).where(otp_codes.c.id == row_id).values(state=state))


def verify_code(ctx: Context, email: str, attempt: str, code: str) -> Grant:
    """Exchange a code for a session. Wrong, expired, used, burnt and unknown all read the same."""
    email = normalize_email(email)
    key = _code_key(ctx)
    code = code.strip()
    user_id = _check_code(ctx.engine, email, attempt, _code_hash(key, attempt, code), code)
    if user_id is None:
        raise errors.NotLoggedIn(WRONG_CODE, hint=NEW_CODE_HINT)
    return _new_session(ctx, user_id)


def _check_code(engine: Engine, email: str, attempt: str, candidate: str, code: str) -> int | None:
    """The user id when the code is right (the code is then used up); else None, counting the try."""
    from sqlalchemy import select, update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import otp_codes, users

    now = utcnow()
    with transaction(engine) as conn:
        _lock(conn)
        row = conn.execute(select(otp_codes).where(otp_codes.c.attempt == attempt,
                                                   otp_codes.c.email == email)).first()
        expires = _aware(row.expires_at) if row is not None else None
        if row is None or row.state != "sent" or expires is None or expires <= now:
            return None
        right = bool(re.fullmatch(rf"\d{{{CODE_DIGITS}}}", code)) and hmac.compare_digest(row.code_hash, candidate)
        active = row.user_id is not None and conn.execute(
            select(users.c.id).where(users.c.id == row.user_id, users.c.disabled.is_(False))).first() is not None
        if not (right and active):
            tries = row.attempts + 1
            conn.execute(update(otp_codes).where(otp_codes.c.id == row.id).values(
                attempts=tries, state="burned" if tries >= MAX_TRIES else row.state))
            return None
        conn.execute(update(otp_codes).where(otp_codes.c.id == row.id).values(state="used", used_at=now))
        return int(row.user_id)


def _lock(conn: Connection) -> None:
    """Serialise code checks on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x76706C67})  # "vplg"


def _new_session(ctx: Context, user_id: int) -> Grant:
    from sqlalchemy import insert, select, update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import sessions, users

    token = Secret(secrets.token_urlsafe(32))  # 256 bits
    now = utcnow()
    expires = now + timedelta(seconds=ctx.settings.session_ttl)
    with transaction(ctx.engine) as conn:
        conn.execute(insert(sessions).values(user_id=user_id, token_hash=token_hash(token), created_at=now,
                                             expires_at=expires, last_used_at=now))
        conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))
        user = conn.execute(select(users.c.email, users.c.role).where(users.c.id == user_id)).one()
    return Grant(token=token, email=user.email, role=Role(user.role), expires_at=expires)


def logout(ctx: Context, token: Secret) -> bool:
    """Revoke a session in the database; True when there was one to revoke."""
    from sqlalchemy import update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import sessions

    with transaction(ctx.engine) as conn:
        done = conn.execute(update(sessions).where(sessions.c.token_hash == token_hash(token),
                                                   sessions.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return bool(done.rowcount)


# --------------------------------------------------------------------------- users


def _user_view(row: object) -> UserView:
    return UserView(email=row.email, name=row.name, role=Role(row.role), disabled=bool(row.disabled),  # type: ignore[attr-defined]
                    created_at=_aware(row.created_at), last_login_at=_aware(row.last_login_at))  # type: ignore[attr-defined]


def add_user(ctx: Context, email: str, *, role: str | None = None, name: str = "") -> tuple[UserView, bool]:
    """Add a user; (the user, whether they became admin as the database's first user)."""
    from sqlalchemy import func, insert, select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import users

    email = normalize_email(email)
    wanted = _role(role) if role else Role.VIEWER
    with transaction(ctx.engine) as conn:
        first = conn.execute(select(func.count()).select_from(users)).scalar_one() == 0
    if not first:
        authorize_admin_or_personal(ctx, "users add")
    with transaction(ctx.engine) as conn:
        if conn.execute(select(users.c.id).where(users.c.email == email)).first() is not None:
            raise errors.AlreadyExists(f"a user {email} already exists")
        conn.execute(insert(users).values(email=email, name=name.strip()[:200], role=Role.ADMIN if first else wanted,
                                          disabled=False, created_at=utcnow()))
        row = conn.execute(select(users).where(users.c.email == email)).one()
    return _user_view(row), first


def authorize_admin_or_personal(ctx: Context, what: str) -> None:
    """Managing users: an admin, or anyone while the database does not require logins."""
    if auth_mode(ctx.engine) == AuthMode.REQUIRED:
        require_admin(ctx, what)


def list_users(ctx: Context) -> list[UserView]:
    from sqlalchemy import select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import users

    with transaction(ctx.engine) as conn:
        return [_user_view(r) for r in conn.execute(select(users).order_by(users.c.email)).all()]


def edit_user(ctx: Context, email: str, *, role: str | None = None, name: str | None = None,
              enable: bool = False, disable: bool = False) -> UserView:
    """Change a user; disabling also revokes their sessions and tokens."""
    from sqlalchemy import select, update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import api_tokens, sessions, users

    authorize_admin_or_personal(ctx, "users edit")
    email = normalize_email(email)
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = _role(role)
    if name is not None:
        values["name"] = name.strip()[:200]
    if enable or disable:
        values["disabled"] = disable
    if not values:
        raise errors.InvalidInput("nothing to change: give --role, --name, --enable or --disable")
    with transaction(ctx.engine) as conn:
        row = conn.execute(select(users).where(users.c.email == email)).first()
        if row is None:
            raise errors.NotFound(f"no user {email}", hint="`vpsagent users list` shows them")
        _keep_an_admin(conn, row, values)
        conn.execute(update(users).where(users.c.id == row.id).values(**values))
        if disable:
            now = utcnow()
            for t in (sessions, api_tokens):
                conn.execute(update(t).where(t.c.user_id == row.id, t.c.revoked_at.is_(None)).values(revoked_at=now))
        return _user_view(conn.execute(select(users).where(users.c.id == row.id)).one())


def _keep_an_admin(conn: Connection, row: object, values: Mapping[str, object]) -> None:
    """Never leave a database that requires logins without an active admin."""
    from sqlalchemy import func, select

    from vpsagent.db.tables import users

    role, row_id = row.role, row.id  # type: ignore[attr-defined]  # a users Row
    demoted = values.get("role", role) != Role.ADMIN or values.get("disabled") is True
    if role != Role.ADMIN or not demoted:
        return
    others = conn.execute(select(func.count()).select_from(users).where(
        users.c.role == Role.ADMIN, users.c.disabled.is_(False), users.c.id != row_id)).scalar_one()
    if not others:
        raise errors.InvalidInput("that would leave no active admin; make another user admin first")


# --------------------------------------------------------------------------- API tokens


def create_token(ctx: Context, name: str, *, role: str | None = None, expires: str | None = None) -> Grant:
    """A token for CI and cron, owned by the logged-in user, with at most their role."""
    from sqlalchemy import insert, select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import api_tokens
    from vpsagent.durations import seconds

    ident = ctx.identity()
    if not ident.logged_in or ident.role is None or ident.user_id is None:
        raise errors.NotLoggedIn("a token belongs to a user: log in first", hint="vpsagent login EMAIL")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}", name):
        raise errors.InvalidInput(f"invalid token name {name!r}: letters, digits, '.', '_', ':' or '-'")
    wanted = _role(role) if role else ident.role
    if wanted.rank > ident.role.rank:
        raise errors.NotAllowed(f"a token cannot have more than your own role ({ident.role})")
    ttl = None if (expires or DEFAULT_TOKEN_TTL) == "never" else seconds(expires or DEFAULT_TOKEN_TTL,
                                                                        what="--expires", maximum=5 * 366 * 86400)
    now = utcnow()
    until = now + timedelta(seconds=ttl) if ttl is not None else None
    token = Secret(TOKEN_PREFIX + secrets.token_urlsafe(32))
    with transaction(ctx.engine) as conn:
        taken = conn.execute(select(api_tokens.c.id).where(api_tokens.c.user_id == ident.user_id,
                                                           api_tokens.c.name == name,
                                                           api_tokens.c.revoked_at.is_(None))).first()
        if taken is not None:
            raise errors.AlreadyExists(f"you already have a token named {name!r}", hint="revoke it first")
        conn.execute(insert(api_tokens).values(user_id=ident.user_id, name=name, prefix=token.reveal_str()[:12],
                                               token_hash=token_hash(token), role=wanted, created_at=now,
                                               expires_at=until))
    return Grant(token=token, email=ident.email or "", role=wanted, expires_at=until, name=name)


def list_tokens(ctx: Context, *, everyone: bool = False) -> list[TokenView]:
    """Your tokens (an admin may ask for everyone's); never the token itself."""
    from sqlalchemy import select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import api_tokens, users

    ident = ctx.identity()
    if everyone:
        require_admin(ctx, "tokens list --all")
    elif not ident.logged_in:
        raise errors.NotLoggedIn("tokens belong to users: log in first", hint="vpsagent login EMAIL")
    q = select(api_tokens, users.c.email).join(users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id)
    if not everyone:
        q = q.where(api_tokens.c.user_id == ident.user_id)
    with transaction(ctx.engine) as conn:
        rows = conn.execute(q).all()
    return [TokenView(id=r.id, name=r.name, owner=r.email, role=Role(r.role), prefix=r.prefix,
                      created_at=_aware(r.created_at), expires_at=_aware(r.expires_at),
                      last_used_at=_aware(r.last_used_at), revoked=r.revoked_at is not None) for r in rows]


def revoke_token(ctx: Context, which: str) -> TokenView:
    """Revoke one of your tokens by name or id (an admin: anyone's, by id)."""
    from sqlalchemy import update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import api_tokens

    ident = ctx.identity()
    is_admin = ident.role == Role.ADMIN
    mine = [t for t in list_tokens(ctx, everyone=is_admin) if not t.revoked]
    match = [t for t in mine if str(t.id) == which or (t.name == which and t.owner == ident.email)]
    if not match:
        raise errors.NotFound(f"no active token {which!r}", hint="`vpsagent tokens list` shows yours")
    tok = match[0]
    with transaction(ctx.engine) as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == tok.id).values(revoked_at=utcnow()))
    return TokenView(**{**tok.__dict__, "revoked": True})
