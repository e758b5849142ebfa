"""Every secret vpsagent holds in this process, for redacting output before it is stored,
echoed or sent to the model. One list, so `run`, `test run` and `ask` cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from vpsagent.secret import Secret
from vpsagent.settings import Settings


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def known_secrets(settings: Settings, records: Iterable[Any] = ()) -> list[Secret]:
    """The master secret (or the key file's contents), API keys, the SMTP and database
    passwords, and every decrypted credential of `records` (servers and their jump hosts)."""
    found: list[Secret] = [s for s in (settings.secret, settings.anthropic_api_key, settings.github_token,
                                       settings.smtp_url) if s is not None]
    if settings.secret is None:
        try:
            key = settings.key_file.read_text().strip()
        except OSError:
            key = ""
        if key:
            found.append(Secret(key))
    for url in (settings.smtp_url.reveal_str() if settings.smtp_url else None, settings.database_url):
        pw = _url_password(url)
        if pw:
            found.append(Secret(pw))
    for rec in records:
        found += [v for v in vars(rec).values() if isinstance(v, Secret)]
    return found
