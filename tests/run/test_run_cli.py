"""`vpsagent run` end to end against the real sshd: streaming, fan-out, exit codes, audit rows."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from tests.sshd import SSHD, free_port, register_sshd
from vpsagent.db.audit import verify
from vpsagent.db.inventory import pin_host_key
from vpsagent.services.servers import ServerSpec, add_server


def history_rows(engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(text("SELECT * FROM command_history ORDER BY id")).mappings()]


@pytest.fixture
def fleet(engine, keyring, sshd: SSHD) -> list[str]:
    """Three servers t1..t3 on 127.0.0.1..3 (one sshd), tagged web."""
    return [register_sshd(engine, keyring, sshd, f"t{i}", address=f"127.0.0.{i}", tags=["web"])
            for i in (1, 2, 3)]


def test_one_server_streams_unchanged_and_exit_1_on_failure(cli, engine, ssh_server) -> None:
    r = cli("run", "-s", "t1", "printf 'a\\nb'; printf 'warn\\n' >&2; exit 3")
    assert r.exit_code == 1
    assert r.stdout == "a\nb"  # byte for byte, no prefix, no added newline
    assert "warn" in r.stderr and "exit status 3" in r.stderr
    [row] = history_rows(engine)
    assert (row["server"], row["status"], row["exit_code"], row["source"]) == ("t1", "failed", 3, "run")
    ok = cli("run", "-s", "t1", "--", "echo", "hello")
    assert ok.exit_code == 0 and ok.stdout == "hello\n"


def test_several_servers_prefix_lines_and_summarise(cli, engine, fleet) -> None:
    r = cli("run", "-t", "web", "echo line1; echo line2; hostname >/dev/null")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert sorted(lines) == sorted(f"{n} | line{i}" for n in fleet for i in (1, 2))
    assert "3 servers: 3 ok" in r.stderr
    assert {row["server"] for row in history_rows(engine)} == set(fleet)


def test_json_gives_one_result_per_server(cli, fleet) -> None:
    r = cli("run", "-s", "t1", "-s", "t2", "--json", 'echo "$SSH_CONNECTION" | cut -d" " -f3; exit 0')
    doc = r.json()
    assert r.exit_code == 0 and doc["ok"] and doc["exit_code"] == 0
    by = {s["server"]: s for s in doc["data"]["servers"]}
    assert by["t1"]["stdout"] == "127.0.0.1\n" and by["t2"]["stdout"] == "127.0.0.2\n"
    assert all(s["exit_code"] == 0 and s["duration_s"] >= 0 and s["error"] is None for s in by.values())


def test_unreachable_server_exit_5_and_others_finish(ctx, cli, engine, keyring, fleet, sshd: SSHD) -> None:
    add_server(ctx, ServerSpec(name="gone", host="127.0.0.1", port=free_port(["127.0.0.1"]),
                                                   user=sshd.user, key_path=sshd.client_key_path, tags=["web"]))
    r = cli("run", "-t", "web", "--json", "echo hi")
    doc = r.json()
    assert r.exit_code == 5 and doc["exit_code"] == 5
    by = {s["server"]: s for s in doc["data"]["servers"]}
    assert by["gone"]["status"] == "unreachable" and "connection refused" in by["gone"]["error"]
    assert all(by[n]["status"] == "ok" for n in fleet)
    one = cli("run", "-s", "gone", "true")
    assert one.exit_code == 5 and one.stdout == ""
    assert one.stderr.count("\n") == 1 and one.stderr.startswith("error: gone: connection refused")
    rows = [x for x in history_rows(engine) if x["server"] == "gone"]
    assert len(rows) == 2 and {x["status"] for x in rows} == {"error"}


def test_host_key_mismatch_exit_5_with_both_fingerprints(cli, engine, keyring, sshd: SSHD, sshd_factory) -> None:
    other: SSHD = sshd_factory(["127.0.0.32"])
    register_sshd(engine, keyring, sshd, "spoofed", pin=False)
    pin_host_key(engine, "spoofed", other.host_key_type, other.host_key_base64, other.host_key_fingerprint)
    r = cli("run", "-s", "spoofed", "touch /tmp/vpsagent-spoofed")
    assert r.exit_code == 5
    assert other.host_key_fingerprint in r.stderr and sshd.host_key_fingerprint in r.stderr
    assert not os.path.exists("/tmp/vpsagent-spoofed")


def test_timeout_is_a_failure_with_status_timeout(cli, engine, ssh_server) -> None:
    r = cli("run", "-s", "t1", "--timeout", "1", "--json", "sleep 27.18")
    s = r.json()["data"]["servers"][0]
    assert r.exit_code == 1 and s["status"] == "timeout" and s["exit_code"] is None
    assert history_rows(engine)[-1]["status"] == "timeout"


def test_max_fail_stops_starting_new_servers(cli, fleet) -> None:
    r = cli("run", "-t", "web", "--forks", "1", "--max-fail", "1", "--json", "exit 4")
    by = {s["server"]: s for s in r.json()["data"]["servers"]}
    assert r.exit_code == 1
    assert by["t1"]["status"] == "failed" and by["t1"]["exit_code"] == 4
    assert by["t2"]["status"] == by["t3"]["status"] == "skipped"


def test_serial_runs_one_batch_after_the_other(cli, fleet, tmp_path) -> None:
    # every command takes a lock directory for 0.3 s: overlapping servers would fail
    lock = tmp_path / "lock"
    cmd = f"mkdir {lock} || exit 9; sleep 0.3; rmdir {lock}"
    serial = cli("run", "-t", "web", "--serial", "1", "--json", cmd)
    assert serial.exit_code == 0, serial.stdout
    parallel = cli("run", "-t", "web", "--json", cmd)
    codes = sorted(s["exit_code"] for s in parallel.json()["data"]["servers"])
    assert parallel.exit_code == 1 and codes.count(9) == 2  # proves the first run was really serial


def test_bad_limits_are_usage_errors(cli, fleet) -> None:
    for args in (["--forks", "0"], ["--serial", "0"], ["--max-fail", "0"], ["--timeout", "-1"]):
        r = cli("run", "-t", "web", *args, "true")
        assert r.exit_code == 2, args
        assert r.stderr.startswith("error: ")
    r = cli("run", "true")
    assert r.exit_code == 2 and "choose servers" in r.stderr


def test_stored_key_material_never_reaches_the_audit_log(cli, engine, ssh_server, sshd: SSHD) -> None:
    key_text = sshd.client_key_path.read_text()
    r = cli("run", "-s", "t1", f"cat {sshd.client_key_path}")
    assert r.exit_code == 0 and r.stdout == key_text  # the user sees their own command's output
    row = history_rows(engine)[-1]
    body_lines = [ln for ln in key_text.splitlines() if "PRIVATE KEY" not in ln]
    assert body_lines and not any(ln in row["stdout_excerpt"] for ln in body_lines)
    assert "[REDACTED]" in row["stdout_excerpt"]


def test_server_killed_mid_command_in_a_fan_out(cli, engine, keyring, fleet, sshd_factory, tmp_path) -> None:
    doomed: SSHD = sshd_factory(["127.0.0.33"])
    register_sshd(engine, keyring, doomed, "doomed", tags=["web"])
    started = tmp_path / "started-on-doomed"

    def kill_once_started() -> None:
        # mid-command on the doomed server, however slow the machine is to get there
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let "start" reach the client
        doomed.kill_all()

    threading.Thread(target=kill_once_started, daemon=True).start()
    mark = f'case "$SSH_CONNECTION" in *" 127.0.0.33 "*) touch {started};; esac'
    r = cli("run", "-t", "web", "--json", f"echo start; {mark}; sleep 3; echo end")
    by = {s["server"]: s for s in r.json()["data"]["servers"]}
    assert r.exit_code == 5
    assert by["doomed"]["status"] == "connection_lost" and by["doomed"]["stdout"] == "start\n"
    assert all(by[n]["status"] == "ok" and by[n]["stdout"] == "start\nend\n" for n in fleet)
    row = [x for x in history_rows(engine) if x["server"] == "doomed"][-1]
    assert row["status"] == "connection_lost" and row["finished_at"] is not None
    assert verify(engine).ok


def test_16_mib_through_a_pipe_byte_exact(run_vpsagent, ssh_server) -> None:
    size = 16 * 1024 * 1024
    p = run_vpsagent("run", "-s", "t1", f"yes 0123456789abcdef | head -c {size}")
    assert p.returncode == 0, p.stderr[-500:]
    expected = (b"0123456789abcdef\n" * (size // 17 + 1))[:size]
    assert len(p.stdout) == size and hashlib.sha256(p.stdout).digest() == hashlib.sha256(expected).digest()


def _wait_for(pred, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("targets", [["-s", "t1"], ["-t", "web"]])
def test_ctrl_c_stops_commands_marks_rows_interrupted_exit_130(engine, fleet, home, targets) -> None:
    marker = "sleep 33.3"
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "run", *targets, "--json", f"echo go; {marker}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    n = 1 if targets[0] == "-s" else 3
    _wait_for(lambda: sum(1 for r in history_rows(engine) if r["status"] == "running") == n)
    _wait_for(lambda: subprocess.run(["pgrep", "-f", "^slee[p] 33[.]3$"], capture_output=True).stdout.count(b"\n") == n)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and doc["data"]["interrupted"] is True
    rows = history_rows(engine)
    assert len(rows) == n and {r["status"] for r in rows} == {"interrupted"}
    # the remote commands were stopped, not left behind
    _wait_for(lambda: subprocess.run(["pgrep", "-f", "^slee[p] 33[.]3$"], capture_output=True).returncode == 1,
              timeout=10)
    assert verify(engine).ok


def test_reader_going_away_stops_the_command_quietly(engine, ssh_server, home) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "run", "-s", "t1",
                             "echo first; sleep 0.5; yes | head -c 50000000; sleep 42.42"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    assert proc.stdout.read(6) == b"first\n"
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert proc.returncode == 141 and b"Traceback" not in err and err == b""
    [row] = history_rows(engine)
    assert row["status"] == "interrupted" and "reader" in row["error"]
    assert subprocess.run(["pgrep", "-f", "^slee[p] 42[.]42$"], capture_output=True).returncode == 1


def test_reader_going_away_in_a_fan_out(engine, fleet, home) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "run", "-t", "web",
                             "echo first; sleep 0.5; yes | head -c 20000000; sleep 43.43"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    line = proc.stdout.readline()
    assert line in (b"t1 | first\n", b"t2 | first\n", b"t3 | first\n")
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 141 and b"Traceback" not in err
    rows = history_rows(engine)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"interrupted"}
    _wait_for(lambda: subprocess.run(["pgrep", "-f", "^slee[p] 43[.]43$"], capture_output=True).returncode == 1,
              timeout=10)


@pytest.fixture
def mute_server():
    """A TCP port that accepts connections and never speaks SSH (a hung sshd, a tarpit)."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()
    for c in held:
        c.close()


def test_a_server_that_never_speaks_ssh_is_bounded_by_connect_timeout(ctx, cli, engine, sshd: SSHD,
                                                                      mute_server) -> None:
    add_server(ctx, ServerSpec(name="mute", host="127.0.0.1", port=mute_server, user=sshd.user,
                               key_path=sshd.client_key_path))
    r = cli("run", "-s", "mute", "--connect-timeout", "300ms", "true")
    assert r.exit_code == 5, r.stderr
    assert r.stderr.startswith("error: mute:") and "Traceback" not in r.stderr
    # the setting does the same for cron jobs that cannot pass a flag
    r2 = cli("run", "-s", "mute", "true", env={"VPSAGENT_CONNECT_TIMEOUT": "300ms"})
    assert r2.exit_code == 5
    bad = cli("run", "-s", "mute", "--connect-timeout", "inf", "true")
    assert bad.exit_code == 2 and "--connect-timeout" in bad.stderr
    assert [row["status"] for row in history_rows(engine)] == ["error", "error"]


def test_a_dead_jump_host_names_the_target_too(ctx, cli, engine, keyring, sshd: SSHD, mute_server) -> None:
    add_server(ctx, ServerSpec(name="bastion", host="127.0.0.1", port=mute_server, user=sshd.user,
                               key_path=sshd.client_key_path))
    register_sshd(engine, keyring, sshd, "inner", address="127.0.0.2", jump="bastion")
    r = cli("run", "-s", "inner", "--connect-timeout", "300ms", "true")
    assert r.exit_code == 5
    assert r.stderr.startswith("error: inner: via jump host bastion:"), r.stderr


def _locks(engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(text("SELECT * FROM server_locks")).mappings()]


def test_lock_busy_exits_75_naming_the_holder_and_runs_nothing(cli, engine, ssh_server, tmp_path) -> None:
    from vpsagent.db.locks import Lease

    cron = Lease(engine, [ssh_server], "vpsagent run by cron on box pid 1")  # this process: alive
    cron.acquire()
    try:
        r = cli("run", "-s", ssh_server, "--lock", "echo second")
        assert r.exit_code == 75, r.stderr
        assert r.stderr.startswith(f"error: {ssh_server} is locked by vpsagent run by cron on box pid 1 since")
        assert history_rows(engine) == []  # nothing ran
        doc = cli("run", "-s", ssh_server, "--lock", "--json", "true").json()
        assert doc["exit_code"] == 75 and doc["errors"][0]["code"] == "busy"
        plan = tmp_path / "p.yaml"
        plan.write_text(f"name: p\nservers: [{ssh_server}]\nsteps:\n  - run: 'true'\n")
        assert cli("test", "run", str(plan), "--lock").exit_code == 75
        # without --lock nobody waits for a lock (it is opt-in, for cron jobs that want it)
        assert cli("run", "-s", ssh_server, "true").exit_code == 0
    finally:
        cron.release()
    ok = cli("run", "-s", ssh_server, "--lock", "echo now")
    assert ok.exit_code == 0 and ok.stdout == "now\n"
    assert _locks(engine) == []  # released after the run


def test_lock_wait_waits_for_the_holder(cli, engine, ssh_server) -> None:
    from vpsagent.db.locks import Lease

    other = Lease(engine, [ssh_server], "another run")
    other.acquire()
    threading.Timer(0.5, other.release).start()
    r = cli("run", "-s", ssh_server, "--lock-wait", "60s", "echo after")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "after\n"
    bad = cli("run", "-s", ssh_server, "--lock-wait", "nan", "true")
    assert bad.exit_code == 2 and "--lock-wait" in bad.stderr


def test_stale_locks_do_not_block(cli, engine, ssh_server) -> None:
    import socket
    from datetime import UTC, datetime, timedelta

    from vpsagent.db.tables import server_locks as t

    dead = subprocess.Popen(["true"])
    dead.wait()
    now = datetime.now(UTC)
    with engine.begin() as c:  # a holder on this machine whose process is gone
        c.execute(t.insert().values(server=ssh_server, holder="killed run", hostname=socket.gethostname(),
                                    pid=dead.pid, created_at=now, expires_at=now + timedelta(hours=1)))
    assert cli("run", "-s", ssh_server, "--lock", "true").exit_code == 0
    with engine.begin() as c:  # a holder elsewhere that stopped renewing its lease
        c.execute(t.insert().values(server=ssh_server, holder="gone elsewhere", hostname="other-box",
                                    pid=1, created_at=now - timedelta(hours=1), expires_at=now - timedelta(seconds=1)))
    assert cli("run", "-s", ssh_server, "--lock", "true").exit_code == 0
    assert _locks(engine) == []


def test_test_run_and_ask_take_connect_timeout_too(ctx, cli, engine, sshd: SSHD, mute_server, tmp_path,
                                                   anthropic_api) -> None:
    from tests.fakes.anthropic_api import text as reply_text
    from tests.fakes.anthropic_api import tool_use

    add_server(ctx, ServerSpec(name="mute", host="127.0.0.1", port=mute_server, user=sshd.user,
                               key_path=sshd.client_key_path))
    plan = tmp_path / "p.yaml"
    plan.write_text("name: p\nservers: [mute]\nsteps:\n  - run: 'true'\n")
    r = cli("test", "run", str(plan), "--connect-timeout", "300ms", "--format", "json")
    assert r.exit_code == 5, r.stdout + r.stderr
    anthropic_api.push(tool_use("run_command", {"server": "mute", "command": "uptime"}, id="toolu_m"),
                       reply_text("mute did not answer"))
    a = cli("ask", "--json", "-s", "mute", "--connect-timeout", "300ms", "uptime?")
    assert a.exit_code == 5, a.stdout + a.stderr
    assert [e["code"] for e in a.json()["errors"]] == ["unreachable"]
