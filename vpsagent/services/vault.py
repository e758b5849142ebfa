"""The keyring for this database: the master secret plus the vault's KDF parameters.

The master secret is VPSAGENT_SECRET or the key file. A key file is created only for a
database whose vault holds no credentials yet: a new key could never open existing ones,
and creating it would point the user at the wrong key (exit 7 says what to do instead).
A `secret.key.new` left by a `secret rekey` killed between its commit and its rename is
adopted when it is the key the vault now verifies.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent.crypto import Keyring, load_or_create_key_file, new_params, params_of
from vpsagent.errors import CredentialError
from vpsagent.secret import Secret
from vpsagent.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def pending_key_file(key_file: Path) -> Path:
    """Where `secret rekey` writes the new key before its commit (renamed over the key file after)."""
    return key_file.with_name(key_file.name + ".new")


def read_verifier(engine: Engine) -> str | None:
    from sqlalchemy import select

    # Core, not the Vault model: every `run` opens the keyring, and sqlmodel costs ~0.18 s to import
    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import vault as t

    with transaction(engine) as conn:
        verifier: str | None = conn.execute(select(t.c.verifier).where(t.c.id == 1)).scalar()
    return verifier


def pending_key_opens(key_file: Path, verifier: str) -> bool:
    """Whether the rekey's pending key is the one the vault verifies (its commit happened)."""
    pending = pending_key_file(key_file)
    try:
        value = pending.read_text().strip()
    except OSError:
        return False
    if not value:
        return False
    try:
        Keyring(Secret(value), params_of(verifier)).check_verifier(verifier)
    except (CredentialError, ValueError):
        return False
    return True


def _adopt_pending_key(key_file: Path, verifier: str, notify: Callable[[str], None]) -> None:
    if pending_key_opens(key_file, verifier):
        os.replace(pending_key_file(key_file), key_file)
        notify(f"adopted {pending_key_file(key_file)} as {key_file}: an interrupted `secret rekey` had "
               "committed the new key but not renamed its file")


def stored_credentials(engine: Engine) -> int:
    """How many rows hold an encrypted credential (any table db.types.ENCRYPTED_FIELDS names)."""
    from sqlalchemy import func, or_, select

    from vpsagent.db import tables
    from vpsagent.db.engine import transaction
    from vpsagent.db.types import ENCRYPTED_FIELDS

    n = 0
    with transaction(engine) as conn:
        for name, cols in ENCRYPTED_FIELDS.items():
            t = getattr(tables, name)
            n += conn.execute(select(func.count()).select_from(t)
                              .where(or_(*(t.c[c].isnot(None) for c in cols)))).scalar() or 0
    return n


def _forget_empty_vault(engine: Engine) -> None:
    from sqlalchemy import delete

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import vault as t

    with transaction(engine) as conn:
        conn.execute(delete(t).where(t.c.id == 1))


def master_secret(settings: Settings, engine: Engine, notify: Callable[[str], None]) -> Secret:
    """VPSAGENT_SECRET, else the key file (adopting a committed rekey's pending key, creating
    one only while the vault holds no credentials)."""
    return _secret_and_verifier(settings, engine, notify)[0]


def _secret_and_verifier(settings: Settings, engine: Engine,
                         notify: Callable[[str], None]) -> tuple[Secret, str | None]:
    """The master secret and the vault's verifier (None when there is no vault, or when an
    empty one was forgotten along with its lost key)."""
    verifier = read_verifier(engine)
    if settings.secret is not None:
        return settings.secret, verifier
    key_file = settings.key_file
    if verifier is not None:
        _adopt_pending_key(key_file, verifier, notify)
        if not key_file.exists():
            if stored_credentials(engine):
                raise CredentialError(
                    f"this database holds encrypted credentials, but VPSAGENT_SECRET is not set and the key "
                    f"file {key_file} does not exist",
                    hint=f"set VPSAGENT_SECRET to the secret they were stored with, or restore {key_file} "
                         "from a backup (a new key could not open them)")
            _forget_empty_vault(engine)  # nothing is encrypted under the lost key: start afresh
            verifier = None
    return load_or_create_key_file(key_file, notify), verifier


def get_keyring(settings: Settings, engine: Engine, notify: Callable[[str], None]) -> Keyring:
    """Opens (or on first use creates) the vault and checks the secret against it."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import vault as t
    from vpsagent.db.types import utcnow

    secret, verifier = _secret_and_verifier(settings, engine, notify)
    for attempt in range(2):
        if attempt:
            verifier = read_verifier(engine)
        if verifier is not None:
            # outside the transaction: the key derivation must not hold SQLite's write lock
            keyring = Keyring(secret, params_of(verifier))
            keyring.check_verifier(verifier)
            return keyring
        keyring = Keyring(secret, new_params())
        try:
            with transaction(engine) as conn:
                conn.execute(insert(t).values(id=1, verifier=keyring.make_verifier(), created_at=utcnow()))
            return keyring
        except IntegrityError:  # another process created it first: use theirs
            continue
    raise RuntimeError("vault could not be created")  # pragma: no cover
