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
    from sqlalchemy.exc import IntegrityError

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Vault

    secret = master_secret(settings, notify)
    for _ in range(2):
        with session_scope(engine) as s:
            vault = s.get(Vault, 1)
            if vault is not None:
                keyring = Keyring(secret, params_of(vault.verifier))
                keyring.check_verifier(vault.verifier)
                return keyring
        keyring = Keyring(secret, new_params())
        try:
            with session_scope(engine) as s:
                s.add(Vault(id=1, verifier=keyring.make_verifier()))
            return keyring
        except IntegrityError:  # another process created it first: use theirs
            continue
    raise RuntimeError("vault could not be created")  # pragma: no cover
