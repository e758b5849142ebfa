"""The inventory through the CLI: happy paths, every bad input of the issue, secrets never leak."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

PASSWORD = "hunter2-Very-Secret-pw"
SUDO_PASSWORD = "sudo-Very-Secret-pw-77"


def keygen(tmp_path: Path, name: str, passphrase: str = "") -> Path:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path), "-C", name],
                   check=True)
    return path


def one_line_error(r, code: int, needle: str) -> None:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert needle in r.stderr, r.stderr


def test_add_list_show_edit_remove(cli, tmp_path):
    key = keygen(tmp_path, "id_web")
    r = cli("servers", "add", "web1", "--host", "203.0.113.10", "-u", "deploy", "--key", str(key), "-t", "web")
    assert r.exit_code == 0, r.stderr
    assert "added web1 (deploy@203.0.113.10)" in r.stdout
    r = cli("servers", "add", "db1", "--host", "2001:db8::5", "--port", "2222", "--password-stdin",
            "-t", "db", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.stderr

    doc = cli("servers", "list", "--json").json()
    by_name = {s["name"]: s for s in doc["data"]["servers"]}
    assert list(by_name) == ["local", "db1", "web1"]
    assert by_name["local"]["builtin"] is True
    assert by_name["web1"]["auth"] == "key" and by_name["web1"]["has_key"] is True
    assert by_name["db1"]["auth"] == "password" and by_name["db1"]["port"] == 2222
    assert [s["name"] for s in cli("servers", "list", "-t", "web", "--json").json()["data"]["servers"]] == ["web1"]

    r = cli("servers", "edit", "web1", "--port", "2200", "-t", "prod", "--rename", "web-1")
    assert r.exit_code == 0, r.stderr
    show = cli("servers", "show", "web-1", "--json").json()["data"]["server"]
    assert show["port"] == 2200 and show["tags"] == ["prod", "web"]
    # the key still opens after a rename: its envelope is bound to the row id, not the name
    from vpsagent.db.engine import get_engine
    from vpsagent.db.inventory import decrypt, load_record
    from vpsagent.services.vault import get_keyring
    from vpsagent.settings import load_settings

    s = load_settings()
    eng = get_engine(s)
    rec = decrypt(load_record(eng, "web-1"), get_keyring(s, eng, notify=lambda m: None))
    assert rec.private_key is not None and rec.private_key.reveal_bytes() == key.read_bytes()

    r = cli("servers", "remove", "web-1")  # no TTY, no --yes: refused, nothing removed
    assert r.exit_code == 4 and "--yes" in r.stderr
    assert "web-1" in cli("servers", "list").stdout
    r = cli("servers", "remove", "web-1", "--yes")
    assert r.exit_code == 0 and "web-1" not in cli("servers", "list").stdout


def test_key_file_may_be_deleted_after_add(cli, tmp_path, settings, engine, keyring):
    key = keygen(tmp_path, "id_tmp")
    data = key.read_bytes()
    assert cli("servers", "add", "k", "--host", "example.com", "--key", str(key)).exit_code == 0
    key.unlink()
    from vpsagent.db.inventory import decrypt, load_record

    assert decrypt(load_record(engine, "k"), keyring).private_key.reveal_bytes() == data


def test_encrypted_key_with_passphrase(cli, tmp_path, engine, keyring):
    key = keygen(tmp_path, "id_enc", passphrase="pp-secret-1")
    one_line_error(cli("servers", "add", "e", "--host", "h.example", "--key", str(key)), 2, "no passphrase")
    one_line_error(cli("servers", "add", "e", "--host", "h.example", "--key", str(key), "--key-passphrase-stdin",
                       input="wrong\n"), 2, "wrong passphrase")
    r = cli("servers", "add", "e", "--host", "h.example", "--key", str(key), "--key-passphrase-stdin",
            input="pp-secret-1\n")
    assert r.exit_code == 0, r.stderr
    from vpsagent.db.inventory import decrypt, load_record
    from vpsagent.remote.keys import load_pkey

    rec = decrypt(load_record(engine, "e"), keyring)
    assert load_pkey(rec.private_key.reveal_bytes(), rec.key_passphrase.reveal_str()).get_name() == "ssh-ed25519"


def test_bad_inputs_one_line_and_exit_code(cli, tmp_path):
    key = keygen(tmp_path, "id_ok")
    assert cli("servers", "add", "dup", "--host", "h1.example").exit_code == 0
    one_line_error(cli("servers", "add", "dup", "--host", "h2.example"), 2, "already exists")
    one_line_error(cli("servers", "show", "nope"), 2, "unknown server 'nope'")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--key", str(tmp_path / "missing")), 2, "does not exist")
    unreadable = tmp_path / "notakey"
    unreadable.write_text("hello\n")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--key", str(unreadable)), 2, "not a private key")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--key", str(tmp_path)), 2, "")
    one_line_error(cli("servers", "add", "x", "--host", "bad host!"), 2, "invalid host")
    one_line_error(cli("servers", "add", "x", "--host", "999.1.1.1"), 2, "invalid host")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--port", "70000"), 2, "invalid port")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--port", "abc"), 2, "abc")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--password", PASSWORD), 2, "shell history")
    one_line_error(cli("servers", "add", "local", "--host", "h"), 2, "built-in")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--key", str(key), "--agent"), 2, "--agent")
    one_line_error(cli("servers", "add", "x", "--host", "h", "--jump", "nope"), 2, "unknown jump server")
    # DSA keys are refused
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa

    dsa_key = dsa.generate_private_key(key_size=2048)
    dsa_path = tmp_path / "id_dsa"
    dsa_path.write_bytes(dsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()))
    one_line_error(cli("servers", "add", "x", "--host", "h", "--key", str(dsa_path)), 2, "DSA")
    # nothing half-written: only `dup` (and local) exist
    names = [s["name"] for s in cli("servers", "list", "--json").json()["data"]["servers"]]
    assert names == ["local", "dup"]
    r = cli("servers", "add", "dup", "--host", "h3.example", "--json")
    assert r.json()["errors"][0]["code"] == "already_exists" and r.json()["exit_code"] == 2


def test_usage_errors_give_the_envelope_with_json(cli):
    r = cli("servers", "add", "x", "--json", "--nope")
    assert r.exit_code == 2
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["errors"][0]["code"] == "usage"


def test_wrong_secret_corrupted_envelope_and_readable_key_file(cli, tmp_path, home, engine):
    key = keygen(tmp_path, "id_x")
    env = {"VPSAGENT_SECRET": "the-right-secret-0123456789"}
    assert cli("servers", "add", "s1", "--host", "h.example", "--key", str(key), env=env).exit_code == 0
    one_line_error(cli("servers", "add", "s2", "--host", "h", "--key", str(key),
                       env={"VPSAGENT_SECRET": "a-wrong-secret-0123456789"}), 7, "not the one")
    from vpsagent.db.inventory import decrypt, load_record
    from vpsagent.errors import CredentialError
    from vpsagent.services.vault import get_keyring
    from vpsagent.settings import load_settings

    os.environ["VPSAGENT_SECRET"] = env["VPSAGENT_SECRET"]
    try:
        kr = get_keyring(load_settings(), engine, notify=lambda m: None)
        with engine.begin() as conn:  # corrupt one character of the stored ciphertext
            val = conn.execute(sa.text("SELECT private_key_enc FROM servers WHERE name='s1'")).scalar()
            bad = val[:-3] + ("A" if val[-3] != "A" else "B") + val[-2:]
            conn.execute(sa.text("UPDATE servers SET private_key_enc=:v WHERE name='s1'"), {"v": bad})
        with pytest.raises(CredentialError, match="tampered"):
            decrypt(load_record(engine, "s1"), kr)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE servers SET private_key_enc=:v WHERE name='s1'"), {"v": val})
        assert decrypt(load_record(engine, "s1"), kr).private_key is not None
    finally:
        del os.environ["VPSAGENT_SECRET"]


def test_key_file_readable_by_others_is_refused(cli, tmp_path, home):
    key = keygen(tmp_path, "id_y")
    assert cli("servers", "add", "s3", "--host", "h", "--key", str(key)).exit_code == 0
    keyfile = home / "config" / "secret.key"
    assert (keyfile.stat().st_mode & 0o777) == 0o600
    keyfile.chmod(0o644)
    one_line_error(cli("servers", "add", "s4", "--host", "h", "--key", str(key)), 7, "chmod 600")
    assert [s["name"] for s in cli("servers", "list", "--json").json()["data"]["servers"]] == ["local", "s3"]


def test_rekey_rotates_every_credential(cli, tmp_path):
    key = keygen(tmp_path, "id_r")
    old = {"VPSAGENT_SECRET": "old-secret-0123456789abc"}
    new = {"VPSAGENT_SECRET": "new-secret-0123456789xyz"}
    assert cli("servers", "add", "r1", "--host", "h", "--key", str(key), env=old).exit_code == 0
    assert cli("servers", "add", "r2", "--host", "h", "--password-stdin", input="pw-r2\n", env=old).exit_code == 0
    r = cli("secret", "rekey", "--json", env={**old, "VPSAGENT_NEW_SECRET": new["VPSAGENT_SECRET"]})
    assert r.exit_code == 0, r.stderr
    assert r.json()["data"]["fields"] == 2 and r.json()["data"]["records"] == 2
    one_line_error(cli("servers", "add", "r3", "--host", "h", "--password-stdin", input="x\n", env=old), 7, "not the one")
    assert cli("servers", "add", "r3", "--host", "h", "--password-stdin", input="x\n", env=new).exit_code == 0
    one_line_error(cli("secret", "rekey", env={**new, "VPSAGENT_NEW_SECRET": "short"}), 2, "at least")


def test_rekey_with_key_file_generates_and_replaces_it(cli, tmp_path, home):
    assert cli("servers", "add", "k1", "--host", "h", "--password-stdin", input="pw-k1\n").exit_code == 0
    keyfile = home / "config" / "secret.key"
    before = keyfile.read_text()
    r = cli("secret", "rekey")
    assert r.exit_code == 0, r.stderr
    assert keyfile.read_text() != before and (keyfile.stat().st_mode & 0o777) == 0o600
    assert not keyfile.with_name("secret.key.new").exists()
    assert cli("servers", "add", "k2", "--host", "h", "--password-stdin", input="pw\n").exit_code == 0


def test_import_ssh_config(cli, tmp_path):
    key = keygen(tmp_path, "id_imp")
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"""
Host bastion
    HostName 198.51.100.1
    User jump
Host app-1
    HostName 198.51.100.11
    Port 2222
    User deploy
    IdentityFile {key}
    ProxyJump bastion
Host other
    HostName other.example
Host app-* other
    User fallback-from-wildcard
    Port 2200
""")
    r = cli("servers", "import", "--ssh-config", str(cfg), "--host", "[ab]*", "--json")
    assert r.exit_code == 0, r.stderr
    added = {s["name"]: s for s in r.json()["data"]["added"]}
    assert set(added) == {"bastion", "app-1"}
    assert added["app-1"]["port"] == 2222 and added["app-1"]["user"] == "deploy"
    assert added["app-1"]["jump"] == "bastion" and added["app-1"]["auth"] == "key"
    r = cli("servers", "import", "--ssh-config", str(cfg), "--json")
    (other,) = r.json()["data"]["added"]
    assert (other["name"], other["user"], other["port"]) == ("other", "fallback-from-wildcard", 2200)
    assert {s["name"] for s in r.json()["data"]["skipped"]} == {"bastion", "app-1"}
    one_line_error(cli("servers", "import", "--ssh-config", str(tmp_path / "nope")), 2, "does not exist")


def _all_stored_text(engine, home: Path) -> bytes:
    blobs = []
    if engine.dialect.name == "sqlite":
        for p in (home / "data").glob("vpsagent.db*"):
            blobs.append(p.read_bytes())
    else:
        with engine.connect() as conn:
            for t in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f'SELECT row_to_json(x)::text FROM "{t}" x')):
                    blobs.append(row[0].encode())
    for p in (home / "config").rglob("*"):
        if p.is_file() and p.name != "secret.key":
            blobs.append(p.read_bytes())
    return b"\n".join(blobs)


def test_secrets_never_stored_or_printed_in_plaintext(cli, tmp_path, home, engine):
    key = keygen(tmp_path, "id_leak", passphrase="pass-Phrase-Leak-42")
    key_line = key.read_text().splitlines()[2].encode()  # a line of the private key body
    outputs = []
    r = cli("servers", "add", "leak", "--host", "h.example", "--key", str(key), "--key-passphrase-stdin", "--json",
            input="pass-Phrase-Leak-42\n")
    outputs.append(r.stdout + r.stderr)
    r = cli("servers", "add", "leak2", "--host", "h.example", "--password-stdin", "--sudo-password-stdin", "--json",
            input=f"{PASSWORD}\n{SUDO_PASSWORD}\n")
    assert r.exit_code == 0, r.stderr
    outputs.append(r.stdout + r.stderr)
    for args in (["servers", "list", "--json"], ["servers", "show", "leak", "--json"],
                 ["servers", "show", "leak2", "--json"], ["doctor", "--json"]):
        r = cli(*args)
        outputs.append(r.stdout + r.stderr)
        json.loads(r.stdout)
    show = json.loads(cli("servers", "show", "leak2", "--json").stdout)["data"]["server"]
    assert show["has_password"] and show["has_sudo_password"]
    stored = _all_stored_text(engine, home)
    printed = "\n".join(outputs).encode()
    for needle in (PASSWORD.encode(), SUDO_PASSWORD.encode(), b"pass-Phrase-Leak-42", key_line):
        assert needle not in stored, needle
        assert needle not in printed, needle
    assert b"vpsenc$1$scrypt$" in stored  # the envelopes are there instead


def test_jump_hosts_follow_a_rename_and_never_loop(cli):
    assert cli("servers", "add", "bastion", "--host", "198.51.100.1").exit_code == 0
    assert cli("servers", "add", "app", "--host", "10.0.0.2", "--jump", "bastion").exit_code == 0
    assert cli("servers", "add", "db", "--host", "10.0.0.3", "--jump", "app").exit_code == 0
    r = cli("servers", "edit", "bastion", "--rename", "gate")
    assert r.exit_code == 0, r.stderr
    assert cli("servers", "show", "app", "--json").json()["data"]["server"]["jump"] == "gate"
    one_line_error(cli("servers", "edit", "gate", "--jump", "db"), 2, "loop: gate -> db -> app -> gate")
    one_line_error(cli("servers", "edit", "app", "--jump", "local"), 2, "cannot be a jump host")
    one_line_error(cli("servers", "edit", "app", "--jump", "gate", "--no-jump"), 2, "contradict")
    assert cli("servers", "show", "gate", "--json").json()["data"]["server"]["jump"] is None


def test_edit_without_changes_is_refused(cli):
    assert cli("servers", "add", "w", "--host", "198.51.100.7").exit_code == 0
    one_line_error(cli("servers", "edit", "w"), 2, "nothing to change")


def test_host_key_can_be_pinned_up_front(cli, tmp_path):
    keygen(tmp_path, "hostkey")
    pub = (tmp_path / "hostkey.pub").read_text().strip()
    fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "hostkey.pub")],
                        capture_output=True, text=True, check=True).stdout.split()[1]
    r = cli("servers", "add", "pinned", "--host", "198.51.100.9", "--host-key", f"198.51.100.9 {pub}", "--json")
    assert r.exit_code == 0, r.stderr
    server = r.json()["data"]["server"]
    assert (server["host_key_type"], server["host_key_fingerprint"]) == ("ssh-ed25519", fp)
    one_line_error(cli("servers", "edit", "pinned", "--host-key", "ssh-ed25519 not-base64!"), 2, "base64")
    one_line_error(cli("servers", "edit", "pinned", "--host-key", "ssh-rsa " + pub.split()[1]), 2, "not a ssh-rsa key")


def test_import_warns_about_a_missing_identity_file(cli, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host lost\n    HostName 198.51.100.5\n    IdentityFile {tmp_path / 'gone'}\n")
    r = cli("servers", "import", "--ssh-config", str(cfg))
    assert r.exit_code == 0 and "added lost" in r.stdout
    assert "IdentityFile" in r.stderr and "does not exist" in r.stderr


def test_up_front_host_key_is_verified_by_the_real_sshd(cli, sshd, tmp_path):
    good = f"{sshd.host_key_type} {sshd.host_key_base64}"
    keygen(tmp_path, "otherhost")
    wrong = (tmp_path / "otherhost.pub").read_text().strip()
    common = ["--host", sshd.host, "--port", str(sshd.port), "--user", sshd.user, "--key", str(sshd.client_key_path)]
    assert cli("servers", "add", "good", *common, "--host-key", good).exit_code == 0
    assert cli("servers", "add", "bad", *common, "--host-key", wrong).exit_code == 0
    r = cli("servers", "check", "good")
    assert r.exit_code == 0, r.stderr
    assert "first contact" not in r.stderr
    r = cli("servers", "check", "bad")
    assert r.exit_code == 5
    assert sshd.host_key_fingerprint in r.stdout + r.stderr
