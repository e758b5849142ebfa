"""`vpsagent cp` against the real sshd (the test server is this machine, so both sides are
checked directly): both directions, modes, -r with an empty directory, audit, bad input."""

from __future__ import annotations

import os
from pathlib import Path


def test_upload_and_download_keep_bytes_and_modes(cli, ssh_server, tmp_path: Path) -> None:
    src = tmp_path / "tool.sh"
    src.write_bytes(b"#!/bin/sh\n" + os.urandom(300_000))
    src.chmod(0o751)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    r = cli("cp", str(src), f"t1:{remote_dir}")
    assert r.exit_code == 0, r.stderr
    assert (remote_dir / "tool.sh").read_bytes() == src.read_bytes()
    assert (remote_dir / "tool.sh").stat().st_mode & 0o7777 == 0o751
    back = tmp_path / "back.sh"
    r = cli("cp", f"t1:{remote_dir / 'tool.sh'}", str(back), "--json")
    assert r.exit_code == 0, r.stderr
    data = r.json()["data"]
    assert (data["direction"], data["files"], data["bytes"]) == ("download", 1, src.stat().st_size)
    assert back.read_bytes() == src.read_bytes() and back.stat().st_mode & 0o7777 == 0o751
    rows = cli("history", "--source", "cp", "--json").json()["data"]["entries"]
    assert [(r["server"], r["status"]) for r in rows] == [("t1", "ok"), ("t1", "ok")]
    assert str(remote_dir) in rows[-1]["command"]


def test_recursive_copy_makes_a_copy_of_the_tree(cli, ssh_server, tmp_path: Path) -> None:
    src = tmp_path / "site"
    (src / "empty").mkdir(parents=True)
    (src / "sub").mkdir()
    (src / "sub" / "a b.txt").write_text("spaced\n")
    dest = tmp_path / "copy"
    assert cli("cp", str(src), f"t1:{dest}").exit_code == 2  # a directory needs -r
    assert not dest.exists()
    r = cli("cp", "-r", str(src), f"t1:{dest}")
    assert r.exit_code == 0, r.stderr
    assert (dest / "empty").is_dir() and (dest / "sub" / "a b.txt").read_text() == "spaced\n"
    down = tmp_path / "down"
    assert cli("cp", "-r", f"t1:{dest}", str(down)).exit_code == 0
    assert sorted(p.relative_to(down).as_posix() for p in down.rglob("*")) == [
        "empty", "sub", "sub/a b.txt"]


def test_bad_input_and_a_missing_file_are_one_line(cli, ssh_server, tmp_path: Path) -> None:
    for args, code, needle in (
        (["cp", "a", "b"], 2, "neither side names a server"),
        (["cp", "t1:a", "t1:b"], 2, "both sides"),
        (["cp", "nosuch:/x", str(tmp_path)], 2, "nosuch"),
        (["cp", "local:/etc/hostname", str(tmp_path)], 2, "this machine"),
        (["cp", f"t1:{tmp_path / 'missing.txt'}", str(tmp_path / "m")], 2, "missing.txt"),
    ):
        r = cli(*args)
        assert r.exit_code == code, (args, r.stderr)
        assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "m").exists()
    rows = cli("history", "--source", "cp", "--json").json()["data"]["entries"]
    assert rows and rows[0]["status"] == "failed"


def test_ctrl_c_completes_the_audit_row_as_interrupted(ssh_server, home, cli, tmp_path: Path) -> None:  # noqa: ANN001
    import signal
    import subprocess
    import sys
    import time

    fifo = tmp_path / "never-ending"
    os.mkfifo(fifo)  # the upload reads it and waits: a copy still in progress
    writer = os.open(fifo, os.O_RDWR)  # a writer that never writes keeps the reader waiting
    try:
        p = subprocess.Popen([sys.executable, "-m", "vpsagent", "cp", str(fifo), f"t1:{tmp_path / 'x'}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not cli("history", "--source", "cp", "--json").json()["data"]["entries"]:
                assert time.monotonic() < deadline, "the copy never started"
                time.sleep(0.1)
            p.send_signal(signal.SIGINT)
            assert p.wait(timeout=30) == 130
        finally:
            if p.poll() is None:
                p.kill()
    finally:
        os.close(writer)
    (row,) = cli("history", "--source", "cp", "--json").json()["data"]["entries"]
    # completed by the copy itself (not reaped later by `history` as a process that died)
    assert (row["status"], row["error"]) == ("interrupted", "interrupted (Ctrl-C)")


def test_sftps_bare_failures_are_said_in_words(cli, ssh_server, tmp_path: Path) -> None:
    """A missing directory written as `dir/` and a file the server cannot keep (procfs): not
    SFTP's bare "Failure" or paramiko's "size mismatch in put!" (a new-user walkthrough)."""
    f = tmp_path / "f.txt"
    f.write_text("hello\n")
    r = cli("cp", str(f), f"t1:{tmp_path / 'nodir'}/")
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith(f"error: {tmp_path / 'nodir'}/: no such directory on the server")
    assert "Failure" not in r.stderr and not (tmp_path / "nodir").exists()
    r = cli("cp", str(f), "t1:/proc/version")
    assert r.exit_code == 1, r.stderr
    assert "size mismatch" not in r.stderr and "Failure" not in r.stderr
    assert r.stderr.startswith("error: /proc/version: ") and r.stderr.count("\n") <= 2, r.stderr
