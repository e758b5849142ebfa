"""Where this machine keeps its login: the OS keyring when one answers quickly, else a file.

A session token is a bearer credential, so it is kept like one. The keyring is asked in
a background thread with a short time bound: on a headless machine (cron, CI) a keyring
that waits for a desktop prompt or a D-Bus service must never hang the command. Without
a working keyring the token goes into a file in the config directory, created with
O_EXCL (a planted file or symlink is never written through), mode 0600, in a directory
made 0700; a token file others can read is refused (exit 7), since it may have been read.

One login per database: the keyring entry and the file are named after the database URL.
Asking the keyring costs ~0.5 s (the library finds its backends), so a small marker file
(no secret in it) says when the login went there; without it no command pays for that.
The pending login attempt of `login EMAIL --send` is kept the same way (a file, 0600), so
`login EMAIL --code-stdin` can prove it is the same machine that asked for the code.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from vpsagent.errors import CredentialError
from vpsagent.secret import Secret
from vpsagent.settings import Settings

SERVICE = "vpsagent"
KEYRING_TIMEOUT_S = 2.0
T = TypeVar("T")


def _account(settings: Settings) -> str:
    return "session-" + hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]


def token_path(settings: Settings) -> Path:
    return settings.config_dir / f"{_account(settings)}.token"


def _marker_path(settings: Settings) -> Path:
    return settings.config_dir / f"{_account(settings)}.in-keyring"


def _attempt_path(settings: Settings) -> Path:
    return settings.config_dir / f"{_account(settings)}.login-attempt"


def _bounded(call: Callable[[], T]) -> tuple[bool, T | None]:
    """(answered, value): the call in a daemon thread, given up after KEYRING_TIMEOUT_S."""
    box: dict[str, T | None] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except Exception:  # noqa: BLE001 - any keyring failure means: use the file
            pass

    t = threading.Thread(target=run, name="keyring", daemon=True)
    t.start()
    t.join(KEYRING_TIMEOUT_S)
    return ("value" in box, box.get("value"))


def _keyring_set(settings: Settings, token: str) -> bool:
    """True when the keyring stored it (read back: the null backend accepts and forgets)."""
    def store() -> bool:
        import keyring

        keyring.set_password(SERVICE, _account(settings), token)
        return bool(keyring.get_password(SERVICE, _account(settings)) == token)

    answered, ok = _bounded(store)
    return bool(answered and ok)


def _keyring_get(settings: Settings) -> str | None:
    def fetch() -> str | None:
        import keyring

        return keyring.get_password(SERVICE, _account(settings))

    _answered, value = _bounded(fetch)
    return value


def _keyring_delete(settings: Settings) -> None:
    def delete() -> None:
        import keyring

        keyring.delete_password(SERVICE, _account(settings))

    _bounded(delete)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o700)  # it holds a bearer token now (and the key file, if any)


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with a new 0600 file holding `text` (O_EXCL on a fresh temporary name)."""
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_private(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialError(f"cannot read the login token file {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) & 0o077 or st.st_uid != os.getuid():
            raise CredentialError(
                f"the login token file {path} can be read by others, so it may have been copied",
                hint=f"remove it (rm {path}) and log in again; vpsagent keeps it 0600")
        return fh.read().strip() or None


def save(settings: Settings, token: Secret) -> str:
    """Keep the token; returns where ("the OS keyring" or the file's path)."""
    if _keyring_set(settings, token.reveal_str()):
        token_path(settings).unlink(missing_ok=True)
        _write_private(_marker_path(settings), "the login of this database is in the OS keyring\n")
        return "the OS keyring"
    _marker_path(settings).unlink(missing_ok=True)
    _write_private(token_path(settings), token.reveal_str() + "\n")
    return str(token_path(settings))


def load(settings: Settings) -> Secret | None:
    """The stored token (the file first: it exists only when the keyring did not take it)."""
    text = _read_private(token_path(settings))
    if text is None and _marker_path(settings).exists():
        text = _keyring_get(settings)
    return Secret(text) if text else None


def clear(settings: Settings) -> None:
    token_path(settings).unlink(missing_ok=True)
    if _marker_path(settings).exists():
        _keyring_delete(settings)
        _marker_path(settings).unlink(missing_ok=True)


def _attempts(settings: Settings) -> dict[str, str]:
    text = _read_private(_attempt_path(settings))
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def save_attempt(settings: Settings, email: str, attempt: str) -> None:
    """Remember the login attempt of `login EMAIL --send` (one per address)."""
    found = _attempts(settings)
    found[email] = attempt
    _write_private(_attempt_path(settings), json.dumps(found) + "\n")


def load_attempt(settings: Settings, email: str) -> str | None:
    """The attempt id saved by `login EMAIL --send` on this machine for this address."""
    return _attempts(settings).get(email)


def clear_attempt(settings: Settings, email: str) -> None:
    found = _attempts(settings)
    if found.pop(email, None) is None:
        return
    if found:
        _write_private(_attempt_path(settings), json.dumps(found) + "\n")
    else:
        _attempt_path(settings).unlink(missing_ok=True)
