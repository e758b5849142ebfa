"""The keyring for this database: the master secret plus the vault's KDF parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vpsagent.crypto import Keyring, load_or_create_key_file, new_params, params_of
from vpsagent.secret import Secret
from vpsagent.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def master_secret(settings: Settings, notify: Callable[[str], None]) -> Secret:
    if settings.secret is not None:
        return settings.secret
    return load_or_create_key_file(settings.key_file, notify)


def get_keyring(settings: Settings, engine: Engine, notify: Callable[[str], None]) -> Keyring:
    """Opens (or on first use creates) the vault and checks the secret against it."""
    from sqlalchemy import insert, select
    from sqlalchemy.exc import IntegrityError

    # Core, not the Vault model: every `run` opens the keyring, and sqlmodel costs ~0.18 s to import
    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import vault as t
    from vpsagent.db.types import utcnow

    secret = master_secret(settings, notify)
    for _ in range(2):
        with transaction(engine) as conn:
            verifier = conn.execute(select(t.c.verifier).where(t.c.id == 1)).scalar()
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
