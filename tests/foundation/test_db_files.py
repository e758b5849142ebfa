"""The SQLite database is vpsagent's own (issue 10, items 2 and 3): its directory is 0700
and its files 0600; a database open to others is said on every command and fails
`doctor`; an in-memory database or an explicit path in a missing directory is refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest


@pytest.fixture
def sqlite_home(db_backend: str, home: Path) -> Path:
    if db_backend != "sqlite":
        pytest.skip("SQLite files only")
    return home


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_new_database_is_owner_only(sqlite_home: Path, engine) -> None:
    data = sqlite_home / "data"
    with engine.connect() as conn:  # WAL mode: -wal and -shm exist while a connection is open
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x)")
        conn.commit()
        files = [data / "vpsagent.db", data / "vpsagent.db-wal", data / "vpsagent.db-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert _mode(data) == 0o700


def test_a_database_open_to_others_is_warned_about_and_fails_doctor(cli, sqlite_home: Path) -> None:
    assert cli("history").exit_code == 0
    db = sqlite_home / "data" / "vpsagent.db"
    db.chmod(0o644)
    r = cli("history")
    assert r.exit_code == 0
    assert f"warning: {db} (mode 0644) is open to other users: chmod 600 {db}" in r.stderr
    d = cli("doctor")
    assert d.exit_code == 1 and "FAIL  database permissions" in d.stdout
    db.chmod(0o600)
    (sqlite_home / "data").chmod(0o755)
    assert "chmod 700" in cli("history").stderr
    (sqlite_home / "data").chmod(0o700)
    ok = cli("doctor", "--json")
    checks = {c["name"]: c["status"] for c in ok.json()["data"]["checks"]}
    assert checks["database permissions"] == "ok"


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true",
                                 "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_database_is_refused(cli, sqlite_home: Path, url: str) -> None:
    r = cli("run", "-s", "local", "true", env={"DATABASE_URL": url})
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith("error: ") and "in-memory" in r.stderr and r.stdout == ""


def test_an_explicit_path_needs_its_directory(cli, sqlite_home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    r = cli("run", "-s", "local", "true", env={"DATABASE_URL": f"sqlite:///{missing}/v.db"})
    assert r.exit_code == 2 and f"{missing}" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "no").exists()
    # the default data directory is still created
    assert not (sqlite_home / "data").exists()
    assert cli("run", "-s", "local", "true").exit_code == 0
    assert _mode(sqlite_home / "data") == 0o700
