"""The deploy config: `.vpsagent/deploy.yml` in the repository (docs/deploy.md), checked
with every problem as `file:line:col`, like a test plan. The health check is a test plan
(inline `steps:` or `plan:` a path in the repository), checked by the test-plan engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vpsagent.jsondata import JSON, JSONObject
from vpsagent.plans.schema import Plan, PlanInvalid, Problem, embedded_plan, load_positioned

CONFIG_PATH = ".vpsagent/deploy.yml"
APP_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEYS = ("app", "servers", "tags", "path", "environment", "url", "source", "git_url", "keep_releases", "shared",
        "env", "secrets", "build", "migrate", "restart", "health", "canary", "batch", "hooks")
HOOKS = ("before", "after", "on_failure")
# subcommand names of `vpsagent deploy`: an app may not be called like one
RESERVED = ("validate", "rollback", "releases", "list", "show", "unlock", "secret")


@dataclass
class DeployConfig:
    app: str
    file: str
    servers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    path: str = ""
    environment: str = "production"
    url: str | None = None
    source: str = "archive"  # archive | git
    git_url: str | None = None
    keep_releases: int = 5
    shared_files: list[str] = field(default_factory=list)
    shared_dirs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    build: list[str] = field(default_factory=list)
    migrate: str | None = None
    restart: str | None = None
    health: Plan | None = None
    health_plan_path: str | None = None  # `plan:` in the repository, loaded with the release
    canary: int = 0
    serial: int | None = None
    max_fail: int = 0
    hooks: dict[str, list[str]] = field(default_factory=dict)

    def path_for(self, server: str) -> str:
        """The app's directory on `server`: `{server}` in `path:` is the inventory name (several
        names for one machine — a staging and a production instance — need their own)."""
        return self.path.replace("{server}", server)


class _Check:
    """Collects problems at the places they were written."""

    def __init__(self, doc: object) -> None:
        self.doc = doc

    def err(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        """At the value written at `path` (at its key, with `key`: a bad name, not a bad value)."""
        self.doc.add(path, message, key=key)  # type: ignore[attr-defined]  # plans.schema.PositionedDoc


def _text(c: _Check, data: JSONObject, key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        c.err((key,), f"{key}: expected a non-empty string")
        return default
    return value if isinstance(value, str) else default


def _texts(c: _Check, data: JSONObject, key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return list(value)
    c.err((key,), f"{key}: expected a list of strings")
    return []


def _count(c: _Check, data: JSONObject, path: tuple[str, ...], default: int, low: int) -> int:
    value: JSON = data
    for p in path:
        value = value.get(p) if isinstance(value, dict) else None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        c.err(path, f"{'.'.join(path)}: expected a whole number of at least {low}")
        return default
    return value


def _basics(c: _Check, data: JSONObject, cfg: DeployConfig) -> None:
    if not APP_RE.match(cfg.app) or cfg.app in RESERVED:
        c.err(("app",), f"app {cfg.app!r}: use lower-case letters, digits and '-' (not a deploy subcommand)")
    cfg.servers, cfg.tags = _texts(c, data, "servers"), _texts(c, data, "tags")
    cfg.path = _text(c, data, "path", f"/srv/{cfg.app}") or f"/srv/{cfg.app}"
    if not cfg.path.startswith(("/", "~")) or cfg.path.rstrip("/") in ("", "/", "~"):
        c.err(("path",), f"path {cfg.path!r}: an absolute directory of its own (releases/, shared/, current)")
    cfg.environment = _text(c, data, "environment", "production") or "production"
    cfg.url = _text(c, data, "url")
    cfg.source = _text(c, data, "source", "archive") or "archive"
    if cfg.source not in ("archive", "git"):
        c.err(("source",), "source: archive (downloaded here, uploaded over SFTP) or git (cloned on the server)")
    cfg.git_url = _text(c, data, "git_url")
    cfg.keep_releases = _count(c, data, ("keep_releases",), 5, 1)
    cfg.canary = _count(c, data, ("canary",), 0, 0)
    cfg.serial = _count(c, data, ("batch", "serial"), 0, 1) or None
    cfg.max_fail = _count(c, data, ("batch", "max_fail"), 0, 0)


def _shared(c: _Check, data: JSONObject, cfg: DeployConfig) -> None:
    for i, item in enumerate(_texts(c, data, "shared")):
        clean = item.strip().rstrip("/")
        if clean.startswith("/") or ".." in clean.split("/") or not clean:
            c.err(("shared", i), f"shared {item!r}: a path inside the release (no '/', no '..')")
        elif item.endswith("/"):
            cfg.shared_dirs.append(clean)
        else:
            cfg.shared_files.append(clean)


def _env(c: _Check, data: JSONObject, cfg: DeployConfig) -> None:
    env = data.get("env")
    if isinstance(env, dict):
        for k, v in env.items():
            if not ENV_NAME_RE.match(k):
                c.err(("env", k), f"env: {k!r} is not a variable name", key=True)
            elif not isinstance(v, str | int | float | bool):
                c.err(("env", k), f"env.{k}: expected a string or number")
            else:
                cfg.env[k] = str(v).lower() if isinstance(v, bool) else str(v)
    elif env is not None:
        c.err(("env",), "env: expected a mapping of NAME: value")
    cfg.secrets = _texts(c, data, "secrets")
    for i, name in enumerate(cfg.secrets):
        if not ENV_NAME_RE.match(name):
            c.err(("secrets", i), f"secrets: {name!r} is not a variable name")


def _commands(c: _Check, data: JSONObject, cfg: DeployConfig) -> None:
    cfg.build = _texts(c, data, "build")
    cfg.migrate = _text(c, data, "migrate")
    cfg.restart = _text(c, data, "restart")
    hooks = data.get("hooks")
    if isinstance(hooks, dict):
        for k in hooks:
            if k not in HOOKS:
                c.err(("hooks", k), f"hooks: unknown hook {k!r} (before, after, on_failure)", key=True)
            else:
                cfg.hooks[k] = _texts(c, hooks, k)
    elif hooks is not None:
        c.err(("hooks",), "hooks: expected a mapping (before, after, on_failure)")


def _health(c: _Check, data: JSONObject, cfg: DeployConfig, doc: object) -> None:
    health = data.get("health")
    if health is None:
        return
    if isinstance(health, dict) and set(health) == {"plan"} and isinstance(health["plan"], str):
        cfg.health_plan_path = health["plan"]
        return
    if not isinstance(health, dict) or "steps" not in health:
        c.err(("health",), "health: a test plan — `steps:` (docs/testplans.md) or `plan: path/in/the/repository`")
        return
    cfg.health = embedded_plan(doc, ("health",), health, f"{cfg.app} health")  # type: ignore[arg-type]


def parse_config(text: str, file: str = CONFIG_PATH) -> tuple[DeployConfig | None, list[Problem]]:
    """The config and ALL its problems (the config is None when there are any)."""
    data, doc = load_positioned(text, file)
    if doc.problems and data is None:
        return None, doc.problems
    c = _Check(doc)
    if not isinstance(data, dict):
        c.err((), "the deploy config is a mapping with at least `app:`")
        return None, doc.problems
    for k in data:
        if k not in KEYS:
            doc.add((k,), f"unknown key {k!r} (known: {', '.join(KEYS)})", key=True)
    app = data.get("app")
    if not isinstance(app, str):
        c.err(("app",) if "app" in data else (), "missing required key 'app' (the application's name)")
        app = ""
    cfg = DeployConfig(app=app, file=file)
    for part in (_basics, _shared, _env, _commands):
        part(c, data, cfg)
    _health(c, data, cfg, doc)
    problems = sorted(doc.problems, key=lambda p: (p.line, p.col))
    return (None if problems else cfg), problems


def load_config(text: str, file: str = CONFIG_PATH) -> DeployConfig:
    cfg, problems = parse_config(text, file)
    if cfg is None:
        raise PlanInvalid(problems)
    return cfg
