"""Every table vpsagent keeps. Timestamps are timezone-aware UTC (SQLModel stores them as UTC
on both SQLite and PostgreSQL and returns them aware).

Columns ending in `_enc` hold credential envelopes (see crypto.py), never plaintext;
`ENCRYPTED_FIELDS` lists them so `secret rekey` finds every one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar, cast

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from vpsagent.db.types import ENCRYPTED_FIELDS, UTCDateTime, utcnow
from vpsagent.jsondata import JSONObject

__all__ = ["ENCRYPTED_FIELDS", "utcnow"]  # re-exported: callers that already use the ORM

_L = TypeVar("_L", bound=list[str] | list[JSONObject] | JSONObject)

# Every `class ...(SQLModel, table=True)` line below carries `type: ignore[explicit-any]`:
# mypy's dataclass_transform re-declares pydantic's BaseModel fields on each model, and
# one of them is `__pydantic_extra__: dict[str, Any]`.


def _json(default: _L) -> _L:
    """A JSON column (a list or an object); each row gets its own copy of `default`."""
    field = Field(default_factory=lambda: default.copy(), sa_column=sa.Column(sa.JSON, nullable=False))
    return cast(_L, field)  # like sqlmodel.Field: the FieldInfo stands in for the value


class Vault(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """The scrypt salt/parameters new envelopes use, and a verifier of the secret."""

    __tablename__ = "vault"
    id: int | None = Field(default=None, primary_key=True)
    verifier: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class User(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """A person who logs in (`vpsagent users`); identified by email, never deleted (disabled)."""

    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)  # lower-case
    name: str = Field(default="", max_length=200)
    role: str = Field(default="viewer", max_length=20)  # viewer | operator | admin
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OtpCode(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """One emailed login code: only its keyed hash, bound to the login attempt it was sent for."""

    __tablename__ = "otp_codes"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, max_length=320)  # also for addresses without an account
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")
    attempt: str = Field(index=True, max_length=64)  # the login attempt (kept by the client)
    code_hash: str = Field(max_length=128)  # HMAC-SHA256(key from the master secret, attempt:code)
    state: str = Field(default="pending", max_length=20)  # pending | sent | used | void | burned | failed
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0  # wrong codes tried
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuthSession(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """A login: only the token's hash; revoked by `logout`."""

    __tablename__ = "sessions"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(unique=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """A named token for CI and cron (`vpsagent tokens`): only its hash, a role no higher than its owner's."""

    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16)  # the first characters, to tell tokens apart in a list
    token_hash: str = Field(unique=True, max_length=128)
    role: str = Field(default="viewer", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DbSetting(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """Settings that belong to the database, so every client of a shared one obeys them (`auth_mode`)."""

    __tablename__ = "db_settings"
    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(max_length=1000)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str | None = Field(default=None, max_length=320)


class Server(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    __tablename__ = "servers"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    host: str = Field(max_length=255)
    port: int = 22
    user: str | None = Field(default=None, max_length=100)
    # key | password | agent | default (whatever ssh would use: agent, then ~/.ssh keys)
    auth_kind: str = Field(default="default", max_length=20)
    private_key_enc: str | None = None
    key_passphrase_enc: str | None = None
    password_enc: str | None = None
    sudo_password_enc: str | None = None
    key_source: str | None = Field(default=None, max_length=1024)  # where the key was read from (info only)
    tags: list[str] = _json([])
    jump: str | None = Field(default=None, max_length=200)  # name of another server used as ProxyJump
    host_key_type: str | None = Field(default=None, max_length=64)
    host_key: str | None = None  # base64 of the public host key, pinned on first contact
    host_key_fingerprint: str | None = Field(default=None, max_length=128)
    owner_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Conversation(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    __tablename__ = "conversations"
    id: int | None = Field(default=None, primary_key=True)
    mode: str = Field(default="chat", max_length=20)  # chat | testing | support
    title: str = Field(default="", max_length=500)
    model: str = Field(default="", max_length=100)
    servers: list[str] = _json([])
    status: str = Field(default="open", max_length=30)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    os_user: str | None = Field(default=None, max_length=100)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Message(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    __tablename__ = "messages"
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True, ondelete="CASCADE")
    seq: int
    role: str = Field(max_length=20)  # user | assistant
    content: list[JSONObject] = _json([])  # Messages API content blocks
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TestRun(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    __tablename__ = "test_runs"
    __test__ = False  # not a pytest class
    id: int | None = Field(default=None, primary_key=True)
    plan_name: str = Field(max_length=500)
    plan_path: str | None = Field(default=None, max_length=2048)
    status: str = Field(default="running", max_length=20)  # running | passed | failed | error | interrupted
    servers: list[str] = _json([])
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    os_user: str | None = Field(default=None, max_length=100)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duration_ms: int | None = None


class TestStep(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    __tablename__ = "test_steps"
    __test__ = False
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="test_runs.id", index=True, ondelete="CASCADE")
    server: str = Field(max_length=200)
    seq: int
    name: str = Field(max_length=500)
    kind: str = Field(max_length=20)
    status: str = Field(max_length=20)  # passed | failed | skipped | error
    command: str | None = None
    exit_code: int | None = None
    attempts: int = 1
    duration_ms: int = 0
    expected: str | None = None
    actual: str | None = None
    message: str | None = None
    stdout_excerpt: str | None = None
    stderr_excerpt: str | None = None
    explanation: str | None = None
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GithubIntegration(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    __tablename__ = "github_integrations"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    repo: str = Field(max_length=300)  # owner/name
    api_url: str | None = Field(default=None, max_length=500)
    token_enc: str | None = None
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Deploy(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """One `vpsagent deploy` (or rollback): who, what, where, and how each server's stages went."""

    __tablename__ = "deploys"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="deploy", max_length=20)  # deploy | rollback
    app: str = Field(index=True, max_length=100)
    repo: str = Field(default="", max_length=300)
    ref: str = Field(default="", max_length=300)
    sha: str | None = Field(default=None, max_length=64)
    environment: str = Field(default="production", max_length=100)
    status: str = Field(default="running", max_length=20)  # running | deployed | failed | interrupted
    servers: list[str] = _json([])
    results: JSONObject = _json({})  # server -> {outcome, release, previous, stages: [...]}
    github_deployment_id: int | None = Field(default=None, sa_type=sa.BigInteger)  # GitHub's ids pass 2**31
    path: str = Field(default="", max_length=1024)  # the app's directory on the servers
    config: str | None = None  # the deploy config as deployed (names of secrets only, never values)
    error: str | None = None
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    user_email: str | None = Field(default=None, max_length=320)
    os_user: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeployLock(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """The database side of a deploy lock: one app on one server at a time."""

    __tablename__ = "deploy_locks"
    app: str = Field(primary_key=True, max_length=100)
    server: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=500)  # who, from where, which deploy
    path: str = Field(default="", max_length=1024)  # where the server side of the lock is
    deploy_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ServerLock(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """`--lock`: one run, test run or apply per server at a time (db/locks.py).

    A lease: the holder renews `expires_at` while it works, so a holder that died
    without releasing it (or whose pid is gone on this machine) does not block forever."""

    __tablename__ = "server_locks"
    server: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=500)  # what holds it: "vpsagent run by alice@host pid 123"
    hostname: str = Field(default="", max_length=255)
    pid: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class DeploySecret(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """An environment value of an app that is a secret: stored only as an envelope."""

    __tablename__ = "deploy_secrets"
    __table_args__ = (sa.UniqueConstraint("app", "name", name="uq_deploy_secrets_app_name"),)
    id: int | None = Field(default=None, primary_key=True)
    app: str = Field(index=True, max_length=100)
    name: str = Field(max_length=200)
    value_enc: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SupportReport(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """One `vpsagent support` run: what was collected (bounded, redacted) and what was found."""

    __tablename__ = "support_reports"
    id: int | None = Field(default=None, primary_key=True)
    question: str = Field(default="", max_length=2000)
    servers: list[str] = _json([])
    since_s: int = 7200
    collectors: JSONObject = _json({})  # server -> collector id -> {exit_code, bytes, truncated, output}
    findings: list[JSONObject] = _json([])
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", ondelete="SET NULL")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    os_user: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    duration_ms: int = 0


class PlanRecord(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """A change plan as vpsagent saw it (written by `ask --plan`, shown, validated or applied):
    one row per content hash and file, so an edited plan is told apart from the one reviewed."""

    __tablename__ = "plans"
    __table_args__ = (sa.UniqueConstraint("hash", "path", name="uq_plans_hash_path"),)
    id: int | None = Field(default=None, primary_key=True)
    hash: str = Field(index=True, max_length=64)  # SHA-256 of the file's bytes
    path: str = Field(index=True, max_length=2048)  # absolute path of the file
    request: str = Field(default="", max_length=2000)
    model: str = Field(default="", max_length=100)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", ondelete="SET NULL")
    servers: list[str] = _json([])  # the selection as written (names and tag:NAME)
    steps: int = 0
    content: str = ""  # the plan's text, redacted
    origin: str = Field(default="show", max_length=20)  # ask | canary | show | validate | apply
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    user_email: str | None = Field(default=None, max_length=320)
    os_user: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)  # last written, shown or applied


class PlanApplication(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """One `vpsagent apply`: who, when, which plan (hash), and how each server went."""

    __tablename__ = "plan_applications"
    id: int | None = Field(default=None, primary_key=True)
    plan_hash: str = Field(index=True, max_length=64)
    path: str = Field(default="", max_length=2048)
    status: str = Field(default="running", max_length=20)  # running | applied | failed | refused | dry_run | ...
    exit_code: int | None = None
    dry_run: bool = False
    servers: list[str] = _json([])
    results: JSONObject = _json({})  # server -> {outcome, steps: [...], undone: [...], error}
    options: JSONObject = _json({})  # canary, serial, max_fail, yes
    error: str | None = None
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", ondelete="SET NULL")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    user_email: str | None = Field(default=None, max_length=320)
    os_user: str | None = Field(default=None, max_length=100)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CommandHistory(SQLModel, table=True):  # type: ignore[explicit-any]  # pydantic BaseModel field with Any (see top)
    """The audit log. Written only by db/audit.py: a row before the command runs, completed after."""

    __tablename__ = "command_history"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="running", max_length=20, index=True)  # running|ok|failed|timeout|denied|interrupted|error
    source: str = Field(max_length=20, index=True)  # run | ask | test | support | deploy
    server: str = Field(max_length=200, index=True)
    command: str
    sudo: bool = False
    os_user: str | None = Field(default=None, max_length=100)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    user_email: str | None = Field(default=None, max_length=320)  # who, kept as text: hashed (v2)
    token_name: str | None = Field(default=None, max_length=200)  # the API token used, if any
    pid: int | None = None
    hostname: str | None = Field(default=None, max_length=255)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", ondelete="SET NULL")
    test_run_id: int | None = Field(default=None, foreign_key="test_runs.id", ondelete="SET NULL")
    decision: str | None = Field(default=None, max_length=20)
    decision_reason: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    stdout_bytes: int | None = None
    stderr_bytes: int | None = None
    stdout_excerpt: str | None = None
    stderr_excerpt: str | None = None
    stdout_sha256: str | None = Field(default=None, max_length=64)
    stderr_sha256: str | None = Field(default=None, max_length=64)
    error: str | None = None
    prev_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64)
    done_hash: str | None = Field(default=None, max_length=64)
    hash_version: str | None = Field(default=None, max_length=8)  # None: v1 (rows before logins)
