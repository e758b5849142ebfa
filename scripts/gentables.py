"""Generate `db/tables.py`, the SQLAlchemy Core view of the tables declared in `db/models.py`.

    python scripts/gentables.py          # rewrite vpsagent/db/tables.py
    python scripts/gentables.py --check  # exit 1 when it is stale (the test suite runs this)

The models are the one declaration of the schema. The hot path (`run`, `servers check`,
the audit log) must not import sqlmodel and pydantic (~0.18 s per process), so it uses
the Core tables this script derives from the models: the same names, columns, types and
nullability. Constraints and indexes are left out: they live in the database, made by
the Alembic revisions, and the Core tables only read and write rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa

TARGET = Path(__file__).resolve().parents[1] / "vpsagent" / "db" / "tables.py"

HEADER = '''"""SQLAlchemy Core tables for the hot path. GENERATED from db/models.py — do not edit.

Regenerate with `python scripts/gentables.py`; a test fails when this file is stale.
"""

# ruff: noqa: E501
from __future__ import annotations

import sqlalchemy as sa

from vpsagent.db.types import CoreTable, UTCDateTime

metadata = sa.MetaData()
'''


def _type(col: sa.Column[object]) -> str:
    from vpsagent.db.types import UTCDateTime

    t = col.type
    if isinstance(t, UTCDateTime):
        return "UTCDateTime()"
    if isinstance(t, sa.JSON):
        return "sa.JSON()"
    if isinstance(t, sa.Boolean):
        return "sa.Boolean()"
    if isinstance(t, sa.Integer):
        return "sa.Integer()"
    if isinstance(t, sa.Float):
        return "sa.Float()"
    if isinstance(t, sa.String) or type(t).__name__ == "AutoString":  # sqlmodel's str type
        length = getattr(t, "length", None)
        return f"sa.String({length})" if length else "sa.String()"
    raise TypeError(f"{col.table.name}.{col.name}: no Core spelling for {t!r}; add one to gentables")


def _column(col: sa.Column[object]) -> str:
    extra = ", primary_key=True" if col.primary_key else ""
    if not col.primary_key:
        extra += f", nullable={bool(col.nullable)}"
    return f"    sa.Column({col.name!r}, {_type(col)}{extra}),"


def render() -> str:
    from sqlmodel import SQLModel

    import vpsagent.db.models  # noqa: F401  - registers the tables on SQLModel.metadata

    out = [HEADER]
    names = []
    for table in sorted(SQLModel.metadata.tables.values(), key=lambda t: t.name):
        names.append(table.name)
        out.append(f"\n{table.name} = sa.Table(\n    {table.name!r},\n    metadata,")
        out += [_column(c) for c in table.columns]
        out.append(")\n")
    out.append("\nTABLES: dict[str, CoreTable] = {\n")
    out += [f"    {n!r}: {n},\n" for n in names]
    out.append("}\n")
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is stale: run `python scripts/gentables.py`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
