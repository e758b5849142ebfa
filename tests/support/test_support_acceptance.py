"""Acceptance tests for issue 13, written from the issue text alone by someone who had not read the implementation.

`vpsagent support`: collectors -> analyzers -> (optionally) an AI diagnosis, a `--collect-only`
bundle, `support list/show`, and `test run --explain` starting from the same evidence.

Everything here goes through the command line (`cli` in-process, `run_vpsagent` as a real
subprocess), the real test sshd (`t1`), the built-in `local` server and the scripted Messages
API. Only 127.0.0.1 is ever contacted; files are written only under the test's tmp_path.

Assumptions shared by several tests (each test repeats the ones it relies on beyond these):
- A1: a server entry in `data.servers[]` carries its name under "name" (or "server").
- A2: the test sshd logs in as the same user as the test process, so files under tmp_path
  are readable through `t1` (and through other servers registered on the same sshd).
- A3: `servers add NAME --host --port --user --key` followed by `servers check NAME`
  registers and pins a second server on the same sshd without a prompt.
- A4: `--set` may be given several times, `--since` takes values like `2h`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_api import overloaded, text, tool_use

COLLECTOR_IDS = [
    "os", "uptime", "cpu", "memory", "disks", "inodes", "mounts", "failed_units", "log_errors",
    "oom", "top_processes", "listening", "reboots", "time_sync", "updates", "tls_certs", "nginx",
    "apache", "docker", "postgresql", "mysql",
]
FINDING_IDS = {
    "disk_full", "inodes_full", "memory_pressure", "oom_kills", "high_load", "failed_units",
    "error_burst", "clock_unsynced", "cert_expiring", "not_listening", "readonly_fs", "tmp_full",
    "reboot_required",
}
SEVERITIES = {"critical", "warning", "info"}


# --------------------------------------------------------------------------- helpers


def _support(cli, *args: str, code: int = 0, input: str | None = None) -> dict[str, Any]:
    """Run `support ... --json`, check the exit code, return the whole envelope."""
    r = cli("support", *args, "--json", input=input)
    assert r.exit_code == code, f"exit {r.exit_code} (wanted {code})\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}"
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


def _walk(obj: Any):
    """Every (key, value) of every dict, recursively."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for x in obj:
            yield from _walk(x)


def _dicts(obj: Any):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _dicts(v)
    elif isinstance(obj, list):
        for x in obj:
            yield from _dicts(x)


def _strings(obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            out.extend(_strings(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_strings(v))
    return out


def _server_name(s: dict[str, Any]) -> str:
    # A1
    return str(s.get("name") or s.get("server"))


def _servers(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {_server_name(s): s for s in data["servers"]}


def _collectors(server: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in server["collectors"]}


def _findings(data: dict[str, Any], fid: str | None = None, server: str | None = None) -> list[dict[str, Any]]:
    return [f for f in data["findings"]
            if (fid is None or f["id"] == fid) and (server is None or f["server"] == server)]


def _finding_text(f: dict[str, Any]) -> str:
    return str(f.get("title", "")) + "\n" + "\n".join(str(e) for e in f.get("evidence", []))


_STATUS_KEYS = ("status", "state", "result", "outcome", "error", "reason")


def _timed_out(c: dict[str, Any]) -> bool:
    # Assumption: "timed out" shows as a true boolean whose key mentions time (timed_out,
    # timeout) or as a status-like string value saying timeout / timed out.
    for k, v in c.items():
        kl = k.lower()
        if v is True and ("timed" in kl or "timeout" in kl):
            return True
        if isinstance(v, str) and any(s in kl for s in _STATUS_KEYS):
            vl = v.lower().replace("_", " ").replace("-", " ")
            if "timeout" in vl or "timed out" in vl:
                return True
    return False


def _skipped(c: dict[str, Any]) -> bool:
    # Assumption: "skipped" shows as a true boolean key `skipped` or a status-like value "skipped".
    for k, v in c.items():
        kl = k.lower()
        if v is True and "skip" in kl:
            return True
        if isinstance(v, str) and any(s in kl for s in _STATUS_KEYS) and v.lower().startswith("skip"):
            return True
    return False


def _df_rows() -> list[tuple[str, int, str]]:
    """(device, percent used, mount point) of every filesystem `df -P` shows on this machine."""
    out = subprocess.run(["df", "-P"], capture_output=True, text=True, check=False).stdout
    rows = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[4].endswith("%") and parts[4][:-1].isdigit():
            rows.append((parts[0], int(parts[4][:-1]), parts[5]))
    return rows


def _is_df_line(line: str, rows: list[tuple[str, int, str]]) -> bool:
    tokens = line.replace(",", " ").split()
    pcts = [int(t[:-1]) for t in (t.strip("():") for t in tokens) if t.endswith("%") and t[:-1].isdigit()]
    for device, pct, mount in rows:
        if (device in tokens or mount in tokens) and any(abs(p - pct) <= 1 for p in pcts):
            return True
    return False


def _error_lines_syslog(marker: str, newest: datetime, n: int = 12) -> list[str]:
    return [f"{(newest - timedelta(seconds=20 * i)).strftime('%b %d %H:%M:%S')} accepthost "
            f"webapp[{4000 + i}]: ERROR request failed: upstream error {marker} #{i}" for i in range(n)]


def _error_lines_iso(marker: str, newest: datetime, n: int = 12) -> list[str]:
    return [f"{(newest - timedelta(seconds=20 * i)).isoformat(timespec='seconds')} accepthost "
            f"webapp[{4000 + i}]: ERROR request failed: upstream error {marker} #{i}" for i in range(n)]


def _write_log(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # oldest first, as a log file grows
    path.write_text("\n".join(reversed(lines)) + "\n")
    return path


def _log_args(path: Path | str) -> list[str]:
    return ["--since", "2h", "--set", f"log_files={path}", "--set", "error_burst=3"]


def _add_same_sshd(cli, sshd, name: str, *extra: str, input: str | None = None) -> None:
    # A3
    r = cli("servers", "add", name, "--host", sshd.host, "--port", str(sshd.port), "--user", sshd.user,
            "--key", str(sshd.client_key_path), *extra, input=input)
    assert r.exit_code == 0, r.stderr
    r = cli("servers", "check", name)
    assert r.exit_code == 0, r.stderr


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _history_rows(cli, grep: str) -> list[dict[str, Any]]:
    # Assumption: `history --json` lists rows as objects with a "command" string and a
    # "decision" (or *decision*) string such as allow / deny.
    r = cli("history", "--source", "support", "--grep", grep, "--limit", "0", "--json")
    assert r.exit_code == 0, r.stderr
    return [d for d in _dicts(r.json()["data"]) if isinstance(d.get("command"), str)]


def _decision(row: dict[str, Any]) -> str:
    for k, v in row.items():
        if "decision" in k.lower() and isinstance(v, str):
            return v.lower()
    return ""


def _tool_result(api, tool_id: str) -> dict[str, Any]:
    for req in api.requests:
        for msg in req.get("messages") or []:
            if msg.get("role") == "user" and isinstance(msg.get("content"), list):
                for b in msg["content"]:
                    if b.get("type") == "tool_result" and b.get("tool_use_id") == tool_id:
                        return b
    raise AssertionError(f"no tool_result for {tool_id} was sent to the model")


def _request_strings(req: dict[str, Any]) -> str:
    return "\n".join(_strings(req))


# -- a TLS listener on 127.0.0.1 with a certificate of our making


def _make_cert(dirpath: Path, days: int) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    dirpath.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = dirpath / f"cert-{days}d.pem", dirpath / f"key-{days}d.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


class _TlsListener:
    """Accepts on 127.0.0.1:<free port>, completes a TLS handshake, reads until EOF, closes."""

    def __init__(self, certfile: Path, keyfile: Path):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(certfile), str(keyfile))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="accept-tls")

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                try:
                    tls.recv(1024)
                except (ssl.SSLError, OSError):
                    pass
        except (ssl.SSLError, OSError):
            pass
        finally:
            conn.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def __enter__(self) -> _TlsListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


# -- bundles


def _extract(bundle: Path, dest: Path) -> Path:
    """Extract safely; return the directory holding manifest.json."""
    with tarfile.open(bundle, "r:gz") as tf:
        for name in tf.getnames():
            assert not name.startswith("/") and ".." not in Path(name).parts, f"unsafe member {name!r}"
        tf.extractall(dest, filter="data")
    if (dest / "manifest.json").is_file():
        return dest
    # Assumption: the layout may sit under one top-level directory of the archive.
    tops = [p for p in dest.iterdir() if (p / "manifest.json").is_file()]
    assert len(tops) == 1, f"no manifest.json in the bundle: {sorted(str(p) for p in dest.rglob('*'))}"
    return tops[0]


def _host_names(manifest: dict[str, Any]) -> list[str]:
    # Assumption: manifest hosts are names, or objects with a "name" (or "server").
    return [h if isinstance(h, str) else str(h.get("name") or h.get("server")) for h in manifest["hosts"]]


def _findings_list(obj: Any) -> list[dict[str, Any]]:
    # Assumption: findings.json is the list of findings or an object with "findings".
    return obj if isinstance(obj, list) else obj["findings"]


# --------------------------------------------------------------------------- end to end, no AI


def test_no_ai_on_local_gives_the_json_envelope_with_exit_0(cli):
    doc = _support(cli, "--no-ai", "-s", "local")
    assert doc["vpsagent"] == 1
    assert doc["command"] == "support"
    assert doc["ok"] is True and doc["exit_code"] == 0
    assert doc["errors"] == []
    assert isinstance(doc["data"]["findings"], list)


def test_every_collector_is_reported_with_id_exit_code_bytes_truncated(cli):
    data = _support(cli, "--no-ai", "-s", "local")["data"]
    servers = _servers(data)
    assert list(servers) == ["local"]
    cols = _collectors(servers["local"])
    assert set(COLLECTOR_IDS) <= set(cols), f"missing collectors: {set(COLLECTOR_IDS) - set(cols)}"
    for cid, c in cols.items():
        assert isinstance(c["id"], str)
        assert c["exit_code"] is None or isinstance(c["exit_code"], int), (cid, c)
        assert isinstance(c["bytes"], int) and c["bytes"] >= 0, (cid, c)
        assert isinstance(c["truncated"], bool), (cid, c)


def test_basic_collectors_produce_output_on_local(cli):
    cols = _collectors(_servers(_support(cli, "--no-ai", "-s", "local")["data"])["local"])
    for cid in ("os", "uptime", "memory", "disks"):
        assert cols[cid]["exit_code"] == 0, cols[cid]
        assert cols[cid]["bytes"] > 0, cols[cid]
        assert not _timed_out(cols[cid]) and not _skipped(cols[cid]), cols[cid]


def test_collectors_run_over_the_real_sshd(cli, ssh_server):
    data = _support(cli, "--no-ai", "-s", ssh_server)["data"]
    servers = _servers(data)
    assert list(servers) == [ssh_server]
    cols = _collectors(servers[ssh_server])
    assert set(COLLECTOR_IDS) <= set(cols)
    for cid in ("os", "uptime", "memory", "disks"):
        assert cols[cid]["exit_code"] == 0, cols[cid]
        assert cols[cid]["bytes"] > 0, cols[cid]
    assert all(f["server"] == ssh_server for f in data["findings"])


def test_collectors_that_do_not_apply_are_skipped_not_failed(cli):
    # Assumption: the nginx and apache collectors apply only when their binaries are present.
    absent = [cid for cid, binaries in (("nginx", ["nginx"]), ("apache", ["apache2", "httpd", "apachectl"]))
              if not any(shutil.which(b) for b in binaries)]
    if not absent:
        pytest.skip("nginx and apache are both installed on this machine")
    cols = _collectors(_servers(_support(cli, "--no-ai", "-s", "local")["data"])["local"])
    for cid in absent:
        assert _skipped(cols[cid]), f"{cid} should be reported as skipped: {cols[cid]}"


def test_failed_units_on_a_server_without_systemd_is_not_a_failure(cli):
    # Assumption: "not a failure" = reported skipped, or run (the init system's equivalent) with exit 0.
    if Path("/run/systemd/system").exists():
        pytest.skip("this machine runs systemd")
    data = _support(cli, "--no-ai", "-s", "local")["data"]
    c = _collectors(_servers(data)["local"])["failed_units"]
    assert _skipped(c) or c["exit_code"] == 0, c
    assert not _findings(data, "failed_units", "local")


def test_no_ai_sends_nothing_to_the_model_even_with_a_key(anthropic_api, cli):
    doc = _support(cli, "--no-ai", "-s", "local")
    assert doc["ok"] is True
    assert anthropic_api.requests == []
    assert not doc["data"].get("answer")


def test_without_an_api_key_support_still_reports_findings(cli):
    # Assumption (issue item 3: the AI step runs "when an API key is set"): without a key,
    # support without --no-ai still collects and analyzes, and exits 0.
    doc = _support(cli, "-s", "local", "--set", "disk_percent=1")
    assert _findings(doc["data"], "disk_full", "local")


def test_support_as_a_real_subprocess(run_vpsagent):
    p = run_vpsagent("support", "--no-ai", "-s", "local", "--json", "--set", "disk_percent=1")
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    doc = json.loads(p.stdout)
    assert doc["ok"] is True and doc["command"] == "support"
    assert _findings(doc["data"], "disk_full", "local")


def test_findings_have_server_id_severity_title_and_evidence(cli):
    data = _support(cli, "--no-ai", "-s", "local", "--set", "disk_percent=1")["data"]
    assert data["findings"], "a 1% disk threshold must produce at least one finding"
    for f in data["findings"]:
        assert f["server"] == "local"
        assert f["id"] in FINDING_IDS, f
        assert f["severity"] in SEVERITIES, f
        assert isinstance(f["title"], str) and f["title"].strip() and "\n" not in f["title"].strip(), f
        assert isinstance(f["evidence"], list) and f["evidence"], f
        assert all(isinstance(e, str) for e in f["evidence"]), f


def test_text_output_is_plain_and_lists_the_finding_titles(cli):
    data = _support(cli, "--no-ai", "-s", "local", "--set", "disk_percent=1")["data"]
    title = _findings(data, "disk_full", "local")[0]["title"]
    r = cli("support", "--no-ai", "-s", "local", "--set", "disk_percent=1")
    assert r.exit_code == 0, r.stderr
    assert title in r.stdout
    assert "\x1b[" not in r.stdout, "not a terminal: no colour codes"


# --------------------------------------------------------------------------- disk threshold


def test_disk_threshold_below_real_use_gives_disk_full_with_df_evidence(cli):
    rows = [r for r in _df_rows() if r[1] >= 2]
    if not rows:
        pytest.skip("no filesystem on this machine is at least 2% used")
    data = _support(cli, "--no-ai", "-s", "local", "--set", "disk_percent=1")["data"]
    found = _findings(data, "disk_full", "local")
    assert found, data["findings"]
    f = found[0]
    # the evidence names the collector it rests on (or the finding does, as a field)
    assert "disks" in "\n".join(f["evidence"]) or "disks" in f.values(), f
    assert any(_is_df_line(line, rows) for line in f["evidence"]), f"no df line in {f['evidence']}"


def test_disk_threshold_applies_over_ssh_too(cli, ssh_server):
    data = _support(cli, "--no-ai", "-s", ssh_server, "--set", "disk_percent=1")["data"]
    f = _findings(data, "disk_full", ssh_server)
    assert f and f[0]["severity"] in SEVERITIES


def test_default_disk_threshold_gives_no_disk_full_on_a_healthy_machine(cli):
    if any(pct >= 80 for _, pct, _ in _df_rows()):
        pytest.skip("a filesystem on this machine is at least 80% full")
    data = _support(cli, "--no-ai", "-s", "local")["data"]
    assert not _findings(data, "disk_full"), data["findings"]


# --------------------------------------------------------------------------- error bursts in logs


def test_syslog_error_burst_inside_the_window_gives_error_burst(cli, tmp_path):
    marker = "burst-" + uuid.uuid4().hex[:10]
    log = _write_log(tmp_path / "logs" / "app.log", _error_lines_syslog(marker, datetime.now() - timedelta(minutes=1)))
    data = _support(cli, "--no-ai", "-s", "local", *_log_args(log))["data"]
    hits = [f for f in _findings(data, "error_burst", "local") if marker in _finding_text(f) or str(log) in _finding_text(f)]
    assert hits, data["findings"]


def test_iso_timestamp_error_burst_inside_the_window_gives_error_burst(cli, tmp_path):
    marker = "burst-" + uuid.uuid4().hex[:10]
    newest = datetime.now().astimezone() - timedelta(minutes=1)
    log = _write_log(tmp_path / "logs" / "app-iso.log", _error_lines_iso(marker, newest))
    data = _support(cli, "--no-ai", "-s", "local", *_log_args(log))["data"]
    hits = [f for f in _findings(data, "error_burst", "local") if marker in _finding_text(f) or str(log) in _finding_text(f)]
    assert hits, data["findings"]


def test_syslog_errors_older_than_since_give_no_error_burst(cli, tmp_path):
    marker = "old-" + uuid.uuid4().hex[:10]
    log = _write_log(tmp_path / "logs" / "old.log", _error_lines_syslog(marker, datetime.now() - timedelta(hours=10)))
    data = _support(cli, "--no-ai", "-s", "local", *_log_args(log))["data"]
    hits = [f for f in _findings(data, "error_burst") if marker in _finding_text(f) or str(log) in _finding_text(f)]
    assert not hits, hits


def test_iso_errors_older_than_since_give_no_error_burst(cli, tmp_path):
    marker = "old-" + uuid.uuid4().hex[:10]
    newest = datetime.now().astimezone() - timedelta(hours=10)
    log = _write_log(tmp_path / "logs" / "old-iso.log", _error_lines_iso(marker, newest))
    data = _support(cli, "--no-ai", "-s", "local", *_log_args(log))["data"]
    hits = [f for f in _findings(data, "error_burst") if marker in _finding_text(f) or str(log) in _finding_text(f)]
    assert not hits, hits


# --------------------------------------------------------------------------- TLS certificates


def test_certificate_expiring_in_3_days_gives_cert_expiring_naming_the_port(cli, tmp_path):
    # Assumption: tls_certs probes the TLS listeners among this machine's listening sockets
    # (loopback included) with the openssl command line tool.
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed on this machine")
    certfile, keyfile = _make_cert(tmp_path / "tls", days=3)
    with _TlsListener(certfile, keyfile) as tls:
        # a generous probe bound: under CI's parallel load (load 45) a 2 s handshake was missed
        data = _support(cli, "--no-ai", "-s", "local", "--set", "cert_days=14",
                        "--set", "tls_probe_timeout=15")["data"]
    hits = [f for f in _findings(data, "cert_expiring", "local") if str(tls.port) in _finding_text(f)]
    assert hits, data["findings"]


def test_certificate_valid_for_a_year_gives_no_cert_expiring(cli, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed on this machine")
    certfile, keyfile = _make_cert(tmp_path / "tls", days=365)
    with _TlsListener(certfile, keyfile) as tls:
        data = _support(cli, "--no-ai", "-s", "local", "--set", "cert_days=14")["data"]
    hits = [f for f in _findings(data, "cert_expiring") if str(tls.port) in _finding_text(f)]
    assert not hits, hits


# --------------------------------------------------------------------------- collector timeouts


def test_a_tiny_collector_timeout_is_reported_and_the_run_still_completes(cli):
    # Assumption: timeouts are not failures of the command (exit 0 or 1, never 2/5), and every
    # collector still gets its entry.
    r = cli("support", "--no-ai", "-s", "local", "--set", "collector_timeout=0.01", "--json")
    assert r.exit_code in (0, 1), r.stderr
    doc = r.json()
    cols = _collectors(_servers(doc["data"])["local"])
    assert set(COLLECTOR_IDS) <= set(cols)
    assert any(_timed_out(c) for c in cols.values()), cols


def test_a_collector_that_hangs_times_out_without_stopping_the_others(run_vpsagent, tmp_path):
    # Assumption: log_errors reads every readable entry of log_files; a FIFO nobody writes to
    # makes that read block, so only log_errors runs into collector_timeout.
    fifo = tmp_path / "hang.fifo"
    os.mkfifo(fifo)
    try:
        p = run_vpsagent("support", "--no-ai", "-s", "local", "--json", "--set", f"log_files={fifo}",
                         "--set", "collector_timeout=8", timeout=120)  # 1.5 s cut healthy collectors at load 45
    finally:
        # release any reader still blocked on the FIFO (one started by this test, via vpsagent)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    assert p.returncode in (0, 1), p.stderr.decode(errors="replace")
    cols = _collectors(_servers(json.loads(p.stdout)["data"])["local"])
    assert _timed_out(cols["log_errors"]), cols["log_errors"]
    for cid in ("os", "disks", "memory"):
        assert cols[cid]["exit_code"] == 0 and cols[cid]["bytes"] > 0, cols[cid]
        assert not _timed_out(cols[cid]), cols[cid]


# --------------------------------------------------------------------------- several servers


def test_several_servers_each_get_collectors_and_findings(cli, ssh_server):
    data = _support(cli, "--no-ai", "-s", "local", "-s", ssh_server, "--set", "disk_percent=1")["data"]
    servers = _servers(data)
    assert set(servers) == {"local", ssh_server}
    for name in servers:
        assert set(COLLECTOR_IDS) <= set(_collectors(servers[name]))
        assert _findings(data, "disk_full", name), f"no disk_full for {name}"


def test_a_tag_selects_the_tagged_servers(cli, sshd, ssh_server):
    _add_same_sshd(cli, sshd, "t2", "-t", "accepttag")
    data = _support(cli, "--no-ai", "-t", "accepttag")["data"]
    assert set(_servers(data)) == {"t2"}
    assert _collectors(_servers(data)["t2"])["os"]["exit_code"] == 0


def test_a_finding_on_only_one_server_is_called_out(cli, ssh_server, tmp_path, monkeypatch):
    # local and t1 are the same machine. Assumption: `local` runs collectors in vpsagent's
    # working directory while an SSH session starts in the login user's home directory, so a
    # relative log_files entry resolves on local only. If nothing differs, the test skips.
    # Assumption: the call-out ("only NAME has…" / "only on NAME") is on stdout with the findings.
    work = tmp_path / "cwd"
    marker = "only-" + uuid.uuid4().hex[:10]
    _write_log(work / "acceptlogs" / "app.log", _error_lines_syslog(marker, datetime.now() - timedelta(minutes=1)))
    monkeypatch.chdir(work)
    args = ["--no-ai", "-s", "local", "-s", ssh_server, *_log_args("acceptlogs/app.log")]
    data = _support(cli, *args)["data"]
    by_id: dict[str, set[str]] = {}
    for f in data["findings"]:
        by_id.setdefault(f["id"], set()).add(f["server"])
    singles = {fid: s for fid, s in by_id.items() if len(s) == 1}
    if not singles:
        pytest.skip("local and t1 gave the same finding ids; nothing to call out")
    only = next(iter(singles.get("error_burst") or next(iter(singles.values()))))
    r = cli("support", *args)
    assert r.exit_code == 0, r.stderr
    assert re.search(rf"\bonly\s+(on\s+)?{re.escape(only)}\b", r.stdout, re.IGNORECASE), r.stdout


def test_unreachable_server_exits_5_with_one_error_line(cli, sshd):
    port = _closed_port()
    r = cli("servers", "add", "dead", "--host", "127.0.0.1", "--port", str(port), "--user", sshd.user,
            "--key", str(sshd.client_key_path))
    assert r.exit_code == 0, r.stderr
    r = cli("support", "--no-ai", "-s", "dead")
    assert r.exit_code == 5, (r.stdout, r.stderr)
    assert "dead" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_server_does_not_hide_the_good_servers_findings(cli, sshd):
    port = _closed_port()
    r = cli("servers", "add", "dead", "--host", "127.0.0.1", "--port", str(port), "--user", sshd.user,
            "--key", str(sshd.client_key_path))
    assert r.exit_code == 0, r.stderr
    doc = _support(cli, "--no-ai", "-s", "local", "-s", "dead", "--set", "disk_percent=1", code=5)
    assert doc["ok"] is False and doc["exit_code"] == 5
    assert _findings(doc["data"], "disk_full", "local"), doc["data"].get("findings")
    assert "dead" in json.dumps(doc["errors"]) + json.dumps(doc["data"].get("servers", []))


# --------------------------------------------------------------------------- bad input


def test_unknown_server_exits_2_with_one_line(cli):
    r = cli("support", "--no-ai", "-s", "nosuchserver")
    assert r.exit_code == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "nosuchserver" in lines[0]
    assert r.stdout == ""


def test_unknown_server_with_json_gives_the_error_envelope(cli):
    doc = _support(cli, "--no-ai", "-s", "nosuchserver", code=2)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["command"] == "support"
    assert doc["errors"] and doc["errors"][0]["code"] and "nosuchserver" in doc["errors"][0]["message"]


def test_since_nonsense_exits_2(cli):
    r = cli("support", "--no-ai", "-s", "local", "--since", "nonsense")
    assert r.exit_code == 2, r.stdout
    assert "Traceback" not in r.stderr


def test_unknown_setting_exits_2_naming_it(cli):
    r = cli("support", "--no-ai", "-s", "local", "--set", "nosuch=1")
    assert r.exit_code == 2, r.stdout
    assert "nosuch" in r.stderr


def test_non_numeric_threshold_exits_2(cli):
    # Assumption: disk_percent is numeric and a non-number is bad input.
    r = cli("support", "--no-ai", "-s", "local", "--set", "disk_percent=lots")
    assert r.exit_code == 2, r.stdout


def test_collect_only_without_output_file_exits_2(cli):
    r = cli("support", "--collect-only", "-s", "local")
    assert r.exit_code == 2, r.stdout
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------- the bundle


def test_collect_only_works_without_an_api_key_and_without_the_model(anthropic_api, cli, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    out = tmp_path / "bundle.tar.gz"
    r = cli("support", "--collect-only", "-o", str(out), "-s", "local")
    assert r.exit_code == 0, r.stderr
    assert out.is_file() and tarfile.is_tarfile(out)
    assert anthropic_api.requests == []


def test_bundle_manifest_lists_every_file_with_a_correct_sha256(cli, tmp_path):
    out = tmp_path / "b.tar.gz"
    r = cli("support", "--collect-only", "-o", str(out), "-s", "local")
    assert r.exit_code == 0, r.stderr
    base = _extract(out, tmp_path / "x")
    manifest = json.loads((base / "manifest.json").read_text())
    listed = {}
    for entry in manifest["files"]:
        path = base / entry["path"]
        assert path.is_file(), entry
        blob = path.read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"].lower(), entry["path"]
        assert len(blob) == entry["bytes"], entry["path"]
        listed[entry["path"]] = entry
    on_disk = {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()} - {"manifest.json"}
    assert on_disk <= set(listed), f"files not in the manifest: {on_disk - set(listed)}"


def test_bundle_manifest_has_version_hosts_and_time(cli, tmp_path, ssh_server):
    import importlib.metadata

    import vpsagent

    out = tmp_path / "b.tar.gz"
    r = cli("support", "--collect-only", "-o", str(out), "-s", "local", "-s", ssh_server)
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((_extract(out, tmp_path / "x") / "manifest.json").read_text())
    versions = {getattr(vpsagent, "__version__", None)}
    try:
        versions.add(importlib.metadata.version("vpsagent"))
    except importlib.metadata.PackageNotFoundError:
        pass
    assert manifest["vpsagent"] in versions
    assert set(_host_names(manifest)) == {"local", ssh_server}
    assert manifest["created"]


def test_bundle_has_one_file_per_collector_per_server_findings_and_readme(cli, tmp_path, ssh_server):
    out = tmp_path / "b.tar.gz"
    r = cli("support", "--collect-only", "-o", str(out), "-s", "local", "-s", ssh_server,
            "--set", "disk_percent=1")
    assert r.exit_code == 0, r.stderr
    base = _extract(out, tmp_path / "x")
    for host in ("local", ssh_server):
        for cid in COLLECTOR_IDS:
            assert (base / host / f"{cid}.txt").is_file(), f"{host}/{cid}.txt missing"
        assert (base / host / "disks.txt").stat().st_size > 0
    findings = _findings_list(json.loads((base / "findings.json").read_text()))
    assert {(f["server"], f["id"]) for f in findings} >= {("local", "disk_full"), (ssh_server, "disk_full")}
    readme = (base / "README.txt").read_text()
    # Assumption: the short README points the reader at the manifest.
    assert readme.strip() and len(readme) < 20_000 and "manifest" in readme.lower()


def test_bundle_never_contains_a_stored_secret(cli, sshd, tmp_path):
    # Assumption: `--key` and `--sudo-password-stdin` combine; the sudo password is a stored
    # credential of t2, and redaction covers every stored credential of the selected servers.
    secret = "Sudo-" + uuid.uuid4().hex
    _add_same_sshd(cli, sshd, "t2", "--sudo-password-stdin", input=secret + "\n")
    marker = "bundlemark-" + uuid.uuid4().hex[:10]
    now = datetime.now() - timedelta(minutes=1)
    lines = _error_lines_syslog(marker, now)
    lines.insert(0, f"{now.strftime('%b %d %H:%M:%S')} accepthost webapp[99]: ERROR login failed, token was {secret}")
    lines.insert(0, f"{now.strftime('%b %d %H:%M:%S')} accepthost webapp[98]: ERROR bad config password={secret}")
    log = _write_log(tmp_path / "logs" / "secret.log", lines)
    out = tmp_path / "b.tar.gz"
    r = cli("support", "--collect-only", "-o", str(out), "-s", "local", "-s", "t2", *_log_args(log))
    assert r.exit_code == 0, r.stderr
    base = _extract(out, tmp_path / "x")
    everything = b""
    for p in base.rglob("*"):
        assert secret not in p.name
        if p.is_file():
            everything += p.read_bytes() + b"\n"
    assert marker.encode() in everything, "the log lines should be in the bundle (else this test proves nothing)"
    assert secret.encode() not in everything
    assert secret not in r.stdout + r.stderr


# --------------------------------------------------------------------------- the AI path


def test_first_request_carries_the_findings_and_their_evidence(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("Your disk use is over the threshold (disk_full). Sure: high."))
    anthropic_api.always(text("fallback answer"))
    doc = _support(cli, "-s", ssh_server, "why is it slow?", "--set", "disk_percent=1")
    findings = doc["data"]["findings"]
    assert findings
    first = _request_strings(anthropic_api.requests[0])
    assert "why is it slow?" in first
    for f in findings:
        assert f["title"] in first, f"title {f['title']!r} not sent to the model"
    disk = _findings(doc["data"], "disk_full", ssh_server)[0]
    assert any(line.strip() and line.strip() in first for line in disk["evidence"]), disk["evidence"]


def test_evidence_sent_to_the_model_is_redacted(anthropic_api, cli, sshd, tmp_path):
    # Assumption: as in test_bundle_never_contains_a_stored_secret.
    secret = "Sudo-" + uuid.uuid4().hex
    _add_same_sshd(cli, sshd, "t2", "--sudo-password-stdin", input=secret + "\n")
    marker = "aimark-" + uuid.uuid4().hex[:10]
    now = datetime.now() - timedelta(minutes=1)
    lines = _error_lines_syslog(marker, now)
    lines.insert(0, f"{now.strftime('%b %d %H:%M:%S')} accepthost webapp[99]: ERROR login failed, token was {secret}")
    lines.insert(0, f"{now.strftime('%b %d %H:%M:%S')} accepthost webapp[98]: ERROR bad config password={secret}")
    log = _write_log(tmp_path / "logs" / "secret.log", lines)
    anthropic_api.always(text("There is an error burst in the web app log."))
    r = cli("support", "-s", "t2", "what is wrong?", *_log_args(log), "--json")
    assert r.exit_code == 0, r.stderr
    assert marker in anthropic_api.all_strings(), "the error burst evidence should reach the model"
    assert secret not in anthropic_api.all_bodies()
    assert secret not in anthropic_api.all_strings()
    assert secret not in r.stdout


def test_the_model_may_run_one_more_read_only_command(anthropic_api, cli, ssh_server):
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": "uptime"}, id="toolu_acc_uptime01"),
                       text("The load is fine; see disk_full."))
    anthropic_api.always(text("fallback answer"))
    r = cli("support", "-s", ssh_server, "why is it slow?", "--set", "disk_percent=1")
    assert r.exit_code == 0, r.stderr
    block = _tool_result(anthropic_api, "toolu_acc_uptime01")
    assert not block.get("is_error"), block
    assert "load average" in anthropic_api.result_text(block)
    rows = [row for row in _history_rows(cli, "uptime") if row["command"].strip() == "uptime"]
    assert rows, "the extra command is not in the audit log"
    assert any("allow" in _decision(row) for row in rows), rows


def test_the_answer_is_printed_on_stdout(anthropic_api, cli, ssh_server):
    phrase = "ANSWER-" + uuid.uuid4().hex[:8]
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": "uptime"}),
                       text(f"{phrase}: the disk is over the threshold (disk_full). Next: du -sh /var/*"))
    anthropic_api.always(text("fallback answer"))
    r = cli("support", "-s", ssh_server, "why is it slow?", "--set", "disk_percent=1")
    assert r.exit_code == 0, r.stderr
    assert phrase in r.stdout


def test_json_answer_has_text_usage_and_cost(anthropic_api, cli, ssh_server):
    phrase = "ANSWER-" + uuid.uuid4().hex[:8]
    anthropic_api.push(text(f"{phrase} disk_full is the problem."))
    anthropic_api.always(text("fallback answer"))
    doc = _support(cli, "-s", ssh_server, "why is it slow?", "--set", "disk_percent=1")
    answer = doc["data"]["answer"]
    # Assumption: data.answer is an object holding the text, the usage and the cost.
    assert isinstance(answer, dict), answer
    assert any(phrase in s for s in _strings(answer))
    pairs = list(_walk(answer))
    # the scripted reply reports 100 input tokens; usage keys may be input_tokens or input
    assert any("input" in k.lower() and isinstance(v, int) and not isinstance(v, bool) and v >= 100
               for k, v in pairs), answer
    assert any("cost" in k.lower() and (isinstance(v, (int, float)) or
                                        (isinstance(v, str) and re.fullmatch(r"\$?[0-9.]+", v)))
               for k, v in pairs), answer


def test_support_list_and_show_find_the_conversation(anthropic_api, cli, ssh_server):
    # Assumption: `support list --json` lists conversations as objects with an "id".
    phrase = "ANSWER-" + uuid.uuid4().hex[:8]
    anthropic_api.push(text(f"{phrase} disk_full."))
    anthropic_api.always(text("fallback answer"))
    r = cli("support", "-s", ssh_server, "why is it slow?", "--set", "disk_percent=1")
    assert r.exit_code == 0, r.stderr
    lst = cli("support", "list", "--json")
    assert lst.exit_code == 0, lst.stderr
    ids = [d["id"] for d in _dicts(lst.json()["data"]) if "id" in d]
    assert ids, lst.stdout
    conv = str(ids[0])
    text_list = cli("support", "list")
    assert text_list.exit_code == 0 and conv in text_list.stdout
    shown = cli("support", "show", conv)
    assert shown.exit_code == 0, shown.stderr
    assert phrase in shown.stdout
    shown_json = cli("support", "show", conv, "--json")
    assert shown_json.exit_code == 0 and shown_json.json()["ok"] is True
    assert any(phrase in s for s in _strings(shown_json.json()["data"]))


def test_support_show_of_an_unknown_id_exits_2(cli):
    # Assumption: an unknown conversation id is bad input (exit 2), like an unknown server.
    r = cli("support", "show", "999999")
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def test_continue_sends_the_follow_up_in_the_same_conversation(anthropic_api, cli, ssh_server):
    # Assumption: like `ask --continue`, `support --continue "..."` needs no -s.
    first = "FIRST-" + uuid.uuid4().hex[:8]
    second = "SECOND-" + uuid.uuid4().hex[:8]
    anthropic_api.push(text(f"{first} the disk is over the threshold."))
    r = cli("support", "-s", ssh_server, "why is it slow?", "--set", "disk_percent=1")
    assert r.exit_code == 0, r.stderr
    n = len(anthropic_api.requests)
    anthropic_api.push(text(f"{second} clean /var/log."))
    anthropic_api.always(text("fallback answer"))
    r = cli("support", "--continue", "and how do I fix it?")
    assert r.exit_code == 0, r.stderr
    assert second in r.stdout
    follow = anthropic_api.requests[n]
    msgs = follow["messages"]
    assert len(msgs) >= 3
    assert "why is it slow?" in _request_strings({"m": msgs[:-1]})
    assert any(m["role"] == "assistant" and first in _request_strings(m) for m in msgs)
    assert "how do I fix it?" in _request_strings(msgs[-1])


def test_a_mutating_command_is_denied_during_support(anthropic_api, cli, ssh_server, tmp_path):
    # Assumption: the exit code is 0 (the answer was given) or 4 (a command was denied).
    target = tmp_path / ("touched-" + uuid.uuid4().hex[:8])
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}, id="toolu_acc_touch01"),
                       text("I could not change anything; here is what I found."))
    anthropic_api.always(text("fallback answer"))
    r = cli("support", "-s", ssh_server, "fix it")
    assert r.exit_code in (0, 4), r.stderr
    assert not target.exists()
    assert _tool_result(anthropic_api, "toolu_acc_touch01").get("is_error") is True
    rows = [row for row in _history_rows(cli, "touch") if str(target) in row["command"]]
    assert rows and all("den" in _decision(row) for row in rows), rows


def test_a_service_restart_is_denied_during_support(anthropic_api, cli, ssh_server):
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": "systemctl restart acceptsvc"},
                                id="toolu_acc_restart01"),
                       text("Restarting is for you to do: systemctl restart acceptsvc"))
    anthropic_api.always(text("fallback answer"))
    r = cli("support", "-s", ssh_server, "restart it")
    assert r.exit_code in (0, 4), r.stderr
    assert _tool_result(anthropic_api, "toolu_acc_restart01").get("is_error") is True
    rows = [row for row in _history_rows(cli, "acceptsvc") if "acceptsvc" in row["command"]]
    assert rows and any("den" in _decision(row) for row in rows), rows


def test_ai_service_error_exits_6(anthropic_api, cli):
    anthropic_api.always(overloaded())
    doc = _support(cli, "-s", "local", "why is it slow?", code=6)
    assert doc["ok"] is False and doc["exit_code"] == 6
    assert doc["errors"]


# --------------------------------------------------------------------------- test run --explain


def test_test_run_explain_starts_from_collector_evidence(anthropic_api, cli, tmp_path):
    # Assumption: a `run` step whose stdout fails `expect` makes `test run` exit 1, and the
    # os/disks collectors' output (kernel release, df lines) is in what the model receives.
    plan = tmp_path / "fail.yaml"
    plan.write_text(
        "name: explain acceptance\n"
        "servers: [local]\n"
        "steps:\n"
        "  - run: echo 50\n"
        "    expect: {stdout: {lt: 10}}\n"
    )
    anthropic_api.always(text("The step failed because 50 is not below 10."))
    r = cli("test", "run", str(plan), "--explain")
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert anthropic_api.requests, "--explain should ask the model"
    sent = anthropic_api.all_strings()
    kernel = os.uname().release
    devices = [d for d, _, m in _df_rows() if m == "/"]
    assert kernel in sent or any(d in sent for d in devices), "no collector evidence in the diagnosis request"
