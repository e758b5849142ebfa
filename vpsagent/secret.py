"""`Secret`: a value that never prints itself.

str() and repr() give `***`, so a secret that slips into a log line, an f-string,
an exception message or a JSON dump shows as stars. Call `.reveal()` at the one
place that truly needs the plaintext (the cipher, the SSH library).
"""

from __future__ import annotations

from typing import NoReturn

MASK = "***"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str | bytes):
        self._value = value

    def reveal(self) -> str | bytes:
        return self._value

    def reveal_str(self) -> str:
        v = self._value
        return v.decode() if isinstance(v, bytes) else v

    def reveal_bytes(self) -> bytes:
        v = self._value
        return v.encode() if isinstance(v, str) else v

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:  # never pickle plaintext by accident
        raise TypeError("Secret cannot be pickled")
