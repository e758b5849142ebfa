"""GitHub connections: a repository and its token, stored encrypted like SSH credentials.

Which token a deploy uses, first found wins (the order `gh` uses): GITHUB_TOKEN in the
environment (CI), then the token stored by `vpsagent github connect` for that repository.
Which API: GITHUB_API_URL when set (GitHub Enterprise), else the one the connection was
made with, else api.github.com.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime

from vpsagent import errors
from vpsagent.deploy.github import GitHub
from vpsagent.secret import Secret
from vpsagent.services.context import Context

DEFAULT_API = "https://api.github.com"
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Integration:
    """A stored connection as shown (the token never leaves its envelope here)."""

    name: str
    repo: str
    api_url: str
    created_at: datetime | None
    has_token: bool


def check_repo(repo: str) -> str:
    if not REPO_RE.match(repo) or repo.endswith((".git", "/")) or ".." in repo:
        raise errors.InvalidInput(f"{repo!r} is not a repository: use OWNER/REPO, e.g. acme/shop")
    return repo


def default_name(repo: str) -> str:
    """The app name a repository is known by: its name, lower-cased, `_`/`.` as `-`."""
    return re.sub(r"[^a-z0-9-]", "-", repo.split("/", 1)[1].lower()).strip("-")[:63] or "app"


def _api_url(ctx: Context, stored: str | None) -> str:
    explicit = os.environ.get("GITHUB_API_URL") or (ctx.settings.github_api_url
                                                    if ctx.settings.github_api_url != DEFAULT_API else None)
    return (explicit or stored or DEFAULT_API).rstrip("/")


def connect(ctx: Context, repo: str, token: Secret, *, name: str | None = None, verify: bool = True) -> Integration:
    """Store `repo` with its token (encrypted), after checking the token can read the repository."""
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import GithubIntegration

    check_repo(repo)
    name = name or default_name(repo)
    if not NAME_RE.match(name):
        raise errors.InvalidInput(f"--name {name!r}: use lower-case letters, digits and '-'")
    api = _api_url(ctx, None)
    if verify:
        GitHub(repo, token, api).check()  # a bad token or an invisible repository: one line, nothing stored
    keyring = ctx.keyring()
    with session_scope(ctx.engine) as s:
        row = s.exec(select(GithubIntegration).where(GithubIntegration.name == name)).first()
        if row is not None and row.repo != repo:
            raise errors.AlreadyExists(f"{name!r} is already connected to {row.repo}",
                                       hint=f"`vpsagent github remove {name}` first, or --name")
        row = row or GithubIntegration(name=name, repo=repo)
        row.repo, row.api_url = repo, api
        s.add(row)
        s.flush()  # the id is part of the envelope
        assert row.id is not None
        row.token_enc = keyring.encrypt(token.reveal_bytes(), table="github_integrations", record_id=row.id,
                                        field="token_enc")
        s.add(row)
        return Integration(row.name, row.repo, api, row.created_at, True)


def list_integrations(ctx: Context) -> list[Integration]:
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import GithubIntegration

    with session_scope(ctx.engine) as s:
        rows = s.exec(select(GithubIntegration).order_by(GithubIntegration.name)).all()
        return [Integration(r.name, r.repo, r.api_url or DEFAULT_API, r.created_at, bool(r.token_enc)) for r in rows]


def remove(ctx: Context, which: str) -> Integration:
    """Forget a connection (by name or OWNER/REPO) and its token."""
    from sqlmodel import or_, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import GithubIntegration

    with session_scope(ctx.engine) as s:
        rows = s.exec(select(GithubIntegration).where(
            or_(GithubIntegration.name == which, GithubIntegration.repo == which))).all()
        if not rows:
            raise errors.NotFound(f"no GitHub connection {which!r}", hint="`vpsagent github list`")
        gone = [Integration(r.name, r.repo, r.api_url or DEFAULT_API, r.created_at, bool(r.token_enc)) for r in rows]
        for r in rows:
            s.delete(r)
        return gone[0]


def repo_of(ctx: Context, app_or_repo: str | None) -> str | None:
    """The repository an argument means: OWNER/REPO as given, or the repository connected
    under that name; with no argument, the only connection there is, or GITHUB_REPOSITORY (CI)."""
    if app_or_repo and "/" in app_or_repo:
        return check_repo(app_or_repo)
    conns = list_integrations(ctx)
    if app_or_repo:
        return next((c.repo for c in conns if c.name == app_or_repo), None)
    if len(conns) == 1:
        return conns[0].repo
    env = os.environ.get("GITHUB_REPOSITORY")
    return check_repo(env) if env else None


def client(ctx: Context, repo: str) -> GitHub:
    """PyGithub for `repo` with the token that applies (see the module's docstring)."""
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import GithubIntegration

    with session_scope(ctx.engine) as s:
        row = s.exec(select(GithubIntegration).where(GithubIntegration.repo == repo)).first()
        stored = (row.id, row.token_enc, row.api_url) if row is not None else None
    token = ctx.settings.github_token
    if token is None and stored is not None and stored[1]:
        assert stored[0] is not None
        token = ctx.keyring().decrypt(stored[1], table="github_integrations", record_id=stored[0], field="token_enc")
    if token is None:
        raise errors.NotAllowed(f"no GitHub token for {repo}",
                                hint=f"set GITHUB_TOKEN, or `vpsagent github connect {repo} --token-stdin`")
    return GitHub(repo, token, _api_url(ctx, stored[2] if stored else None))
