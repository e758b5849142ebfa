"""Settings, resolved once per process and passed explicitly.

Precedence: flag > environment > config file > default. `VPSAGENT_HOME` moves every
path at once (config, data, key file), which is what the tests use.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vpsagent.durations import seconds
from vpsagent.errors import ConfigError, InvalidInput
from vpsagent.secret import Secret
from vpsagent.userfiles import DEFAULT_MAX_BYTES, read_bounded, size_limit

APP = "vpsagent"
# A current Sonnet that the installed SDK does not list as deprecated; tests check it.
DEFAULT_MODEL = "claude-sonnet-5-5"

# config-file key -> environment variable (the same name a user would export)
_FILE_KEYS = {
    "database_url": "DATABASE_URL",
    "model": "VPSAGENT_MODEL",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
    "smtp_url": "VPSAGENT_SMTP_URL",
    "mail_from": "VPSAGENT_MAIL_FROM",
    "smtp_ca_file": "VPSAGENT_SMTP_CA_FILE",
    "smtp_timeout": "VPSAGENT_SMTP_TIMEOUT",
    "session_ttl": "VPSAGENT_SESSION_TTL",
    "github_api_url": "GITHUB_API_URL",
    "policy_file": "VPSAGENT_POLICY",
    "max_file_size": "VPSAGENT_MAX_FILE_SIZE",
    "ai_connect_timeout": "VPSAGENT_AI_CONNECT_TIMEOUT",
    "ai_read_timeout": "VPSAGENT_AI_READ_TIMEOUT",
    "connect_timeout": "VPSAGENT_CONNECT_TIMEOUT",
}


@dataclass(frozen=True)
class Settings:
    home: Path | None
    config_dir: Path
    data_dir: Path
    config_file: Path
    key_file: Path
    database_url: str
    secret: Secret | None
    secret_source: str  # "VPSAGENT_SECRET" | "SESSION_SECRET" | "key file"
    anthropic_api_key: Secret | None
    anthropic_base_url: str | None
    model: str
    smtp_url: Secret | None
    mail_from: str | None
    github_token: Secret | None
    github_api_url: str
    policy_file: Path
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where it came from
    smtp_ca_file: str | None = None  # a CA bundle for a private mail server's certificate
    smtp_timeout: float = 10.0  # seconds for connecting and for each reply
    session_ttl: float = 30 * 86400.0  # how long a login lasts
    token: Secret | None = None  # VPSAGENT_TOKEN: an API token for CI and cron
    support: dict[str, str] = field(default_factory=dict)  # [support] thresholds in the config file
    max_file_bytes: int = DEFAULT_MAX_BYTES  # plans, deploy configs, policy: larger ones are refused unread
    # A black-holed or silent ANTHROPIC_BASE_URL must end in seconds, not in the SDK's 10 minutes:
    # connecting is bounded on its own, and the read timeout is the longest gap between stream events.
    ai_connect_timeout: float = 5.0
    ai_read_timeout: float = 60.0
    connect_timeout: float = 10.0  # SSH: TCP connect, banner and authentication, per server


def _read_config(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(read_bounded(path).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text (byte {exc.start})") from None
    except InvalidInput as exc:
        raise ConfigError(f"cannot read config file {exc.message}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    unknown = sorted(set(data) - set(_FILE_KEYS) - {"support"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r}",
            hint="known: " + ", ".join(sorted(_FILE_KEYS)),
        )
    return data


def _support_table(value: object) -> dict[str, str]:
    """`[support]` in the config file: thresholds for `vpsagent support` (checked when used)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("config file: [support] must be a table of name = value")
    return {str(k): ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in value.items()}


def load_settings(env: Mapping[str, str] | None = None, **flags: object) -> Settings:
    """Resolve every setting. `flags` are command-line values (None = not given)."""
    env = os.environ if env is None else env
    home_s = env.get("VPSAGENT_HOME")
    home: Path | None = None
    if home_s:
        home = Path(home_s).expanduser().absolute()
        config_dir = home / "config"
        data_dir = home / "data"
    else:
        import platformdirs

        config_dir = Path(platformdirs.user_config_dir(APP))
        data_dir = Path(platformdirs.user_data_dir(APP))
    config_file = config_dir / "config.toml"
    file_values = _read_config(config_file)
    sources: dict[str, str] = {}

    def pick(key: str, default: str | None) -> str | None:
        if flags.get(key) is not None:
            sources[key] = "flag"
            return str(flags[key])
        env_name = _FILE_KEYS.get(key)
        if env_name and env.get(env_name):
            sources[key] = f"env {env_name}"
            return env[env_name]
        if key in file_values:
            sources[key] = "config file"
            return str(file_values[key])
        sources[key] = "default"
        return default

    database_url = pick("database_url", f"sqlite:///{data_dir / 'vpsagent.db'}")
    assert database_url is not None

    secret: Secret | None = None
    secret_source = "key file"
    for name in ("VPSAGENT_SECRET", "SESSION_SECRET"):
        if env.get(name):
            secret, secret_source = Secret(env[name]), name
            break

    def secret_env(name: str) -> Secret | None:
        return Secret(env[name]) if env.get(name) else None

    smtp = pick("smtp_url", None)
    return Settings(
        home=home,
        config_dir=config_dir,
        data_dir=data_dir,
        config_file=config_file,
        key_file=config_dir / "secret.key",
        database_url=database_url,
        secret=secret,
        secret_source=secret_source,
        anthropic_api_key=secret_env("ANTHROPIC_API_KEY"),
        anthropic_base_url=pick("anthropic_base_url", None),
        model=pick("model", DEFAULT_MODEL) or DEFAULT_MODEL,
        smtp_url=Secret(smtp) if smtp else None,
        mail_from=pick("mail_from", None),
        github_token=secret_env("GITHUB_TOKEN"),
        github_api_url=pick("github_api_url", "https://api.github.com") or "",
        policy_file=Path(pick("policy_file", str(config_dir / "policy.yaml")) or ""),
        sources=sources,
        smtp_ca_file=pick("smtp_ca_file", None),
        smtp_timeout=seconds(pick("smtp_timeout", "10s") or "10s", what="VPSAGENT_SMTP_TIMEOUT", maximum=600),
        session_ttl=seconds(pick("session_ttl", "30d") or "30d", what="VPSAGENT_SESSION_TTL"),
        token=secret_env("VPSAGENT_TOKEN"),
        support=_support_table(file_values.get("support")),
        max_file_bytes=size_limit(pick("max_file_size", None) or str(DEFAULT_MAX_BYTES), what="VPSAGENT_MAX_FILE_SIZE"),
        ai_connect_timeout=seconds(pick("ai_connect_timeout", "5s") or "5s", what="VPSAGENT_AI_CONNECT_TIMEOUT",
                                   maximum=600),
        ai_read_timeout=seconds(pick("ai_read_timeout", "60s") or "60s", what="VPSAGENT_AI_READ_TIMEOUT",
                                maximum=3600),
        connect_timeout=seconds(pick("connect_timeout", "10s") or "10s", what="VPSAGENT_CONNECT_TIMEOUT",
                                maximum=600),
    )


def mask_url(url: str) -> str:
    """postgresql://user:pw@host/db -> postgresql://user:***@host/db (for doctor and errors).

    Anything that does not parse cleanly is masked after its scheme: a URL we cannot
    read is a URL whose password we cannot find.
    """
    import re
    from urllib.parse import urlsplit, urlunsplit

    scheme = url.split(":", 1)[0] if ":" in url else ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed netloc (e.g. a '/' in the password)
    except ValueError:
        return f"{scheme}:***" if scheme else "***"
    if "://" not in url:
        return f"{scheme}:***" if scheme else "***"
    query = re.sub(r"(?i)(^|&)(password|pass|pwd)=[^&]*", r"\1\2=***", parts.query)
    if parts.password is None and query == parts.query:
        return url  # nothing secret in it (and urlunsplit would fold sqlite:////abs/path)
    netloc = parts.netloc
    if parts.password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = user.split(":", 1)[0] + ":***@" + host
    return urlunsplit(parts._replace(netloc=netloc, query=query))
