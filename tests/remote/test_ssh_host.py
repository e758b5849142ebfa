"""SSHHost against the real OpenSSH sshd: output, stdin, host keys, faults, files, jump hosts."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest

from tests.sshd import SSHD, free_port, register_sshd
from vpsagent import errors
from vpsagent.remote.base import Host
from vpsagent.services.fleet import open_fleet, open_host
from vpsagent.services.servers import ServerSpec, add_server, show_server


@pytest.fixture
def host(ctx, ssh_server) -> Host:
    h = open_host(ctx, ssh_server)
    yield h
    h.close()


def test_streams_stay_apart_and_exit_status_is_reported(host: Host) -> None:
    assert isinstance(host, Host)
    seen_out: list[bytes] = []
    r = host.run("printf 'one\\ntwo\\n'; printf 'oops\\n' >&2; exit 7", on_stdout=seen_out.append)
    assert (r.exit_code, r.status, r.ok) == (7, "failed", False)
    assert r.stdout == b"one\ntwo\n" and b"".join(seen_out) == b"one\ntwo\n"
    assert r.stderr == b"oops\n"  # our pid line is not part of the command's stderr
    assert r.stdout_bytes == 8 and r.stderr_bytes == 5
    assert r.stdout_sha256 == hashlib.sha256(b"one\ntwo\n").hexdigest()
    ok = host.run("true")
    assert ok.ok and ok.exit_code == 0 and ok.stderr == b""


def test_local_stdin_is_never_forwarded_and_nothing_is_echoed(host: Host, capfd) -> None:
    # `cat` with our stdin would hang; it must see EOF at once
    r = host.run("cat; echo done", timeout=20)
    assert r.ok and r.stdout == b"done\n"
    r = host.run("echo to-stdout; echo to-stderr >&2")
    captured = capfd.readouterr()
    assert "to-stdout" not in captured.out and "to-stderr" not in captured.err
    assert r.stdout == b"to-stdout\n"


def test_one_connection_is_reused_by_every_command(ctx, ssh_server, sshd: SSHD) -> None:
    with open_fleet(ctx, [ssh_server]) as fleet:
        h = fleet.host(ssh_server)
        assert fleet.host(ssh_server) is h
        ports = {h.run("echo $SSH_CONNECTION").stdout.split()[1] for _ in range(5)}
    assert len(ports) == 1  # same client port: one TCP connection for all five


def test_first_contact_pins_the_host_key_and_says_so(ctx, settings, engine, keyring, sshd: SSHD) -> None:
    register_sshd(engine, keyring, sshd, "fresh", pin=False)
    assert show_server(engine, "fresh").host_key_fingerprint is None
    h = open_host(ctx, "fresh")
    try:
        assert h.run("true").ok
    finally:
        h.close()
    assert show_server(engine, "fresh").host_key_fingerprint == sshd.host_key_fingerprint
    said = [m for m in ctx.notes if "host key" in m]
    assert len(said) == 1 and sshd.host_key_fingerprint in said[0] and "pinned" in said[0]


def test_changed_host_key_is_refused_with_both_fingerprints(ctx, settings, engine, keyring, sshd: SSHD,
                                                            sshd_factory) -> None:
    other: SSHD = sshd_factory(["127.0.0.30"])  # a different host key
    register_sshd(engine, keyring, sshd, "moved", pin=False)
    from vpsagent.db.inventory import pin_host_key

    pin_host_key(engine, "moved", other.host_key_type, other.host_key_base64, other.host_key_fingerprint)
    h = open_host(ctx, "moved")
    with pytest.raises(errors.HostKeyMismatch) as ei:
        h.run("touch /tmp/vpsagent-must-not-run")
    msg = ei.value.line()
    assert other.host_key_fingerprint in msg and sshd.host_key_fingerprint in msg
    assert ei.value.exit_code == 5
    # the pinned key is untouched until the user asks
    assert show_server(engine, "moved").host_key_fingerprint == other.host_key_fingerprint
    h2 = open_host(ctx, "moved", replace_host_key=True)
    assert h2.run("true").ok
    h2.close()
    assert show_server(engine, "moved").host_key_fingerprint == sshd.host_key_fingerprint
    assert any("replaced" in m for m in ctx.notes)


def test_refused_port_is_unreachable_at_once(ctx, settings, engine, keyring, sshd: SSHD) -> None:
    port = free_port(["127.0.0.1"])
    add_server(ctx, ServerSpec(name="closed", host="127.0.0.1", port=port, user=sshd.user,
                                                   key_path=sshd.client_key_path))
    t0 = time.monotonic()
    with pytest.raises(errors.Unreachable, match="connection refused"):
        open_host(ctx, "closed").run("true")
    assert time.monotonic() - t0 < 5


def test_silent_server_is_unreachable_within_the_connect_timeout(ctx, settings, engine, keyring, sshd: SSHD) -> None:
    # accepts TCP but never speaks SSH: the banner never comes
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(5)
    try:
        add_server(ctx, ServerSpec(name="mute", host="127.0.0.1", port=lsock.getsockname()[1],
                                                       user=sshd.user, key_path=sshd.client_key_path))
        h = open_host(ctx, "mute", connect_timeout=1.0)
        t0 = time.monotonic()
        with pytest.raises(errors.Unreachable):
            h.run("true")
        assert time.monotonic() - t0 < 4
    finally:
        lsock.close()


def test_wrong_key_is_an_auth_failure(ctx, settings, engine, keyring, sshd: SSHD, tmp_path) -> None:
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    add_server(ctx, ServerSpec(name="badkey", host=sshd.host, port=sshd.port, user=sshd.user,
                                                   key_path=other))
    from vpsagent.db.inventory import pin_host_key

    pin_host_key(engine, "badkey", sshd.host_key_type, sshd.host_key_base64, sshd.host_key_fingerprint)
    with pytest.raises(errors.SSHAuthFailed) as ei:
        open_host(ctx, "badkey").run("true")
    assert ei.value.exit_code == 5 and "authentication failed" in ei.value.line()


def test_timeout_stops_the_remote_command(host: Host) -> None:
    t0 = time.monotonic()
    # 3 s: under CI's load a 1 s bound ended before the shell had even printed "started"
    r = host.run("echo started; sleep 31.4159; echo never", timeout=3)
    assert r.status == "timeout" and r.exit_code is None and not r.ok
    assert r.stdout == b"started\n"
    assert time.monotonic() - t0 < 25  # stopped at the bound, not after the 31 s sleep
    # the process group is gone on the server (the [p] keeps pgrep from matching itself)
    left = host.run("pgrep -f 'slee[p] 31.4159' || echo none")
    assert left.stdout == b"none\n"


def test_server_dying_mid_command_is_connection_lost(ctx, settings, engine, keyring, sshd_factory) -> None:
    s: SSHD = sshd_factory(["127.0.0.31"])
    register_sshd(engine, keyring, s, "doomed")
    h = open_host(ctx, "doomed")
    assert h.run("true").ok
    threading.Timer(0.7, s.kill_all).start()
    t0 = time.monotonic()
    r = h.run("echo before; sleep 20", timeout=30)
    assert r.status == "connection_lost" and r.exit_code is None
    assert r.stdout == b"before\n" and "connection lost" in r.error
    assert time.monotonic() - t0 < 10
    # the server comes back: the same Host reconnects for the next command
    s.start()
    assert h.run("echo back").stdout == b"back\n"
    h.close()


def test_large_output_streams_through_without_being_kept(host: Host) -> None:
    size = 16 * 1024 * 1024
    digest = hashlib.sha256()
    got = [0]

    def sink(chunk: bytes) -> None:
        got[0] += len(chunk)
        digest.update(chunk)

    r = host.run(f"yes 0123456789abcdef | head -c {size}", on_stdout=sink, capture=64 * 1024)
    expected = hashlib.sha256((b"0123456789abcdef\n" * (size // 17 + 1))[:size]).hexdigest()
    assert r.ok and got[0] == size and r.stdout_bytes == size
    assert digest.hexdigest() == expected == r.stdout_sha256
    assert r.stdout_truncated and len(r.stdout) < 70 * 1024


def test_200_mib_output_is_counted_and_hashed_exactly(host: Host) -> None:
    size = 200 * 1024 * 1024
    r = host.run(f"head -c {size} /dev/zero", capture=1024)
    assert r.ok and r.stdout_bytes == size
    h = hashlib.sha256()
    block = b"\0" * (1024 * 1024)
    for _ in range(200):
        h.update(block)
    assert r.stdout_sha256 == h.hexdigest()
    assert len(r.stdout) < 2048


def test_sudo_as_root_runs_the_command_directly(host: Host, sshd: SSHD) -> None:
    if sshd.user != "root":
        pytest.skip("checks a root login: the test sshd runs as this user, who is not root")
    r = host.run("id -u", sudo=True)
    assert r.ok and r.stdout == b"0\n"


def test_files_round_trip_over_sftp(host: Host, tmp_path) -> None:
    d = tmp_path / "srv"
    d.mkdir()
    target = d / "remote.conf"
    host.write_file(str(target), b"a = 1\n", mode=0o640)
    assert target.read_bytes() == b"a = 1\n" and (target.stat().st_mode & 0o777) == 0o640
    host.write_file(str(target), b"a = 2\n")  # keeps the mode
    assert (target.stat().st_mode & 0o777) == 0o640
    assert host.read_file(str(target)) == b"a = 2\n"
    assert host.read_file(str(target), max_bytes=3) == b"a ="
    with pytest.raises(errors.NotFound):
        host.read_file(str(d / "missing"))
    assert [p.name for p in d.iterdir()] == ["remote.conf"]  # no temp file left


def test_upload_streams_a_large_file_whole_or_not_at_all(host: Host, tmp_path) -> None:
    d = tmp_path / "up dir's"
    d.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk, not a multiple of it
    target = d / "release.tar.gz"
    host.upload(str(target), data)
    assert target.read_bytes() == data and (target.stat().st_mode & 0o777) == 0o600
    host.upload(str(target), b"v2", mode=0o640)  # replaces, with the mode asked for
    assert target.read_bytes() == b"v2" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in d.iterdir()] == ["release.tar.gz"]  # no temp file left
    with pytest.raises(errors.Failure) as exc:
        host.upload(str(d / "missing" / "x"), data)
    assert "upload of" in exc.value.message and "exit" in exc.value.message
    assert host.run("true").ok  # the connection is still good


def test_proxyjump_goes_through_the_jump_host(ctx, settings, engine, keyring, sshd: SSHD, sshd_factory) -> None:
    jump: SSHD = sshd_factory(["127.0.0.40"], log_level="DEBUG1")
    register_sshd(engine, keyring, jump, "bastion")
    register_sshd(engine, keyring, sshd, "inner", address="127.0.0.2", jump="bastion")
    h = open_host(ctx, "inner")
    try:
        r = h.run("echo $SSH_CONNECTION")
    finally:
        h.close()
    assert r.ok and r.stdout.split()[2] == b"127.0.0.2"
    assert f"127.0.0.2 port {sshd.port}" in jump.log()  # the jump host opened the forwarded channel


def test_keys_are_renegotiated_past_the_threshold_on_the_same_connection(ctx, ssh_server, monkeypatch) -> None:
    """paramiko#822: paramiko renegotiating keys just before the server closes a finished
    command's channel stalled the connection for 30 s and then killed it. The threshold is
    512 MiB; lowered here so that many real key exchanges happen within a few MiB."""
    import logging

    import paramiko

    monkeypatch.setattr(paramiko.Packetizer, "REKEY_BYTES", 128 * 1024)
    logged: list[str] = []

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    handler = Errors(level=logging.ERROR)
    logging.getLogger("paramiko").addHandler(handler)
    h = open_host(ctx, ssh_server)
    try:
        h.connect()
        transport = h._transport()
        exchanges = {transport.H}  # the exchange hash changes with every key exchange
        for i in range(40):
            r = h.run("head -c 20000 /dev/zero")
            assert r.ok and r.stdout_bytes == 20000, (i, r.error)
            exchanges.add(transport.H)
        big = h.run("head -c 3M /dev/zero")  # one command streaming past the threshold
        assert big.ok and big.stdout_bytes == 3 * 2**20
        h.upload("/tmp/vpsagent-rekey-test", b"x" * 300_000)
        assert h.read_file("/tmp/vpsagent-rekey-test") == b"x" * 300_000
        assert h.run("rm -f /tmp/vpsagent-rekey-test").ok
        exchanges.add(transport.H)
        assert h._transport() is transport and transport.is_active()  # never dropped and replaced
    finally:
        h.close()
        logging.getLogger("paramiko").removeHandler(handler)
    assert len(exchanges) >= 6  # keys were really renegotiated, several times
    assert logged == []  # no "Key-exchange timed out waiting for key negotiation"
