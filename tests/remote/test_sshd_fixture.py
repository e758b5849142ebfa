"""The test sshd itself: real OpenSSH, reachable with the client key, on loopback only."""

from __future__ import annotations

import subprocess

import pytest

from tests.sshd import start_sshd


def test_openssh_client_logs_in_with_the_generated_key(sshd):
    out = subprocess.run(sshd.ssh_args("127.0.0.3") + ["echo", "hello-from-sshd"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello-from-sshd"
    assert sshd.host_key_fingerprint.startswith("SHA256:")


def test_refuses_addresses_off_loopback(tmp_path):
    with pytest.raises(ValueError, match="loopback"):
        start_sshd(tmp_path, ["10.0.0.1"])


def test_registered_server_runs_commands_over_ssh(cli, ssh_server, sshd):
    r = cli("run", "-s", ssh_server, "echo over-ssh; echo to-stderr >&2; exit 3")
    assert r.exit_code == 1, r.stderr
    assert r.stdout == "over-ssh\n" and "to-stderr" in r.stderr
