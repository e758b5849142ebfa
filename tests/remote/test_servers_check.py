"""`vpsagent servers check`: pin on first contact, verify after, replace only when asked."""

from __future__ import annotations

from tests.sshd import SSHD, free_port, register_sshd
from vpsagent.db.inventory import pin_host_key
from vpsagent.services.servers import ServerSpec, add_server, show_server


def test_first_contact_pins_and_prints_the_fingerprint(cli, engine, keyring, sshd: SSHD) -> None:
    register_sshd(engine, keyring, sshd, "new1", pin=False)
    r = cli("servers", "check", "new1")
    assert r.exit_code == 0, r.stderr
    assert sshd.host_key_fingerprint in r.stdout and "pinned on first contact" in r.stdout
    assert sshd.host_key_fingerprint in r.stderr  # announced as it happened
    assert show_server(engine, "new1").host_key_fingerprint == sshd.host_key_fingerprint
    again = cli("servers", "check", "new1", "--json")
    s = again.json()["data"]["servers"][0]
    assert again.exit_code == 0 and s["status"] == "ok" and s["fingerprint"] == sshd.host_key_fingerprint


def test_changed_key_exit_5_both_fingerprints_and_update_only_when_asked(cli, engine, keyring, sshd: SSHD,
                                                                         sshd_factory) -> None:
    old: SSHD = sshd_factory(["127.0.0.34"])
    register_sshd(engine, keyring, sshd, "web9", pin=False)
    pin_host_key(engine, "web9", old.host_key_type, old.host_key_base64, old.host_key_fingerprint)
    r = cli("servers", "check", "web9")
    assert r.exit_code == 5
    assert old.host_key_fingerprint in r.stderr and sshd.host_key_fingerprint in r.stderr
    assert "--update-host-key" in r.stderr
    assert show_server(engine, "web9").host_key_fingerprint == old.host_key_fingerprint
    j = cli("servers", "check", "web9", "--json").json()
    assert j["exit_code"] == 5 and j["errors"][0]["code"] == "host_key_mismatch"
    assert j["data"]["servers"][0]["old_fingerprint"] == old.host_key_fingerprint
    upd = cli("servers", "check", "web9", "--update-host-key")
    assert upd.exit_code == 0 and "replaced" in upd.stdout
    assert show_server(engine, "web9").host_key_fingerprint == sshd.host_key_fingerprint


def test_check_all_reports_each_server_and_exit_5_for_the_unreachable(ctx, cli, engine, keyring, sshd: SSHD) -> None:
    register_sshd(engine, keyring, sshd, "a1", address="127.0.0.1")
    register_sshd(engine, keyring, sshd, "a2", address="127.0.0.2")
    add_server(ctx, ServerSpec(name="a3", host="127.0.0.1", port=free_port(["127.0.0.1"]),
                                                   user=sshd.user, key_path=sshd.client_key_path))
    r = cli("servers", "check", "--all", "--json")
    by = {s["server"]: s for s in r.json()["data"]["servers"]}
    assert r.exit_code == 5
    assert by["a1"]["status"] == by["a2"]["status"] == "ok"
    assert by["a3"]["status"] == "unreachable" and "refused" in by["a3"]["error"]
    assert cli("servers", "check", "local").exit_code == 0
    assert cli("servers", "check", "nope").exit_code == 2


def test_update_host_key_needs_explicit_names(cli):
    """Re-trusting a fleet in one go is refused: each new key is a decision about one server."""
    for args in (["--all"], ["-t", "web"]):
        r = cli("servers", "check", *args, "--update-host-key")
        assert r.exit_code == 2 and "takes server names" in r.stderr
    r = cli("servers", "check")
    assert r.exit_code == 2 and "NAME..." in r.stderr and "-s NAME" not in r.stderr


def test_a_jump_host_checked_with_its_target_is_pinned_once(cli, engine, keyring, sshd: SSHD, sshd_factory) -> None:
    jump: SSHD = sshd_factory(["127.0.0.41"])
    register_sshd(engine, keyring, jump, "bastion", pin=False)
    register_sshd(engine, keyring, sshd, "inner", address="127.0.0.3", jump="bastion", pin=False)
    r = cli("servers", "check", "bastion", "inner")
    assert r.exit_code == 0, r.stderr
    assert r.stderr.count("bastion: first contact") == 1, r.stderr
    assert r.stdout.count(jump.host_key_fingerprint) == 1, r.stdout
    assert "2 servers: 2 ok" in r.stderr


def test_check_rows_are_aligned_with_a_summary_line(cli, engine, keyring, sshd: SSHD) -> None:
    register_sshd(engine, keyring, sshd, "a1", address="127.0.0.1")
    register_sshd(engine, keyring, sshd, "a-longer-name", address="127.0.0.2")
    add = cli("servers", "add", "gone", "--host", "127.0.0.1", "--port", str(free_port(["127.0.0.1"])),
              "-u", sshd.user, "--key", str(sshd.client_key_path))
    assert add.exit_code == 0, add.stderr
    r = cli("servers", "check", "--all")
    assert r.exit_code == 5
    header, *rows = r.stdout.splitlines()
    assert header.split("\t")[:3] == ["SERVER", "ADDRESS", "HOST KEY"]
    assert sorted(row.split("\t")[0] for row in rows) == ["a-longer-name", "a1"]
    assert "error: " in r.stderr and "3 servers: 2 ok, 1 unreachable" in r.stderr
