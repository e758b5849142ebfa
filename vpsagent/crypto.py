"""Credential envelopes: AES-256-GCM under a scrypt-derived key, bound to their record.

Envelope (one ASCII string, stored as text):

    vpsenc$1$scrypt$<log2 N>$<r>$<p>$<salt>$<nonce>$<ciphertext+tag>     (base64url, no padding)

The associated data binds the envelope to `table:record_id:field`, so a ciphertext
copied onto another record or field fails to open, exactly like an edited one.

Records written by one database share one salt (kept in the `vault` table with a
verifier), so the scrypt key is derived once per process, not once per record; the
salt and parameters still live in every envelope so a record opens on its own.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vpsagent.errors import ConfigError, CredentialError
from vpsagent.secret import Secret

PREFIX = "vpsenc"
VERSION = 1
# scrypt parameters: N = 2^15, r = 8, p = 1 is the floor we write; a record may ask
# for more, up to the caps below, so a tampered record cannot make us burn memory.
LOG_N, R, P = 15, 8, 1
# at most 128 * 2^17 * 8 bytes = 128 MiB per derivation: room to raise the work factor,
# not enough for a tampered record to exhaust memory
MAX_LOG_N, MAX_R, MAX_P = 17, 8, 2
SALT_BYTES, NONCE_BYTES, KEY_BYTES = 16, 12, 32
VERIFIER_PLAINTEXT = b"vpsagent vault verifier v1"


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    log_n: int = LOG_N
    r: int = R
    p: int = P

    def check(self) -> None:
        if not (10 <= self.log_n <= MAX_LOG_N and 1 <= self.r <= MAX_R and 1 <= self.p <= MAX_P):
            raise CredentialError(
                f"credential record asks for scrypt N=2^{self.log_n} r={self.r} p={self.p}, "
                "beyond what vpsagent accepts (record corrupted or tampered)"
            )
        if len(self.salt) < 8:
            raise CredentialError("credential record has a bad salt (corrupted or tampered)")


@dataclass(frozen=True)
class Envelope:
    kdf: KdfParams
    nonce: bytes
    ciphertext: bytes

    def dumps(self) -> str:
        k = self.kdf
        return "$".join(
            [PREFIX, str(VERSION), "scrypt", str(k.log_n), str(k.r), str(k.p),
             _b64e(k.salt), _b64e(self.nonce), _b64e(self.ciphertext)]
        )

    @classmethod
    def loads(cls, text: str) -> Envelope:
        bad = CredentialError("credential record is corrupted (not a vpsagent envelope)")
        parts = text.split("$") if isinstance(text, str) else []
        if len(parts) != 9 or parts[0] != PREFIX:
            raise bad
        if parts[1] != str(VERSION):
            raise CredentialError(f"credential record has envelope version {parts[1]}, unknown to this vpsagent")
        if parts[2] != "scrypt":
            raise bad
        try:
            kdf = KdfParams(salt=_b64d(parts[6]), log_n=int(parts[3]), r=int(parts[4]), p=int(parts[5]))
            nonce, ct = _b64d(parts[7]), _b64d(parts[8])
        except (ValueError, TypeError):
            raise bad from None
        kdf.check()
        if len(nonce) != NONCE_BYTES or len(ct) < 16:
            raise bad
        return cls(kdf=kdf, nonce=nonce, ciphertext=ct)


def aad_for(table: str, record_id: int | str, field: str) -> bytes:
    return f"vpsagent:{VERSION}:{table}:{record_id}:{field}".encode()


def derive_key(secret: Secret, kdf: KdfParams) -> bytes:
    kdf.check()
    n = 1 << kdf.log_n
    try:
        return hashlib.scrypt(
            secret.reveal_bytes(), salt=kdf.salt, n=n, r=kdf.r, p=kdf.p,
            maxmem=256 * n * kdf.r * kdf.p, dklen=KEY_BYTES,
        )
    except (ValueError, MemoryError) as exc:
        raise CredentialError(f"cannot derive the credential key (scrypt N=2^{kdf.log_n} r={kdf.r} "
                              f"p={kdf.p}): {exc}") from None


class Keyring:
    """Encrypts and decrypts envelopes with one master secret; caches derived keys."""

    def __init__(self, secret: Secret, write_params: KdfParams):
        self._secret = secret
        self.write_params = write_params
        self._keys: dict[KdfParams, bytes] = {}

    def _key(self, kdf: KdfParams) -> bytes:
        key = self._keys.get(kdf)
        if key is None:
            key = self._keys[kdf] = derive_key(self._secret, kdf)
        return key

    def encrypt(self, plaintext: bytes | str, *, table: str, record_id: int | str, field: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(NONCE_BYTES)
        ct = AESGCM(self._key(self.write_params)).encrypt(nonce, data, aad_for(table, record_id, field))
        return Envelope(self.write_params, nonce, ct).dumps()

    def decrypt(self, envelope: str, *, table: str, record_id: int | str, field: str) -> Secret:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        env = Envelope.loads(envelope)
        try:
            raw = AESGCM(self._key(env.kdf)).decrypt(env.nonce, env.ciphertext, aad_for(table, record_id, field))
        except InvalidTag:
            raise CredentialError(
                f"cannot decrypt {field} of {table} #{record_id}: wrong secret, or the record was tampered with",
                hint="check VPSAGENT_SECRET / the key file; `vpsagent doctor` shows which is in use",
            ) from None
        return Secret(raw)

    def make_verifier(self) -> str:
        return self.encrypt(VERIFIER_PLAINTEXT, table="vault", record_id=1, field="verifier")

    def check_verifier(self, verifier: str) -> None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        env = Envelope.loads(verifier)
        try:
            AESGCM(self._key(env.kdf)).decrypt(env.nonce, env.ciphertext, aad_for("vault", 1, "verifier"))
        except InvalidTag:
            raise CredentialError(
                "the secret in use is not the one this database's credentials were encrypted with",
                hint="set the right VPSAGENT_SECRET (or restore the key file); `vpsagent doctor` shows which is in use",
            ) from None


def new_params() -> KdfParams:
    return KdfParams(salt=os.urandom(SALT_BYTES))


def params_of(envelope: str) -> KdfParams:
    return Envelope.loads(envelope).kdf


def load_or_create_key_file(path: Path, notify: Callable[[str], None]) -> Secret:
    """The master secret when no VPSAGENT_SECRET is set: a 0600 file, created once."""
    try:
        st = path.stat()
    except FileNotFoundError:
        value = secrets.token_urlsafe(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # it holds the key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its key
            return load_or_create_key_file(path, notify)
        except OSError as exc:
            raise ConfigError(f"cannot create the key file {path}: {exc.strerror}",
                              hint="check VPSAGENT_HOME, or set VPSAGENT_SECRET") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        notify(
            f"created a new secret key at {path} (mode 0600); it encrypts stored credentials — "
            "back it up, or set VPSAGENT_SECRET instead"
        )
        return Secret(value)
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise CredentialError(
            f"key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it",
            hint=f"chmod 600 {path}",
        )
    value = path.read_text().strip()
    if not value:
        raise CredentialError(f"key file {path} is empty", hint="restore it from backup or set VPSAGENT_SECRET")
    return Secret(value)
