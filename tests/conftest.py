"""Shared fixtures: a fresh VPSAGENT_HOME per test, the database on SQLite and (when
VPSAGENT_TEST_DATABASE_URL is set) on the real PostgreSQL, a CLI runner, the real sshd.

Every test that takes `engine` or `settings` runs once per database backend.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from tests.fakes.anthropic_api import anthropic_api  # noqa: F401  (fixture: the fake Messages API)
from tests.fakes.github_api import github_api  # noqa: F401  (fixture: the fake GitHub REST API)
from tests.fakes.smtp import smtp_ca, smtp_server  # noqa: F401  (fixtures: a real SMTP server)
from tests.sshd import ssh_server, sshd, sshd_factory  # noqa: F401  (fixtures)

PG_URL = os.environ.get("VPSAGENT_TEST_DATABASE_URL")

# Variables a developer's shell may carry that would leak into tests.
_SCRUB = [
    "VPSAGENT_SECRET", "SESSION_SECRET", "VPSAGENT_NEW_SECRET", "DATABASE_URL", "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL", "VPSAGENT_MODEL", "VPSAGENT_SMTP_URL", "VPSAGENT_MAIL_FROM", "GITHUB_TOKEN",
    "GITHUB_API_URL", "VPSAGENT_POLICY", "VPSAGENT_TRACEBACK", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "NO_COLOR", "SSH_AUTH_SOCK",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames:
        backends = ["sqlite"] + (["postgres"] if PG_URL else [])
        metafunc.parametrize("db_backend", backends, scope="function")


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own for this test: a SQLite file, or a fresh PostgreSQL schema."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'data' / 'vpsagent.db'}"
        return
    import sqlalchemy as sa

    from vpsagent.db.engine import normalize_url

    assert PG_URL is not None
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Path]:
    """A fresh VPSAGENT_HOME with a clean environment, pointing at this test's database."""
    for var in _SCRUB:
        monkeypatch.delenv(var, raising=False)
    h = tmp_path / "home"
    h.mkdir(exist_ok=True)
    monkeypatch.setenv("VPSAGENT_HOME", str(h))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("TERM", "dumb")
    yield h
    from vpsagent.db.engine import dispose_engines

    dispose_engines()


@pytest.fixture
def settings(home: Path):
    from vpsagent.settings import load_settings

    return load_settings()


@pytest.fixture
def engine(settings):
    from vpsagent.db.engine import get_engine

    return get_engine(settings)


@pytest.fixture
def ctx(settings, engine):
    """The services' Context for this test's home and database (notes collected in ctx.notes)."""
    from vpsagent.services.context import Context

    notes: list[str] = []
    c = Context(settings, engine=engine, notify=notes.append)
    c.notes = notes  # type: ignore[attr-defined]
    return c


@pytest.fixture
def keyring(ctx):
    return ctx.keyring()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        import json

        return json.loads(self.stdout)


class _Entry:
    """Adapter so click's CliRunner runs `vpsagent.cli.execute` (our error mapping included)."""

    name = "vpsagent"

    def main(self, args, prog_name=None, **_kw):  # noqa: ANN001
        from vpsagent.cli import execute

        sys.exit(execute(list(args)))


@pytest.fixture
def cli(home: Path):
    """cli(*args, input=None, env=None) -> CliResult, in-process with separate stdout/stderr."""
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> CliResult:
        r = runner.invoke(_Entry(), list(args), input=input, env=env, catch_exceptions=False)  # type: ignore[arg-type]
        return CliResult(r.exit_code, r.stdout, r.stderr)

    return invoke


@pytest.fixture
def run_vpsagent(home: Path):
    """Run `vpsagent` as a real subprocess (the path users take) with this test's environment."""
    import subprocess

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.update(env or {})
        data = input.encode() if isinstance(input, str) else input
        return subprocess.run([sys.executable, "-m", "vpsagent", *args], input=data, capture_output=True,
                              env=full_env, timeout=timeout)

    return run


class Clock:
    """Moves the time that in-process code sees (freezegun, ticking from now)."""

    def __init__(self, frozen) -> None:  # noqa: ANN001
        self._frozen = frozen

    def advance(self, seconds: float) -> None:
        from datetime import UTC, datetime, timedelta

        # from the time shown now: freezegun's tick() on a ticking clock would drop the
        # real time that passed since the clock was frozen
        self._frozen.move_to(datetime.now(UTC) + timedelta(seconds=seconds))


@pytest.fixture
def clock():
    from datetime import UTC, datetime

    from freezegun import freeze_time

    with freeze_time(datetime.now(UTC), tick=True) as frozen:
        yield Clock(frozen)
