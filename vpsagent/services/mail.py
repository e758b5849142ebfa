"""Sending mail through the configured SMTP server (`VPSAGENT_SMTP_URL`).

    smtp://user:pass@host:587?starttls=1    STARTTLS before authenticating
    smtps://user:pass@host:465              TLS from the first byte
    smtp://host:25                          plain (a relay on a trusted network)

Certificates are verified against the system's CA store, or `VPSAGENT_SMTP_CA_FILE` for a
private CA; the host name must match. Connecting and every reply are bounded by
`VPSAGENT_SMTP_TIMEOUT` seconds. Failures are one `MailError` line that never carries
the password.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from vpsagent.errors import ConfigError, Failure
from vpsagent.secret import Secret
from vpsagent.settings import Settings

DEFAULT_TIMEOUT = 10.0


class MailError(Failure):
    code = "smtp"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    user: str | None
    password: Secret | None
    sender: str
    ca_file: str | None
    timeout: float

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


HOW_TO_CONFIGURE = ("set VPSAGENT_SMTP_URL (e.g. smtp://USER:PASSWORD@mail.example.com:587?starttls=1) "
                    "and VPSAGENT_MAIL_FROM")


def smtp_config(settings: Settings) -> SmtpConfig:
    """The SMTP settings, checked; ConfigError (exit 2) saying what to set when they are missing."""
    if settings.smtp_url is None:
        raise ConfigError("sending a login code needs an SMTP server", hint=HOW_TO_CONFIGURE)
    url = settings.smtp_url.reveal_str()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError("VPSAGENT_SMTP_URL is not a valid URL", hint=HOW_TO_CONFIGURE) from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("VPSAGENT_SMTP_URL must start with smtp:// or smtps:// and name a host",
                          hint=HOW_TO_CONFIGURE)
    if not settings.mail_from:
        raise ConfigError("VPSAGENT_MAIL_FROM is not set", hint="the address login codes are sent from")
    query = parse_qs(parts.query)
    implicit = parts.scheme == "smtps"
    return SmtpConfig(
        host=parts.hostname, port=port or (465 if implicit else 25), implicit_tls=implicit,
        starttls=query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes"),
        user=unquote(parts.username) if parts.username else None,
        password=Secret(unquote(parts.password)) if parts.password else None,
        sender=settings.mail_from, ca_file=settings.smtp_ca_file, timeout=settings.smtp_timeout,
    )


def _tls(cfg: SmtpConfig) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cfg.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read VPSAGENT_SMTP_CA_FILE {cfg.ca_file}: {exc}") from None


def _open(cfg: SmtpConfig) -> smtplib.SMTP:
    if cfg.implicit_tls:
        client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=_tls(cfg))
    else:
        client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        if cfg.starttls:
            client.starttls(context=_tls(cfg))
    if cfg.user is not None:
        client.login(cfg.user, cfg.password.reveal_str() if cfg.password else "")
    return client


def _why(exc: BaseException) -> str:
    """One line for a failure, without anything from the URL (the password lives there)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted ({exc.verify_message}); set VPSAGENT_SMTP_CA_FILE for a private CA"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "the server refused the user name or password"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"the server refused the sender {exc.sender!r} ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "the server refused the recipient"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server answered {exc.smtp_code}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "the server does not offer STARTTLS (or AUTH) as configured"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def send(cfg: SmtpConfig, to: str, subject: str, body: str) -> None:
    """Deliver one plain-text message; MailError on any failure."""
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    try:
        with _open(cfg) as client:
            client.send_message(msg)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise MailError(f"cannot send mail through {cfg.where}: {_why(exc)}") from None


def rehearse(cfg: SmtpConfig) -> None:
    """Everything `send` does up to the message itself, then quit: an address without an
    account costs the same round trips as one with an account, and fails the same way."""
    try:
        with _open(cfg) as client:
            code, reply = client.mail(cfg.sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, cfg.sender)
            client.rset()
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise MailError(f"cannot send mail through {cfg.where}: {_why(exc)}") from None
