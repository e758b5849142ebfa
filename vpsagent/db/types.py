"""Column types and facts about the schema that both declarations of a table share.

`models.py` (SQLModel, for the ORM) and `tables.py` (SQLAlchemy Core, generated from
the models for the hot path) both take their datetime type and their list of encrypted
columns from here, so neither can drift from the other. Importing this module costs
only SQLAlchemy, never sqlmodel or pydantic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import types
from sqlalchemy.engine import Dialect

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.sql.base import ReadOnlyColumnCollection

# A table of tables.py. Its columns' Python types are not declared to SQLAlchemy (the
# file is generated from the models), so what it reads comes back as Any: the spelling
# of SQLAlchemy 2.1's own default for `Table`.
CoreTable: TypeAlias = "Table[ReadOnlyColumnCollection[str, Column[Any]]]"  # type: ignore[explicit-any]  # SQLAlchemy's default for a Table without declared column types

# table name -> envelope columns (crypto.py); `secret rekey` re-encrypts exactly these and
# loading a server decrypts exactly these.
ENCRYPTED_FIELDS: dict[str, tuple[str, ...]] = {
    "servers": ("private_key_enc", "key_passphrase_enc", "password_enc", "sudo_password_enc"),
    "github_integrations": ("token_enc",),
    "deploy_secrets": ("value_enc",),
}


class UTCDateTime(types.TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite and PostgreSQL alike.

    SQLite keeps no offset, so values are stored in UTC and given it back on the way
    out; a naive value is refused, because its zone is unknown.
    """

    impl = types.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("datetime values must have timezone information")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def __repr__(self) -> str:
        return "UTCDateTime()"


def utcnow() -> datetime:
    return datetime.now(UTC)
