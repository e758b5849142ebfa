"""One `error:` line and the documented exit code, nothing else on the terminal (issue 10,
items 10 and 11): a config file that is not UTF-8 names its path; a library's warning (a
DSA key's CryptographyDeprecationWarning) never comes before the error line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def test_a_config_file_that_is_not_utf8_is_exit_2_with_its_path(cli, home: Path) -> None:
    cfg = home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_bytes(b'model = "caf\xe9"\n')
    r = cli("servers", "list")
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith("error: ") and str(cfg) in r.stderr and "UTF-8" in r.stderr
    assert r.stderr.count("\n") == 1 and "internal error" not in r.stderr


def test_a_config_file_that_is_a_device_is_refused(cli, home: Path) -> None:
    cfg = home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.symlink_to("/dev/zero")
    r = cli("servers", "list")
    assert r.exit_code == 2 and "not a regular file" in r.stderr


def test_a_dsa_key_gives_the_error_line_only(run_vpsagent, tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("no ssh-keygen")
    key = tmp_path / "id_dsa"
    made = subprocess.run(["ssh-keygen", "-q", "-t", "dsa", "-N", "", "-f", str(key)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("this ssh-keygen cannot make DSA keys")
    r = run_vpsagent("servers", "add", "d1", "--host", "127.0.0.1", "--key", str(key))
    assert r.returncode == 2
    assert r.stderr.decode().splitlines() == ["error: DSA keys are not supported (OpenSSH removed them); "
                                              "use an ed25519 key"]
