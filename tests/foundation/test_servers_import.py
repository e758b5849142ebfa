"""`servers import` on a realistic ~/.ssh/config: Include (globs, relative to ~/.ssh),
Match blocks, ProxyJump by alias, by user@host:port and as a chain."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def ssh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, so `~/.ssh` is this test's."""
    home = tmp_path / "userhome"
    (home / ".ssh" / "config.d").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home / ".ssh"


def _key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path), "-C", path.name], check=True)
    return path


REALISTIC = """\
# Personal config, the way it grows over the years
Include config.d/*.conf

Host *
    ServerAliveInterval 30
    AddKeysToAgent yes

Match host *.corp.example exec "test -f ~/.vpn-up"
    ProxyCommand none
    User corpuser

Host bastion
    HostName 198.51.100.1
    User jump
    IdentityFile ~/.ssh/id_work

Host app-1
    HostName 10.0.0.11
    User deploy
    IdentityFile ~/.ssh/id_work
    ProxyJump bastion

Host db-1
    HostName 10.0.0.21
    ProxyJump ops@gw.example.net:2222

Host db-2
    HostName 10.0.0.22
    ProxyJump ops@gw.example.net:2222

Match all
    ForwardAgent no

Host deep
    HostName 10.9.9.9
    ProxyJump bastion,admin@[2001:db8::7]:2200
"""


def test_import_a_realistic_config(cli, ssh_home: Path):
    _key(ssh_home / "id_work")
    (ssh_home / "config.d" / "10-web.conf").write_text(
        "Host web-1 web-2\n    User www\nHost web-1\n    HostName 203.0.113.11\nHost web-2\n"
        "    HostName 203.0.113.12\n    Port 2201\n")
    (ssh_home / "config.d" / "20-match.conf").write_text("Match user root\n    IdentitiesOnly yes\n")
    (ssh_home / "config.d" / "README").write_text("Host not-included\n    HostName 192.0.2.99\n")
    (ssh_home / "config").write_text(REALISTIC)

    r = cli("servers", "import", "--json")
    assert r.exit_code == 0, r.stderr
    data = r.json()["data"]
    added = {s["name"]: s for s in data["added"]}
    assert data["skipped"] == []
    # Include followed (the glob matched only *.conf), Match blocks skipped with a warning each
    assert {"web-1", "web-2"} <= set(added) and "not-included" not in added
    assert (added["web-2"]["host"], added["web-2"]["port"], added["web-2"]["user"]) == ("203.0.113.12", 2201, "www")
    match_warnings = [w for w in data["warnings"] if "Match" in w["reason"]]
    assert len(match_warnings) == 3, data["warnings"]
    # the Match blocks did not leak their options into the Host entries around them
    assert added["bastion"]["user"] == "jump"
    # ProxyJump by alias
    assert added["app-1"]["jump"] == "bastion" and added["app-1"]["auth"] == "key"
    # ProxyJump user@host:port: created once, then matched for the second server
    gw = added["gw.example.net-2222"]
    assert (gw["host"], gw["port"], gw["user"]) == ("gw.example.net", 2222, "ops")
    assert added["db-1"]["jump"] == added["db-2"]["jump"] == "gw.example.net-2222"
    # a chain: deep -> [2001:db8::7]:2200 -> bastion
    v6 = next(s for s in added.values() if s["host"] == "2001:db8::7")
    assert (v6["port"], v6["user"], v6["jump"]) == (2200, "admin", "bastion")
    assert added["deep"]["jump"] == v6["name"]

    # the text output says what was skipped and created, one line each, no traceback
    r = cli("servers", "import", "--ssh-config", str(ssh_home / "config"))
    assert r.exit_code == 0 and "Traceback" not in r.stderr
    assert "already in the inventory" in r.stderr


def test_jump_host_matched_by_address_in_the_inventory(cli, ssh_home: Path):
    assert cli("servers", "add", "gate", "--host", "gw.example.net", "--port", "2222", "-u", "ops").exit_code == 0
    (ssh_home / "config").write_text("Host inner\n    HostName 10.1.1.1\n    ProxyJump ops@gw.example.net:2222\n")
    r = cli("servers", "import", "--json")
    assert r.exit_code == 0, r.stderr
    (inner,) = r.json()["data"]["added"]
    assert inner["jump"] == "gate"


def test_a_match_block_alone_does_not_crash(cli, tmp_path: Path, ssh_home: Path):
    cfg = tmp_path / "only_match"
    cfg.write_text("Match host foo\n    User x\n")
    r = cli("servers", "import", "--ssh-config", str(cfg))
    assert r.exit_code == 0, r.stderr
    assert "Traceback" not in r.stderr and "KeyError" not in r.stderr
    assert "Match blocks are not imported" in r.stderr


def test_a_jump_spec_finds_a_host_of_the_config_imported_later(cli, ssh_home: Path):
    # "aaa" sorts before "gate": the spec must find gate by its address, not add a twin
    (ssh_home / "config").write_text("Host aaa\n    HostName 10.0.0.1\n    ProxyJump ops@203.0.113.5:2222\n"
                                     "Host gate\n    HostName 203.0.113.5\n    Port 2222\n    User ops\n")
    r = cli("servers", "import", "--json")
    assert r.exit_code == 0, r.stderr
    added = {s["name"]: s for s in r.json()["data"]["added"]}
    assert set(added) == {"aaa", "gate"} and added["aaa"]["jump"] == "gate"


def test_an_include_loop_is_skipped_with_a_warning(cli, ssh_home: Path):
    (ssh_home / "config").write_text("Include config.d/a.conf\nHost top\n    HostName 10.0.0.9\n")
    (ssh_home / "config.d" / "a.conf").write_text("Include ~/.ssh/config\nHost inner\n    HostName 10.0.0.8\n")
    r = cli("servers", "import", "--json")
    assert r.exit_code == 0, r.stderr
    assert {s["name"] for s in r.json()["data"]["added"]} == {"top", "inner"}
    assert any("includes itself" in w["reason"] for w in r.json()["data"]["warnings"])
