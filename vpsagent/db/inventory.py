"""Reading the server inventory: one query for the whole table, one shape for a server.

`ServerRecord` is the stored record: what `servers list/show` display (and `--json`
carries) and, once `decrypt`ed, what the fleet turns into connection parameters. Its
credential fields are hidden from every rendering and hold `Secret`s, never text; the
envelopes they come from stay hidden too. Writes that validate input (add, edit,
import) live in `services/servers.py`; this module only reads rows and pins host keys,
through SQLAlchemy Core, so the `run` hot path imports no ORM.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from vpsagent.db.types import ENCRYPTED_FIELDS
from vpsagent.errors import NotFound
from vpsagent.secret import Secret

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine, Row

    from vpsagent.crypto import Keyring
    from vpsagent.db.models import Server

LOCAL = "local"  # the built-in server: this machine, no SSH
SECRET_COLUMNS = ENCRYPTED_FIELDS["servers"]
_HIDDEN = {"hidden": True}  # render.to_jsonable leaves these out of --json


def _hidden() -> Secret | None:
    return field(default=None, metadata=_HIDDEN, repr=False)


@dataclass(frozen=True)
class ServerRecord:
    """A server as stored. Credentials are present only after `decrypt` and never shown."""

    name: str
    host: str
    port: int
    user: str | None
    auth: str  # key | password | agent | default | local
    tags: list[str]
    jump: str | None
    host_key_fingerprint: str | None
    host_key_type: str | None
    has_password: bool
    has_key: bool
    has_sudo_password: bool
    key_source: str | None
    builtin: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = field(default=None, metadata=_HIDDEN)
    host_key: str | None = field(default=None, metadata=_HIDDEN)  # base64 of the pinned key
    envelopes: Mapping[str, str] = field(default_factory=dict, metadata=_HIDDEN, repr=False)
    private_key: Secret | None = _hidden()
    key_passphrase: Secret | None = _hidden()
    password: Secret | None = _hidden()
    sudo_password: Secret | None = _hidden()

    @property
    def is_local(self) -> bool:
        return self.builtin

    @property
    def has_secrets(self) -> bool:
        return bool(self.envelopes)

    def secrets(self) -> list[Secret]:
        """The decrypted credentials (none before `decrypt`)."""
        return [s for s in (self.private_key, self.key_passphrase, self.password, self.sudo_password)
                if s is not None]


def local_record() -> ServerRecord:
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = None
    return ServerRecord(name=LOCAL, host="localhost", port=0, user=user, auth="local", tags=[], jump=None,
                        host_key_fingerprint=None, host_key_type=None, has_password=False, has_key=False,
                        has_sudo_password=False, key_source=None, builtin=True)


def record_of(row: Row[tuple[object, ...]] | Server) -> ServerRecord:
    """A stored record from a Core row of `servers` or from the ORM's Server (same columns)."""
    envelopes = {c: getattr(row, c) for c in SECRET_COLUMNS if getattr(row, c)}
    return ServerRecord(
        name=row.name, host=row.host, port=row.port, user=row.user, auth=row.auth_kind,
        tags=list(row.tags or []), jump=row.jump, host_key_fingerprint=row.host_key_fingerprint,
        host_key_type=row.host_key_type, has_password="password_enc" in envelopes,
        has_key="private_key_enc" in envelopes, has_sudo_password="sudo_password_enc" in envelopes,
        key_source=row.key_source, created_at=row.created_at, updated_at=row.updated_at, id=row.id,
        host_key=row.host_key, envelopes=envelopes,
    )


def load_inventory(engine: Engine, *, include_local: bool = True) -> dict[str, ServerRecord]:
    """Every server, by name (`local` first), in one query; credentials still encrypted."""
    from sqlalchemy import select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import servers

    with transaction(engine) as conn:
        rows = conn.execute(select(servers).order_by(servers.c.name)).all()
    found = {LOCAL: local_record()} if include_local else {}
    found.update((r.name, record_of(r)) for r in rows)
    return found


def load_record(engine: Engine, name: str) -> ServerRecord:
    """One server by name; NotFound (exit 2) when there is none."""
    from sqlalchemy import select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import servers

    if name == LOCAL:
        return local_record()
    with transaction(engine) as conn:
        row = conn.execute(select(servers).where(servers.c.name == name)).first()
    if row is None:
        raise unknown_server(name)
    return record_of(row)


def unknown_server(name: str) -> NotFound:
    return NotFound(f"unknown server {name!r}", hint="`vpsagent servers list` shows the inventory")


def decrypt(record: ServerRecord, keyring: Keyring | None) -> ServerRecord:
    """The record with its credentials decrypted (each envelope checked against its row and column)."""
    if not record.envelopes:
        return record
    if keyring is None:
        raise RuntimeError("decrypt() needs the keyring for a server with stored credentials")
    plain = {col.removesuffix("_enc"): keyring.decrypt(env, table="servers", record_id=record.id or 0, field=col)
             for col, env in record.envelopes.items()}
    # envelopes holds SECRET_COLUMNS only: one per Secret field
    return replace(
        record,
        private_key=plain.get("private_key", record.private_key),
        key_passphrase=plain.get("key_passphrase", record.key_passphrase),
        password=plain.get("password", record.password),
        sudo_password=plain.get("sudo_password", record.sudo_password),
    )


def with_jump_hosts(inventory: Mapping[str, ServerRecord], names: Sequence[str]) -> list[str]:
    """`names` plus every jump host they are reached through, in order."""
    wanted: list[str] = []
    for n in names:
        while n and n not in wanted and n in inventory:
            wanted.append(n)
            n = inventory[n].jump or ""
    return wanted


def pin_host_key(engine: Engine, name: str, key_type: str, key_b64: str, fingerprint: str) -> None:
    """Record (or replace, when the user asked) the host key of a server."""
    from sqlalchemy import update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import servers
    from vpsagent.db.types import utcnow

    with transaction(engine) as conn:
        done = conn.execute(update(servers).where(servers.c.name == name).values(
            host_key_type=key_type, host_key=key_b64, host_key_fingerprint=fingerprint,
            updated_at=utcnow())).rowcount
    if not done:
        raise unknown_server(name)
