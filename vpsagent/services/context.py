"""What every service works with: the settings, the database and the keyring — each
resolved once per process, on first use, and passed explicitly.

The keyring is made here and nowhere else: opening it derives the key from the master
secret (scrypt, tens of milliseconds), so a command opens it at most once, and only
when a credential must be encrypted or decrypted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.crypto import Keyring
    from vpsagent.secret import Secret
    from vpsagent.services.auth import Identity
    from vpsagent.settings import Settings

Notify = Callable[[str], None]


def _silent(_message: str) -> None:
    pass


class Context:
    """Settings, engine and keyring for one command. Thread-safe (fan-out workers share it).

    `notify` is how services tell the user something on the side (a host key pinned on
    first contact, a key file created): the CLI passes a line writer for stderr.
    """

    def __init__(self, settings: Settings | None = None, *, engine: Engine | None = None,
                 notify: Notify | None = None, token: Secret | None = None) -> None:
        self._settings = settings
        self._engine = engine
        self._keyring: Keyring | None = None
        self.notify: Notify = notify or _silent
        self._lock = threading.Lock()
        self._token = token  # an API token handed over explicitly (--token-file)
        self._identity: Identity | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from vpsagent.settings import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from vpsagent.db.engine import exposed_files, get_engine

            self._engine = get_engine(self.settings)
            for line in exposed_files(self.settings.database_url):
                self.notify(f"warning: {line} (`vpsagent doctor` checks it)")
        return self._engine

    def keyring(self) -> Keyring:
        """The keyring for this database (the vault is created on first use)."""
        with self._lock:
            if self._keyring is None:
                from vpsagent.services.vault import get_keyring

                self._keyring = get_keyring(self.settings, self.engine, self.notify)
            return self._keyring

    def identity(self) -> Identity:
        """Who runs this command, resolved once: an API token given with --token-file or
        VPSAGENT_TOKEN, else this machine's stored login, else only the OS user."""
        if self._identity is None:
            from vpsagent.services import session_store
            from vpsagent.services.auth import identify

            explicit = self._token or self.settings.token
            token = explicit or session_store.load(self.settings)
            self._identity = identify(self, token, explicit=explicit is not None)
        return self._identity
