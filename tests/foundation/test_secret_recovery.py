"""The master secret when something is missing (issue 10, items 4 and 5): a lost key file
for a vault that holds credentials is exit 7 with what to do (never a new key that opens
nothing), and the state left by a `secret rekey` killed between its commit and renaming
`secret.key.new` recovers by itself."""

from __future__ import annotations

from pathlib import Path

import pytest


def _add(cli, name: str, pw: str = "Stored-Pa55word-xyz", env: dict[str, str] | None = None):
    return cli("servers", "add", name, "--host", "198.51.100.3", "--password-stdin", input=pw + "\n", env=env)


def test_a_missing_key_file_for_stored_credentials_is_exit_7(cli, home: Path) -> None:
    assert _add(cli, "a").exit_code == 0
    key = home / "config" / "secret.key"
    key.unlink()
    r = cli("run", "-s", "a", "true")
    assert r.exit_code == 7, r.stderr
    assert r.stderr.startswith("error: ") and "VPSAGENT_SECRET" in r.stderr and str(key) in r.stderr
    assert not key.exists()  # no new key that could never open them
    assert _add(cli, "b").exit_code == 7 and not key.exists()
    d = cli("doctor")
    assert d.exit_code == 1 and "FAIL  secret" in d.stdout


def test_a_key_file_is_created_for_a_vault_without_credentials(cli, home: Path) -> None:
    assert _add(cli, "a").exit_code == 0
    assert cli("servers", "remove", "a", "--yes").exit_code == 0
    key = home / "config" / "secret.key"
    key.unlink()
    r = _add(cli, "b")
    assert r.exit_code == 0, r.stderr
    assert key.exists() and "created a new secret key" in r.stderr
    assert cli("servers", "show", "b").exit_code == 0


@pytest.fixture
def rekey_killed_after_commit(cli, settings, engine) -> Path:
    """The files as `secret rekey` leaves them when killed between its commit and its
    rename: the credentials under the new key, which is only in secret.key.new."""
    from vpsagent.crypto import Keyring, new_params
    from vpsagent.secret import Secret
    from vpsagent.services.admin import _reencrypt_all, _write_pending_key
    from vpsagent.services.vault import get_keyring

    assert _add(cli, "a").exit_code == 0
    old = get_keyring(settings, engine, lambda _m: None)
    new_secret = Secret("n" * 40)
    pending = _write_pending_key(settings.key_file, new_secret)
    _reencrypt_all(engine, old, Keyring(new_secret, new_params()))
    return pending


def test_doctor_reports_a_committed_pending_key(cli, rekey_killed_after_commit: Path) -> None:
    d = cli("doctor", "--json")
    checks = {c["name"]: c for c in d.json()["data"]["checks"]}
    assert checks["pending key"]["status"] == "warn" and "adopts it" in checks["pending key"]["detail"]
    assert rekey_killed_after_commit.exists()  # doctor only reports


def test_the_next_command_adopts_a_committed_pending_key(cli, settings, rekey_killed_after_commit: Path) -> None:
    r = _add(cli, "b")
    assert r.exit_code == 0, r.stderr
    assert "adopted" in r.stderr and str(rekey_killed_after_commit) in r.stderr
    assert not rekey_killed_after_commit.exists()
    assert settings.key_file.read_text().strip() == "n" * 40
    assert _add(cli, "c").exit_code == 0  # and from now on, quietly
    assert cli("doctor").exit_code == 0


def test_a_pending_key_that_never_committed_is_not_adopted(cli, settings, engine) -> None:
    from vpsagent.secret import Secret
    from vpsagent.services.admin import _write_pending_key

    assert _add(cli, "a").exit_code == 0
    before = settings.key_file.read_text()
    pending = _write_pending_key(settings.key_file, Secret("m" * 40))  # killed before the commit
    assert _add(cli, "b").exit_code == 0
    assert settings.key_file.read_text() == before and pending.exists()
    d = cli("doctor", "--json")
    checks = {c["name"]: c for c in d.json()["data"]["checks"]}
    assert checks["pending key"]["status"] == "warn" and "did not commit" in checks["pending key"]["detail"]
    assert checks["credentials"]["status"] == "ok"
