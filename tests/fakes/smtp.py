"""A real SMTP server in the test process (aiosmtpd), with TLS certificates from trustme.

    server = smtp_server(mode="starttls")          # or "plain", "implicit"
    cli("login", "ann@example.com", "--send", env=server.env)
    code = server.last_code("ann@example.com")

`mode` is how the client must talk to it: `plain` (no TLS), `starttls` (STARTTLS
required before AUTH), `implicit` (TLS from the first byte, as on port 465). The server
demands AUTH with `.user`/`.password`. `trusted=False` leaves the test CA out of `.env`
(the client must then refuse the self-signed certificate); `reject_sender=True` refuses
every MAIL FROM; `down=True` gives a URL where nothing listens.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import secrets
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

CODE = re.compile(r"\b(\d{8})\b")
# aiosmtpd's own complaints about what the test modes do on purpose (AUTH over plain text,
# clients that refuse our certificate) would only clutter the test output.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
warnings.filterwarnings("ignore", message=".*login_data is deprecated")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)
FROM = "vpsagent@example.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if self.server.reject_sender:
            return "550 5.7.1 sender rejected"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.server.lock:
            self.server.messages.append(msg)
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


@dataclass
class SMTPServer:
    mode: str
    ca_file: Path
    port: int
    user: str = "mailer"
    password: str = field(default_factory=lambda: "smtp-" + secrets.token_urlsafe(12))
    trusted: bool = True
    reject_sender: bool = False
    down: bool = False
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    sessions: int = 0  # connections the server saw (a dummy session for unknown addresses counts too)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Any = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.mode == "implicit" else "smtp"
        query = "?starttls=1" if self.mode == "starttls" else ""
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}{query}"

    @property
    def env(self) -> dict[str, str]:
        env = {"VPSAGENT_SMTP_URL": self.url, "VPSAGENT_MAIL_FROM": FROM}
        if self.trusted:
            env["VPSAGENT_SMTP_CA_FILE"] = str(self.ca_file)
        return env

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def last_code(self, address: str) -> str | None:
        mails = self.to(address)
        if not mails:
            return None
        body = mails[-1].get_body(("plain",))
        found = CODE.findall(body.get_content() if body is not None else "")
        return found[-1] if found else None

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def _authenticator(server: SMTPServer) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(_smtp: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login.decode() == server.user
              and data.password.decode() == server.password)
        return AuthResult(success=ok, handled=False)

    return check


def start_smtp(tmp: Path, ca: Any, mode: str = "starttls", *, trusted: bool = True,
               reject_sender: bool = False, down: bool = False) -> SMTPServer:
    from aiosmtpd.controller import Controller

    ca_file = tmp / f"smtp-ca-{secrets.token_hex(4)}.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = SMTPServer(mode=mode, ca_file=ca_file, port=_free_port(), trusted=trusted,
                        reject_sender=reject_sender, down=down)
    if down:
        return server
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(tls)
    kwargs: dict[str, Any] = {"authenticator": _authenticator(server), "auth_required": True}
    if mode == "starttls":
        kwargs.update(tls_context=tls, require_starttls=True, auth_require_tls=True)
    elif mode == "implicit":
        # aiosmtpd cannot tell that an implicit-TLS socket is encrypted: allow AUTH on it
        kwargs.update(ssl_context=tls, auth_require_tls=False)
    else:
        kwargs.update(auth_require_tls=False)
    with warnings.catch_warnings():
        # "AUTH without TLS": exactly what the plain mode is for
        warnings.simplefilter("ignore")
        ctrl = Controller(_Handler(server), hostname="127.0.0.1", port=server.port, **kwargs)
        ctrl.start()
    server.controller = ctrl
    return server


@pytest.fixture(scope="session")
def smtp_ca() -> Any:
    import trustme

    return trustme.CA()


@pytest.fixture
def smtp_server(tmp_path: Path, smtp_ca: Any) -> Iterator[Any]:
    """Factory: smtp_server(mode="starttls", trusted=True, reject_sender=False, down=False)."""
    started: list[SMTPServer] = []

    def make(mode: str = "starttls", *, trusted: bool = True, reject_sender: bool = False,
             down: bool = False) -> SMTPServer:
        s = start_smtp(tmp_path, smtp_ca, mode, trusted=trusted, reject_sender=reject_sender, down=down)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()
