"""Helpers for the test-plan tests: plan files, a local HTTP(S) server, running on `local`.

Everything here is real: plans run through `run_plan` on the built-in `local` host
(this machine, real processes), HTTP checks hit a real server on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TESTPLANS = REPO / "testplans"
HOME_PAGE = b"<html><body><h1>Welcome to the test site</h1></body></html>\n"


def my_comm() -> str:
    """This process's name as pgrep/ps see it (the HTTP servers below live in it)."""
    return Path("/proc/self/comm").read_text().strip()


def _write_plan_fixture(tmp_path: Path) -> Callable[..., str]:
    """write_plan(text, name="plan.yaml") -> path of a plan file in this test's tmp dir."""

    def write(text: str, name: str = "plan.yaml") -> str:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return str(p)

    return write


@dataclass
class WebServer:
    host: str
    port: int
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    flaky_left: int = 0  # /flaky answers 503 this many more times, then 200
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"


class _Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _answer(self, status: int, body: bytes, ctype: str = "text/plain",
                extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        web: WebServer = self.server.web
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        web.requests.append((self.command, self.path, dict(self.headers.items()), body))
        path = self.path.split("?")[0]
        if path == "/":
            self._answer(200, HOME_PAGE, "text/html; charset=utf-8", {"X-Served-By": "vpsagent-test"})
        elif path == "/health":
            self._answer(200, b"ok 1.4.2\n")
        elif path == "/redirect":
            self._answer(302, b"moved\n", extra={"Location": "/"})
        elif path == "/echo":
            lines = [f"{self.command} {self.path}"] + [f"{k}: {v}" for k, v in self.headers.items()]
            self._answer(200, ("\n".join(lines) + "\n\n").encode() + body)
        elif path == "/flaky":
            if web.flaky_left > 0:
                web.flaky_left -= 1
                self._answer(503, b"warming up\n")
            else:
                self._answer(200, b"ready\n")
        else:
            self._answer(404, b"not found\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up (a TLS probe, a timeout step) is expected; socketserver
        # would print a traceback into the stderr that in-process CLI tests inspect
        pass


def _serve(web: WebServer, ctx: ssl.SSLContext | None = None) -> Iterator[WebServer]:
    srv = _QuietServer((web.host, 0), _Handler)
    srv.daemon_threads = True
    if ctx is not None:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.web = web  # type: ignore[attr-defined]
    web.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield web
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


def _web_fixture() -> Iterator[WebServer]:
    """A real HTTP server on 127.0.0.1 (/, /health, /redirect, /echo, /flaky, 404s)."""
    yield from _serve(WebServer("127.0.0.1", 0))


def make_cert(directory: Path, name: str, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for `name`, valid for `days` days from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}-{days}.crt", directory / f"{name}-{days}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _tls_web_fixture(tmp_path: Path) -> Iterator[WebServer]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for `localhost`, 90 days."""
    cert, key = make_cert(tmp_path, "localhost", 90)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    yield from _serve(WebServer("127.0.0.1", 0, scheme="https"), ctx)


def local_run(text: str, overrides: dict[str, Any] | None = None, *, file: str = "plan.yaml",
              fail_fast: bool | None = None, servers: tuple[str, ...] = ("local",)):
    """Validate `text` and run it on this machine (the `local` host); returns the PlanResult."""
    from vpsagent.plans.runner import run_plan
    from vpsagent.plans.schema import validate_text
    from vpsagent.remote.local import LocalHost

    plan, problems = validate_text(text, file, overrides)
    assert not problems, [str(p) for p in problems]
    assert plan is not None
    return run_plan(
        plan, list(servers), open_host=lambda name: LocalHost(name),
        execute=lambda host, command, timeout, sudo: host.run(command, timeout=timeout, sudo=sudo),
        overrides=overrides, fail_fast=fail_fast,
    )


def steps_of(result: Any, server: int = 0) -> list[Any]:
    return result.servers[server].steps
