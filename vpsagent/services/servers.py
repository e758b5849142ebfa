"""The server inventory: add, list, show, edit, remove, import.

Secrets (key text, passphrases, passwords) arrive as `Secret`, are validated, and are
stored only as envelopes bound to the row id and column (see crypto.py). What comes back
is the stored `ServerRecord` (db/inventory.py), whose credentials are never shown.
Connecting to servers is the fleet's job (services/fleet.py).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent.db.inventory import (
    LOCAL,
    ServerRecord,
    load_inventory,
    load_record,
    record_of,
    unknown_server,
)
from vpsagent.errors import AlreadyExists, InvalidInput, NotFound
from vpsagent.secret import Secret

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from vpsagent.crypto import Keyring
    from vpsagent.db.models import Server
    from vpsagent.services.context import Context

__all__ = ["LOCAL", "ServerRecord", "ServerSpec"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$")
USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,99}$")
AUTH_KINDS = ("key", "password", "agent", "default")


@dataclass
class ServerSpec:
    """What a user asked for in `servers add` / `servers edit` (None = not given)."""

    name: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    key_path: Path | None = None
    key_passphrase: Secret | None = None
    password: Secret | None = None
    agent: bool = False
    tags: list[str] | None = None
    add_tags: list[str] = field(default_factory=list)
    remove_tags: list[str] = field(default_factory=list)
    jump: str | None = None
    sudo_password: Secret | None = None
    host_key: str | None = None  # "type base64", as in known_hosts: pin it without trust-on-first-use

    def changes_something(self) -> bool:
        return any(v not in (None, False, [], "") for v in (
            self.host, self.port, self.user, self.key_path, self.key_passphrase, self.password, self.agent,
            self.tags, self.add_tags, self.remove_tags, self.sudo_password, self.host_key)) or self.jump is not None


# -- validation -------------------------------------------------------------------------

def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise InvalidInput(f"invalid server name {name!r}: use letters, digits, '.', '_' or '-' (max 63)")
    if name == LOCAL:
        raise InvalidInput("'local' is the built-in server for this machine; choose another name")
    return name


def check_host(host: str) -> str:
    host = (host or "").strip()
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
        return candidate
    except ValueError:
        pass
    if not HOSTNAME_RE.match(candidate) or candidate.replace(".", "").isdigit():
        raise InvalidInput(f"invalid host {host!r}: expected a hostname or an IP address")
    return candidate


def check_port(port: int) -> int:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"invalid port {port!r}: expected 1-65535")
    return port


def check_user(user: str) -> str:
    if not USER_RE.match(user or ""):
        raise InvalidInput(f"invalid user {user!r}")
    return user


def check_tags(tags: list[str]) -> list[str]:
    for t in tags:
        if not TAG_RE.match(t):
            raise InvalidInput(f"invalid tag {t!r}: use letters, digits, '.', '_', ':' or '-'")
    return sorted(set(tags))


# An OpenSSH public key line (`ssh-ed25519 AAAA... comment`), or an RFC 4716 one.
_PUBLIC_KEY = re.compile(rb"\s*((ssh-|ecdsa-|sk-)\S+ AAAA|---- BEGIN SSH2 PUBLIC KEY)")
MAX_KEY_BYTES = 64 * 1024  # an RSA-16384 private key is ~13 KiB


def read_key_file(path: Path, passphrase: Secret | None) -> tuple[bytes, str]:
    from vpsagent.remote.keys import key_type
    from vpsagent.userfiles import read_bounded

    try:
        data = read_bounded(Path(path).expanduser(), MAX_KEY_BYTES, setting=None)
    except FileNotFoundError:
        raise InvalidInput(f"key file {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"key file {path} is a directory") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read key file {path}: {exc.strerror}") from None
    except InvalidInput as exc:  # /dev/zero, a FIFO, a huge file: never read to the end
        raise InvalidInput(f"key file {path} is not a private key: {exc.message.removeprefix(f'{path}: ')}") from None
    if _PUBLIC_KEY.match(data):
        private = str(path)[:-4] if str(path).endswith(".pub") else "the file without .pub"
        raise InvalidInput(f"key file {path} is a public key: give the private key, not the .pub file",
                           hint=f"--key {private}")
    kind = key_type(data, passphrase.reveal_str() if passphrase else None)
    return data, kind


# -- queries ------------------------------------------------------------------------------

def _get_row(session: Session, name: str) -> Server:
    from sqlmodel import select

    from vpsagent.db.models import Server

    row = session.exec(select(Server).where(Server.name == name)).first()
    if row is None:
        raise unknown_server(name)
    return row


def list_servers(engine: Engine, *, tag: str | None = None, include_local: bool = True) -> list[ServerRecord]:
    """The inventory, `local` first, then by name; with `tag`, only servers carrying it."""
    records = load_inventory(engine, include_local=include_local and tag is None).values()
    return [r for r in records if tag is None or tag in r.tags]


def show_server(engine: Engine, name: str) -> ServerRecord:
    return load_record(engine, name)


# -- changes ------------------------------------------------------------------------------

def _needs_keyring(spec: ServerSpec) -> bool:
    return any(x is not None for x in (spec.key_path, spec.key_passphrase, spec.password, spec.sudo_password))


def _apply(row: Server, spec: ServerSpec, keyring: Keyring | None, session: Session) -> None:
    """Validate `spec` and write it onto `row` (which already has an id)."""
    _apply_address(row, spec, session)
    _apply_credentials(row, spec, keyring)


def _apply_address(row: Server, spec: ServerSpec, session: Session) -> None:
    """Where the server is and how it is reached: host, port, user, tags, jump host, host key."""
    if spec.host is not None:
        row.host = check_host(spec.host)
    if spec.port is not None:
        row.port = check_port(spec.port)
    if spec.user is not None:
        row.user = check_user(spec.user) if spec.user else None
    if spec.tags is not None:
        row.tags = check_tags(spec.tags)
    if spec.add_tags or spec.remove_tags:
        absent = [t for t in spec.remove_tags if t not in (row.tags or [])]
        if absent:
            raise InvalidInput(f"{row.name} has no tag{'s' if len(absent) > 1 else ''} {', '.join(absent)}",
                               hint=f"its tags: {', '.join(row.tags or []) or 'none'}")
        row.tags = check_tags([t for t in list(row.tags or []) + spec.add_tags if t not in spec.remove_tags])
    if spec.jump is not None:
        if spec.jump:
            _check_jump_chain(session, row.name, spec.jump)
        row.jump = spec.jump or None
    if spec.host_key is not None:
        row.host_key_type, row.host_key, row.host_key_fingerprint = parse_host_key(spec.host_key)


def _apply_credentials(row: Server, spec: ServerSpec, keyring: Keyring | None) -> None:
    """The secrets given and the auth kind they imply; each is stored as an envelope bound to
    the row's id and column."""

    def enc(field_: str, value: Secret | bytes | None) -> str | None:
        if value is None:
            return None
        plain = value.reveal_bytes() if isinstance(value, Secret) else value
        assert keyring is not None, "resolve the keyring before opening the session"
        assert row.id is not None, "flush the row first: its id is part of the envelope"
        return keyring.encrypt(plain, table="servers", record_id=row.id, field=field_)

    if spec.key_path is not None:
        data, _kind = read_key_file(spec.key_path, spec.key_passphrase)
        row.private_key_enc = enc("private_key_enc", data)
        row.key_passphrase_enc = enc("key_passphrase_enc", spec.key_passphrase)
        row.key_source = str(Path(spec.key_path).expanduser().absolute())
        row.auth_kind = "key"
        if spec.password is None:
            row.password_enc = None
    elif spec.key_passphrase is not None:
        raise InvalidInput("--key-passphrase-stdin needs --key")
    if spec.password is not None:
        row.password_enc = enc("password_enc", spec.password)
        if spec.key_path is None:
            row.auth_kind = "password"
            row.private_key_enc = row.key_passphrase_enc = None
            row.key_source = None
    if spec.agent:
        if spec.key_path is not None or spec.password is not None:
            raise InvalidInput("--agent cannot be combined with --key or a password")
        row.auth_kind = "agent"
        row.private_key_enc = row.key_passphrase_enc = row.password_enc = None
        row.key_source = None
    if spec.sudo_password is not None:
        row.sudo_password_enc = enc("sudo_password_enc", spec.sudo_password)


def _check_jump_chain(session: Session, name: str, jump: str) -> None:
    """The jump host exists and the chain it starts never comes back to `name`."""
    from sqlmodel import select

    from vpsagent.db.models import Server

    if jump == name:
        raise InvalidInput("a server cannot be its own jump host")
    if jump == LOCAL:
        raise InvalidInput("the built-in 'local' server cannot be a jump host")
    chain: list[str] = [name]
    cur: str | None = jump
    while cur:
        row = session.exec(select(Server).where(Server.name == cur)).first()
        if row is None:
            raise NotFound(f"unknown jump server {cur!r}", hint="add it first with `vpsagent servers add`")
        chain.append(cur)
        if row.jump in chain:
            raise InvalidInput("jump hosts would form a loop: " + " -> ".join(chain + [row.jump]))
        cur = row.jump


HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                  "ssh-rsa", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


def parse_host_key(line: str) -> tuple[str, str, str]:
    """A known_hosts-style public key ("[host] type base64 [comment]") -> (type, base64, SHA256 fingerprint)."""
    import base64
    import binascii

    words = line.split()
    while words and words[0] not in HOST_KEY_TYPES:
        words = words[1:]  # tolerate a leading host pattern, as ssh-keyscan prints it
    if len(words) < 2:
        raise InvalidInput("--host-key: expected a public key line like 'ssh-ed25519 AAAA...' "
                           "(ssh-keyscan or /etc/ssh/ssh_host_ed25519_key.pub on the server)")
    key_type, b64 = words[0], words[1]
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("--host-key: the key is not valid base64") from None
    n = int.from_bytes(blob[:4], "big") if len(blob) > 4 else 0
    if blob[4:4 + n].decode("ascii", "replace") != key_type:
        raise InvalidInput(f"--host-key: the key data is not a {key_type} key")
    from vpsagent.remote.ssh import (
        fingerprint,  # the same SHA256 form the SSH engine pins and compares
    )

    return key_type, b64, fingerprint(blob)


def add_server(ctx: Context, spec: ServerSpec) -> ServerRecord:
    """Add a server. The keyring is opened only when a secret must be encrypted."""
    from sqlalchemy.exc import IntegrityError
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Server

    check_name(spec.name)
    if not spec.host:
        raise InvalidInput("--host is required")
    check_host(spec.host)
    if spec.key_path is not None:  # a bad key is bad input: say so before touching the database
        read_key_file(spec.key_path, spec.key_passphrase)
    # Opened before our transaction: on SQLite the vault may need its own write.
    keyring = ctx.keyring() if _needs_keyring(spec) else None
    try:
        with session_scope(ctx.engine) as s:
            if s.exec(select(Server).where(Server.name == spec.name)).first() is not None:
                raise AlreadyExists(f"a server named {spec.name!r} already exists",
                                    hint="use `vpsagent servers edit` to change it")
            row = Server(name=spec.name, host=check_host(spec.host))
            s.add(row)
            s.flush()  # the id is part of each envelope's associated data
            _apply(row, spec, keyring, s)
            s.add(row)
            s.flush()
            view = record_of(row)
    except IntegrityError:
        raise AlreadyExists(f"a server named {spec.name!r} already exists") from None
    return view


def edit_server(ctx: Context, spec: ServerSpec, *, new_name: str | None = None) -> ServerRecord:
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import utcnow

    if spec.name == LOCAL:
        raise InvalidInput("the built-in 'local' server cannot be edited")
    if not spec.changes_something() and not new_name:
        raise InvalidInput("nothing to change: give at least one option", hint="see `vpsagent servers edit --help`")
    if spec.key_path is not None:
        read_key_file(spec.key_path, spec.key_passphrase)
    keyring = ctx.keyring() if _needs_keyring(spec) else None
    with session_scope(ctx.engine) as s:
        row = _get_row(s, spec.name)
        if new_name and new_name != row.name:
            check_name(new_name)
            from sqlmodel import select

            from vpsagent.db.models import Server

            if s.exec(select(Server).where(Server.name == new_name)).first() is not None:
                raise AlreadyExists(f"a server named {new_name!r} already exists")
            # servers that jump through this one follow the rename
            for dependant in s.exec(select(Server).where(Server.jump == row.name)).all():
                dependant.jump = new_name
                s.add(dependant)
            row.name = new_name
        _apply(row, spec, keyring, s)
        row.updated_at = utcnow()
        s.add(row)
        s.flush()
        return record_of(row)


def remove_server(ctx: Context, name: str) -> ServerRecord:
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Server

    if name == LOCAL:
        raise InvalidInput("the built-in 'local' server cannot be removed")
    with session_scope(ctx.engine) as s:
        row = _get_row(s, name)
        users = s.exec(select(Server).where(Server.jump == name)).all()
        if users:
            raise InvalidInput(f"{name!r} is the jump host of {', '.join(u.name for u in users)}; change those first")
        view = record_of(row)
        s.delete(row)
    return view
