"""`vpsagent login`, `logout`, `whoami`, `tokens`, `users`, `auth`: who runs vpsagent."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import App, pass_app
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.services.auth import Grant, LoginAttempt


@click.command()
@click.argument("email", required=False)
@click.option("--send", "send_only", is_flag=True, help="Only send the code (scripts): then `login EMAIL --code-stdin`.")
@click.option("--code-stdin", is_flag=True, help="Read the emailed code from stdin (after `--send`).")
@pass_app
def login(app: App, email: str | None, send_only: bool, code_stdin: bool) -> int:
    """Log in with a one-time code sent by email; the login lasts 30 days (VPSAGENT_SESSION_TTL).

    On a terminal: sends the code and asks for it. In scripts: `--send`, then the code
    on stdin with `--code-stdin`. The session is kept in the OS keyring, or in a 0600
    file in the config directory. Needs VPSAGENT_SMTP_URL and VPSAGENT_MAIL_FROM.

    \b
    Examples:
      vpsagent login ann@example.com
      vpsagent login ann@example.com --send && read -r CODE && \\
        printf %s "$CODE" | vpsagent login ann@example.com --code-stdin
    """
    from vpsagent.cli._prompt import can_prompt
    from vpsagent.errors import UsageError
    from vpsagent.render.auth import render_login
    from vpsagent.services import auth, session_store

    if send_only and code_stdin:
        raise UsageError("--send and --code-stdin are two steps: run them one after the other")
    if email is None:
        if not can_prompt(app):
            raise UsageError("give the EMAIL address to log in with")
        email = click.prompt("email", err=True).strip()
    email = auth.normalize_email(email)
    if code_stdin:
        attempt = session_store.load_attempt(app.settings, email)
        if attempt is None:
            raise UsageError(f"no login code was asked for {email} from this machine",
                             hint=f"run `vpsagent login {email} --send` first")
        grant = auth.verify_code(app.ctx, email, attempt, _read_code())
        session_store.clear_attempt(app.settings, email)
        return render_login(app.out, grant, session_store.save(app.settings, grant.token))
    sent = auth.request_code(app.ctx, email)
    if send_only or not can_prompt(app):
        session_store.save_attempt(app.settings, sent.email, sent.attempt)
        # no time in it: the answer must read the same for every address
        return app.out.emit({"email": sent.email, "sent": True, "valid_minutes": 10},
                            text=lambda _c: app.out.note(_sent_line(sent.email, then=True)))
    app.out.note(_sent_line(sent.email, then=False))
    grant = _prompt_code(app, sent)
    return render_login(app.out, grant, session_store.save(app.settings, grant.token))


def _sent_line(email: str, *, then: bool) -> str:
    # the same words whether or not the address has an account
    line = f"if {email} has an account, a login code is on its way (valid 10 minutes)"
    return line + (f"; then: vpsagent login {email} --code-stdin" if then else "")


def _read_code() -> str:
    from vpsagent.errors import UsageError

    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("--code-stdin: pipe the code on stdin")
    code = sys.stdin.readline().strip()
    if not code:
        raise UsageError("--code-stdin: stdin was empty")
    return code


def _prompt_code(app: App, sent: LoginAttempt) -> Grant:
    from vpsagent.errors import NotLoggedIn
    from vpsagent.services import auth

    for left in range(auth.MAX_TRIES, 0, -1):
        code = click.prompt("code", err=True).strip()
        try:
            return auth.verify_code(app.ctx, sent.email, sent.attempt, code)
        except NotLoggedIn:
            if left == 1:
                raise
            app.out.warn(f"{auth.WRONG_CODE}; {plural(left - 1, 'try', 'tries')} left")
    raise AssertionError("unreachable")


@click.command()
@pass_app
def logout(app: App) -> int:
    """Log out: the session is revoked in the database and removed from this machine.

    \b
    Example:
      vpsagent logout
    """
    from vpsagent.services import auth, session_store

    token = session_store.load(app.settings)
    revoked = auth.logout(app.ctx, token) if token is not None else False
    session_store.clear(app.settings)
    return app.out.emit({"logged_out": token is not None, "revoked": revoked},
                        text=lambda _c: app.out.note("logged out" if token else "not logged in"))


@click.command()
@pass_app
def whoami(app: App) -> int:
    """Who vpsagent takes you for here: the logged-in user (or API token), or the OS user.

    \b
    Example:
      vpsagent whoami --json
    """
    from vpsagent.render.auth import render_whoami
    from vpsagent.services import auth

    return render_whoami(app.out, app.ctx.identity(), auth.auth_mode(app.engine))


# --------------------------------------------------------------------------- tokens


@click.group()
def tokens() -> None:
    """API tokens for CI and cron: used through VPSAGENT_TOKEN or --token-file, never a flag.

    \b
    Example:
      vpsagent tokens create ci-deploy --role operator --expires 90d
    """


@tokens.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), help="At most your own role (default: yours).")
@click.option("--expires", metavar="DURATION", help="Lifetime, e.g. 30d, 90d (default), or `never`.")
@pass_app
def tokens_create(app: App, name: str, role: str | None, expires: str | None) -> int:
    """Create a token; it is printed once, on stdout, and stored only as a hash.

    \b
    Example:
      vpsagent tokens create nightly-backup --role viewer --expires 30d > token && chmod 600 token
    """
    from vpsagent.render.auth import render_new_token
    from vpsagent.services import auth

    return render_new_token(app.out, auth.create_token(app.ctx, name, role=role, expires=expires))


@tokens.command("list")
@click.option("--all", "everyone", is_flag=True, help="Everyone's tokens (admins).")
@pass_app
def tokens_list(app: App, everyone: bool) -> int:
    """Your tokens (never the tokens themselves).

    \b
    Example:
      vpsagent tokens list
    """
    from vpsagent.render.auth import render_tokens
    from vpsagent.services import auth

    return render_tokens(app.out, auth.list_tokens(app.ctx, everyone=everyone))


@tokens.command("revoke")
@click.argument("which", metavar="NAME|ID")
@pass_app
def tokens_revoke(app: App, which: str) -> int:
    """Revoke a token at once (admins may revoke anyone's, by id).

    \b
    Example:
      vpsagent tokens revoke ci-deploy
    """
    from vpsagent.services import auth

    tok = auth.revoke_token(app.ctx, which)
    return app.out.emit({"token": tok}, text=lambda _c: app.out.note(f"revoked token {tok.name} ({tok.owner})"))


# --------------------------------------------------------------------------- users


@click.group()
def users() -> None:
    """The people who may use this database, and their roles (viewer, operator, admin).

    The first user added to a database without users becomes its admin.

    \b
    Example:
      vpsagent users add ann@example.com --name Ann --role operator
    """


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), help="Default: viewer.")
@click.option("--name", default="", help="The person's name.")
@pass_app
def users_add(app: App, email: str, role: str | None, name: str) -> int:
    """Add a user (they log in with `vpsagent login EMAIL`).

    \b
    Example:
      vpsagent users add bob@example.com --role viewer
    """
    from vpsagent.render.auth import render_user
    from vpsagent.services import auth

    user, first = auth.add_user(app.ctx, email, role=role, name=name)
    if first and role not in (None, "admin"):
        app.out.note(f"{user.email} is the first user of this database, so its admin")
    return render_user(app.out, user, "added")


@users.command("list")
@pass_app
def users_list(app: App) -> int:
    """Every user, with role and last login.

    \b
    Example:
      vpsagent users list --json
    """
    from vpsagent.render.auth import render_users
    from vpsagent.services import auth

    return render_users(app.out, auth.list_users(app.ctx))


@users.command("edit")
@click.argument("email")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]))
@click.option("--name")
@click.option("--enable", is_flag=True, help="Enable a disabled user.")
@pass_app
def users_edit(app: App, email: str, role: str | None, name: str | None, enable: bool) -> int:
    """Change a user's role or name, or enable them again.

    \b
    Example:
      vpsagent users edit bob@example.com --role operator
    """
    from vpsagent.render.auth import render_user
    from vpsagent.services import auth

    return render_user(app.out, auth.edit_user(app.ctx, email, role=role, name=name, enable=enable), "updated")


@users.command("disable")
@click.argument("email")
@pass_app
def users_disable(app: App, email: str) -> int:
    """Disable a user: no more logins, and their sessions and tokens stop working.

    \b
    Example:
      vpsagent users disable bob@example.com
    """
    from vpsagent.render.auth import render_user
    from vpsagent.services import auth

    return render_user(app.out, auth.edit_user(app.ctx, email, disable=True), "disabled")


# --------------------------------------------------------------------------- auth mode


@click.group(name="auth")
def auth_group() -> None:
    """Whether this database requires a login (stored in the database: every client obeys it).

    \b
    Example:
      vpsagent auth require
    """


@auth_group.command("require")
@pass_app
def auth_require(app: App) -> int:
    """Require a login (or an API token) for everything that touches servers, history or conversations.

    Admins only. Add users first (`vpsagent users add`) and log in as an admin.

    \b
    Example:
      vpsagent auth require
    """
    from vpsagent.services import auth

    mode = auth.set_auth_mode(app.ctx, auth.AuthMode.REQUIRED)
    return app.out.emit({"auth": mode}, text=lambda _c: app.out.note("logins are now required for this database"))


@auth_group.command("off")
@pass_app
def auth_off(app: App) -> int:
    """Stop requiring logins (identity is then the OS user, as for a personal database). Admins only.

    \b
    Example:
      vpsagent auth off
    """
    from vpsagent.services import auth

    mode = auth.set_auth_mode(app.ctx, auth.AuthMode.OFF)
    return app.out.emit({"auth": mode}, text=lambda _c: app.out.note("logins are no longer required"))
