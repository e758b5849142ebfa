"""`vpsagent deploy` and `vpsagent github`: ship a repository to servers (docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import (
    App,
    Limit,
    QuestionGroup,
    RowId,
    pass_app,
    read_stdin_secret,
    selection_options,
)

if TYPE_CHECKING:
    from vpsagent.secret import Secret

@click.command(name="deploy")
@click.argument("target", required=False, metavar="[APP|OWNER/REPO]")
@click.option("--ref", metavar="REF", help="Branch, tag or commit (default: the repository's default branch).")
@selection_options(all_=False)
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Use this deploy config instead of .vpsagent/deploy.yml at the commit.")
@click.option("--dry-run", is_flag=True, help="Show what each server would go through; run nothing.")
@click.option("--canary", type=click.IntRange(min=0), metavar="N", help="Deploy to N servers first and check them.")
@click.option("--serial", type=click.IntRange(min=1), metavar="N", help="Then N servers at a time.")
@click.option("--max-fail", type=click.IntRange(min=0), metavar="N",
              help="Go on to the next batch while at most N servers failed (default 0).")
@click.option("--no-diagnose", is_flag=True, help="After a failure, skip the support checks and the AI note.")
@pass_app
def deploy_command(app: App, target: str | None, ref: str | None, selection: object, config_file: Path | None,
                   dry_run: bool, canary: int | None, serial: int | None, max_fail: int | None,
                   no_diagnose: bool) -> int:
    """Deploy a GitHub repository to servers: a new release, a health check, rollback on failure.

    The config is .vpsagent/deploy.yml in the repository at the deployed commit (docs/deploy.md).
    The archive is downloaded here and uploaded over SFTP: servers need no GitHub access.
    Each server: lock, upload, unpack into releases/<UTC time>-<sha>, link shared paths, build,
    migrate (once), switch `current` atomically, restart, health check; after a failure past the
    switch, `current` goes back to the previous release and the app is restarted, once.
    GitHub gets a Deployment with its statuses.

    \b
    Examples:
      vpsagent github connect acme/shop --token-stdin < token.txt
      vpsagent deploy acme/shop --ref main
      vpsagent deploy shop --ref v1.4.2 -t web --canary 1 --serial 2
      vpsagent deploy shop --dry-run
      vpsagent deploy rollback shop -s web1
      vpsagent deploy list; vpsagent deploy show 7 --json

    Exit codes: 0 deployed · 1 failed (rolled back where it had switched) · 2 bad config ·
    3 GitHub refused the token · 5 a server unreachable · 75 locked · 130 interrupted.
    """
    from vpsagent.render.deploy import StageProgress, render_deploy
    from vpsagent.services import deploy as svc
    from vpsagent.services.fleet import Selection

    assert isinstance(selection, Selection)
    req = svc.DeployRequest(target=target, ref=ref, selection=selection, config_file=config_file, dry_run=dry_run,
                            canary=canary, serial=serial, max_fail=max_fail, diagnose=not no_diagnose)
    return render_deploy(app.out, svc.deploy(app.ctx, req, on_stage=StageProgress(app.out)))


@click.group(cls=QuestionGroup, question=deploy_command, invoke_without_command=True)
def deploy() -> None:
    """Deploy a GitHub repository to servers (see `vpsagent deploy --help`)."""


@deploy.command("validate")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), default=".vpsagent/deploy.yml",
                required=False)
@pass_app
def deploy_validate(app: App, file: Path) -> int:
    """Check a deploy config; every problem as FILE:LINE:COL (exit 2).

    \b
    Example:
      vpsagent deploy validate .vpsagent/deploy.yml
    """
    from vpsagent.render.deploy import render_validated
    from vpsagent.services import deploy as svc

    return render_validated(app.out, svc.validate(file, max_bytes=app.settings.max_file_bytes))


@deploy.command("rollback")
@click.argument("app_name", required=False, metavar="[APP]")
@selection_options(all_=False)
@click.option("--to", "to", metavar="RELEASE", help="A release directory's name (`deploy releases`).")
@pass_app
def deploy_rollback(app: App, app_name: str | None, selection: object, to: str | None) -> int:
    """Go back to an earlier release: switch `current`, restart, check health.

    Without --to: the release before the live one, skipping releases whose deploy failed.
    Without APP: the app last deployed to the chosen servers.

    \b
    Examples:
      vpsagent deploy rollback shop -s web1
      vpsagent deploy rollback -s web1 --to 20261201T101500Z-3f2a9c1
    """
    from vpsagent.render.deploy import StageProgress, render_deploy
    from vpsagent.services import deploy as svc
    from vpsagent.services.fleet import Selection

    assert isinstance(selection, Selection)
    return render_deploy(app.out, svc.rollback(app.ctx, app_name, selection, to=to, on_stage=StageProgress(app.out)))


@deploy.command("releases")
@click.argument("app_name", required=False, metavar="[APP]")
@selection_options(all_=False)
@pass_app
def deploy_releases(app: App, app_name: str | None, selection: object) -> int:
    """The release directories on each server, and which one is live.

    \b
    Example:
      vpsagent deploy releases shop -s web1
    """
    from vpsagent.render.deploy import render_releases
    from vpsagent.services import deploy as svc
    from vpsagent.services.fleet import Selection

    assert isinstance(selection, Selection)
    return render_releases(app.out, svc.releases(app.ctx, app_name, selection))


@deploy.command("list")
@click.option("--app", "app_name", metavar="APP", help="Only this app.")
@click.option("--limit", type=Limit(), default=20, show_default=True)
@pass_app
def deploy_list(app: App, app_name: str | None, limit: int) -> int:
    """Past deploys and rollbacks, newest first.

    \b
    Example:
      vpsagent deploy list --app shop
    """
    from vpsagent.render.deploy import render_list
    from vpsagent.services import deploy as svc

    return render_list(app.out, svc.list_deploys(app.ctx, app=app_name, limit=limit))


@deploy.command("show")
@click.argument("deploy_id", type=RowId("deploy", "`vpsagent deploy list` shows them"), metavar="ID")
@pass_app
def deploy_show(app: App, deploy_id: int) -> int:
    """One deploy: each server's stages, their times and outcomes.

    \b
    Example:
      vpsagent deploy show 7 --json
    """
    from vpsagent.render.deploy import render_show
    from vpsagent.services import deploy as svc

    return render_show(app.out, svc.show_deploy(app.ctx, deploy_id))


@deploy.command("unlock")
@click.argument("app_name", required=False, metavar="[APP]")
@selection_options(all_=False)
@pass_app
def deploy_unlock(app: App, app_name: str | None, selection: object) -> int:
    """Remove a deploy lock left behind by a deploy that died (both in the database and on the server).

    \b
    Example:
      vpsagent deploy unlock shop -s web1
    """
    from vpsagent.render.deploy import render_unlocked
    from vpsagent.services import deploy as svc
    from vpsagent.services.fleet import Selection

    assert isinstance(selection, Selection)
    name = svc.app_for(app.ctx, app_name, selection)
    return render_unlocked(app.out, name, svc.unlock(app.ctx, name, selection))


@deploy.group("secret")
def deploy_secret() -> None:
    """An app's secret environment values (stored encrypted; listed in deploy.yml by name)."""


@deploy_secret.command("set")
@click.argument("app_name", metavar="APP")
@click.argument("name")
@pass_app
def deploy_secret_set(app: App, app_name: str, name: str) -> int:
    """Store a secret value for APP, read from stdin (never from an argument).

    \b
    Example:
      printf %s "$DB_PASSWORD" | vpsagent deploy secret set shop DB_PASSWORD
    """
    from vpsagent.secret import Secret
    from vpsagent.services import deploy as svc

    svc.set_secret(app.ctx, app_name, name, Secret(read_stdin_secret(f"the value of {name}")))
    return app.out.emit({"app": app_name, "name": name}, f"stored {name} for {app_name} (encrypted)")


@deploy_secret.command("list")
@click.argument("app_name", required=False, metavar="[APP]")
@pass_app
def deploy_secret_list(app: App, app_name: str | None) -> int:
    """Names of the stored secrets (never their values)."""
    from vpsagent.render.deploy import render_secrets
    from vpsagent.services import deploy as svc

    return render_secrets(app.out, svc.list_secrets(app.ctx, app_name))


@deploy_secret.command("remove")
@click.argument("app_name", metavar="APP")
@click.argument("name")
@pass_app
def deploy_secret_remove(app: App, app_name: str, name: str) -> int:
    """Forget a secret value."""
    from vpsagent.services import deploy as svc

    svc.remove_secret(app.ctx, app_name, name)
    return app.out.emit({"app": app_name, "name": name, "removed": True}, f"removed {name} of {app_name}")


# --------------------------------------------------------------------------- github


@click.group()
def github() -> None:
    """GitHub repositories to deploy from, with their tokens (stored encrypted)."""


@github.command("connect")
@click.argument("repo", metavar="OWNER/REPO")
@click.option("--token-stdin", is_flag=True, help="Read the token from stdin (else GITHUB_TOKEN, else a prompt).")
@click.option("--name", metavar="APP", help="The name to deploy it by (default: the repository's name).")
@pass_app
def github_connect(app: App, repo: str, token_stdin: bool, name: str | None) -> int:
    """Connect a repository: the token is checked against GitHub, then stored encrypted.

    The token needs to read the repository and write deployments (a fine-grained token
    with Contents: read and Deployments: read/write). GITHUB_API_URL selects GitHub Enterprise.

    \b
    Examples:
      vpsagent github connect acme/shop --token-stdin < token.txt
      GITHUB_TOKEN=... vpsagent github connect acme/shop
    """
    from vpsagent.services import github as svc

    conn = svc.connect(app.ctx, repo, _token(app, token_stdin), name=name)
    return app.out.emit(conn, f"connected {conn.repo} as {conn.name!r} (token checked and stored encrypted)")


def _token(app: App, token_stdin: bool) -> Secret:
    from vpsagent.errors import UsageError
    from vpsagent.secret import Secret

    if token_stdin:
        return Secret(read_stdin_secret("--token-stdin"))
    if app.settings.github_token is not None:
        return app.settings.github_token
    import sys

    if sys.stdin is not None and sys.stdin.isatty():
        value = click.prompt("GitHub token", hide_input=True, err=True).strip()
        if value:
            return Secret(value)
    raise UsageError("no token: pipe it with --token-stdin, or set GITHUB_TOKEN")


@github.command("list")
@pass_app
def github_list(app: App) -> int:
    """Connected repositories (tokens are never shown)."""
    from vpsagent.render.deploy import render_integrations
    from vpsagent.services import github as svc

    return render_integrations(app.out, svc.list_integrations(app.ctx))


@github.command("remove")
@click.argument("which", metavar="NAME|OWNER/REPO")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_app
def github_remove(app: App, which: str, yes: bool) -> int:
    """Forget a connected repository and its token."""
    from vpsagent.cli._prompt import confirm
    from vpsagent.errors import ApprovalRequired
    from vpsagent.services import github as svc

    if not yes and not confirm(app, f"forget {which!r} and its stored token?"):
        raise ApprovalRequired(f"not removing {which!r}", hint="pass --yes to remove without a prompt")
    gone = svc.remove(app.ctx, which)
    return app.out.emit(gone, f"removed {gone.repo} ({gone.name})")
