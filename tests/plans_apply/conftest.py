"""Fixtures for change plans: three loopback servers on the session's sshd, a plan writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sshd import register_sshd

NAMES = ("web1", "web2", "web3")


@pytest.fixture
def three(engine, keyring, sshd) -> list[str]:  # noqa: ANN001 - fixtures
    """web1..web3 on 127.0.0.1..3 (one sshd, running as this user), all tagged `web`."""
    return [register_sshd(engine, keyring, sshd, name, address=f"127.0.0.{i}", tags=["web"])
            for i, name in enumerate(NAMES, 1)]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    def w(text: str, name: str = "change.yaml") -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    return w
