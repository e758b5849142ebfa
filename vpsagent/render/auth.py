"""How logins, users and tokens look. A token is written once, to stdout, and nowhere else."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from vpsagent.render import LazyConsole, Output, table, when
from vpsagent.services.auth import AuthMode, Grant, Identity, TokenView, UserView


def _when(dt: datetime | None) -> str:
    return when(dt)


def render_login(out: Output, grant: Grant, where: str) -> int:
    data = {"email": grant.email, "role": grant.role, "expires_at": grant.expires_at, "stored_in": where}
    return out.emit(data, text=lambda _c: out.note(
        f"logged in as {grant.email} ({grant.role}) until {_when(grant.expires_at)}; kept in {where}"))


def render_whoami(out: Output, ident: Identity, mode: AuthMode) -> int:
    data = {"logged_in": ident.logged_in, "email": ident.email, "name": ident.name or None, "role": ident.role,
            "via": ident.via, "token_name": ident.token_name, "expires_at": ident.expires_at,
            "os_user": ident.os_user, "auth": mode, "login_required": mode == AuthMode.REQUIRED}

    def text(c: LazyConsole) -> None:
        if ident.logged_in:
            via = f"API token {ident.token_name}" if ident.via == "token" else "login"
            c.print(f"{ident.email} ({ident.role}) via {via}, until {_when(ident.expires_at)}", markup=False)
        else:
            need = "logins are required here" if mode == AuthMode.REQUIRED else "no login needed here"
            c.print(f"not logged in; OS user {ident.os_user or '?'} ({need})", markup=False)

    return out.emit(data, text=text)


def render_new_token(out: Output, grant: Grant) -> int:
    """The token on stdout alone (so `> file` keeps just it); how to use it on stderr."""
    data = {"name": grant.name, "token": grant.token.reveal_str(), "role": grant.role,
            "expires_at": grant.expires_at}

    def text(c: LazyConsole) -> None:
        out.data(grant.token.reveal_str() + "\n")
        out.note(f"token {grant.name} ({grant.role}, until {_when(grant.expires_at)}): shown once, stored "
                 "only as a hash; use it as VPSAGENT_TOKEN or with --token-file")

    return out.emit(data, text=text)


def render_tokens(out: Output, toks: Sequence[TokenView]) -> int:
    def text(c: LazyConsole) -> None:
        if not toks:
            out.note("no tokens")
            return
        c.print(table(["ID", "NAME", "OWNER", "ROLE", "EXPIRES", "LAST USED", "STATE"],
                      [[t.id, t.name, t.owner, t.role, _when(t.expires_at), _when(t.last_used_at),
                        "revoked" if t.revoked else "active"] for t in toks], flex=("NAME", "OWNER")))

    return out.emit({"tokens": list(toks)}, text=text)


def render_user(out: Output, user: UserView, verb: str) -> int:
    return out.emit({"user": user}, text=lambda _c: out.note(f"{verb} {user.email} ({user.role})"))


def render_users(out: Output, users: Sequence[UserView]) -> int:
    def text(c: LazyConsole) -> None:
        if not users:
            out.note("no users yet: the first `vpsagent users add EMAIL` becomes the admin")
            return
        c.print(table(["EMAIL", "NAME", "ROLE", "STATE", "LAST LOGIN"],
                      [[u.email, u.name, u.role, "disabled" if u.disabled else "active", _when(u.last_login_at)]
                       for u in users], flex=("EMAIL", "NAME")))

    return out.emit({"users": list(users)}, text=text)
