"""Fixtures for tests/plans (the implementations live in helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.plans.helpers import WebServer, _tls_web_fixture, _web_fixture, _write_plan_fixture


@pytest.fixture
def write_plan(tmp_path: Path) -> Callable[..., str]:
    """write_plan(text, name="plan.yaml") -> path of a plan file in this test's tmp dir."""
    return _write_plan_fixture(tmp_path)


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A real HTTP server on 127.0.0.1 (/, /health, /redirect, /echo, /flaky, 404s)."""
    yield from _web_fixture()


@pytest.fixture
def tls_web(tmp_path: Path) -> Iterator[WebServer]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for `localhost`, 90 days."""
    yield from _tls_web_fixture(tmp_path)
