"""Private keys: validate what users store, and build paramiko keys in memory (never a temp file)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from vpsagent.errors import InvalidInput

if TYPE_CHECKING:
    import paramiko
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


def _load(data: bytes, passphrase: str | None) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    pw = passphrase.encode() if passphrase else None
    is_openssh = b"BEGIN OPENSSH PRIVATE KEY" in data
    try:
        if is_openssh:
            return serialization.load_ssh_private_key(data, password=pw)
        return serialization.load_pem_private_key(data, password=pw)
    except TypeError as exc:
        msg = str(exc).lower()
        if "not provided" in msg or "not given" in msg or "password-protected" in msg:
            raise InvalidInput(
                "the private key is encrypted and no passphrase was given",
                hint="pipe it with --key-passphrase-stdin",
            ) from None
        raise InvalidInput("a passphrase was given but the private key is not encrypted") from None
    except ValueError as exc:
        msg = str(exc).lower()
        if pw and ("checksum" in msg or "decrypt" in msg or "password" in msg):
            raise InvalidInput("wrong passphrase for the private key") from None
        raise InvalidInput("not a private key this tool can read (expected OpenSSH or PEM format)") from None
    except Exception as exc:  # UnsupportedAlgorithm and friends
        raise InvalidInput(f"unsupported private key: {exc}") from None


def key_type(data: bytes, passphrase: str | None = None) -> str:
    """Checks a private key and names its type; refuses DSA (OpenSSH dropped it)."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    if b"BEGIN DSA PRIVATE KEY" in data:
        raise InvalidInput("DSA keys are not supported (OpenSSH removed them); use an ed25519 key")
    loaded = _load(data, passphrase)
    if isinstance(loaded, dsa.DSAPrivateKey):
        raise InvalidInput("DSA keys are not supported (OpenSSH removed them); use an ed25519 key")
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        return "ecdsa"
    if isinstance(loaded, rsa.RSAPrivateKey):
        if loaded.key_size < 2048:
            raise InvalidInput(f"RSA key of {loaded.key_size} bits is too weak; use ed25519 or RSA ≥ 2048")
        return "rsa"
    raise InvalidInput(f"unsupported private key type {type(loaded).__name__}")


def load_pkey(data: bytes, passphrase: str | None = None) -> paramiko.PKey:
    """A paramiko key object from key text held in memory."""
    import paramiko

    classes: dict[str, type[paramiko.PKey]] = {
        "ed25519": paramiko.Ed25519Key, "ecdsa": paramiko.ECDSAKey, "rsa": paramiko.RSAKey,
    }
    cls = classes[key_type(data, passphrase)]
    return cls.from_private_key(io.StringIO(data.decode("utf-8", "replace")), password=passphrase)
