"""`vpsagent deploy`: ship a GitHub repository to servers (docs/deploy.md).

The order matters, and is the promise: everything that can be refused is refused before
anything changes anywhere — the repository, the ref, the config at that commit, the
servers, the secrets, the lock — then the GitHub Deployment says `in_progress`, the
archive is downloaded once, and the servers go in batches (canary first). Each server's
stages are in services/deploy_flow.py. The outcome is stored (`deploy list`, `deploy
show`), reported to GitHub, and its exit code is the most severe server outcome.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vpsagent import errors
from vpsagent.deploy import server as sh
from vpsagent.deploy.config import CONFIG_PATH, DeployConfig, load_config
from vpsagent.deploy.github import GitHub, short
from vpsagent.jsondata import JSONObject, to_jsonable
from vpsagent.outcomes import DeployOutcome, exit_code_for
from vpsagent.plans.schema import Problem
from vpsagent.secret import Secret
from vpsagent.services.context import Context
from vpsagent.services.deploy_flow import Pipeline, Rollout, ServerDeploy, Stage
from vpsagent.services.fleet import Fleet, Selection, open_fleet
from vpsagent.userfiles import DEFAULT_MAX_BYTES
from vpsagent.wording import plural

STOP_WAIT_S = 15.0  # after Ctrl-C: how long the servers get to stop and release their locks
HOW = "-s NAME or -t TAG (or servers:/tags: in the deploy config)"


@dataclass
class DeployRequest:
    target: str | None = None  # APP (a connected repository's name) or OWNER/REPO
    ref: str | None = None
    selection: Selection = field(default_factory=Selection)
    config_file: Path | None = None
    dry_run: bool = False
    canary: int | None = None
    serial: int | None = None
    max_fail: int | None = None
    diagnose: bool = True  # support evidence (and an AI note with a key) for a failed server


@dataclass
class DeployResult:
    id: int | None
    app: str
    repo: str
    ref: str
    sha: str
    environment: str
    url: str | None
    path: str
    release: str
    status: str  # planned | deployed | failed | interrupted
    servers: list[ServerDeploy]
    kind: str = "deploy"  # deploy | rollback
    github_deployment_id: int | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return exit_code_for([s.outcome for s in self.servers], interrupted=self.status == "interrupted")


@dataclass
class Target:
    """What is to be deployed, resolved and checked before anything changes."""

    repo: str
    gh: GitHub
    ref: str
    sha: str
    cfg: DeployConfig
    config_text: str
    health_text: str | None


# --------------------------------------------------------------------------- resolving


def _read_local(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    from vpsagent.userfiles import read_bounded

    try:
        return read_bounded(path, max_bytes).decode("utf-8")
    except OSError as exc:
        raise errors.InvalidInput(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise errors.InvalidInput(f"{path}: not UTF-8 text") from None


def _text(raw: bytes, what: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    from vpsagent.userfiles import too_big

    if len(raw) > max_bytes:
        raise too_big(what, len(raw), max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidInput(f"{what}: not UTF-8 text") from None


def _repo(ctx: Context, req: DeployRequest, local_app: str | None) -> str:
    from vpsagent.services import github

    repo = github.repo_of(ctx, req.target) or (github.repo_of(ctx, local_app) if local_app else None)
    if repo is None:
        which = f" for {req.target!r}" if req.target else ""
        raise errors.InvalidInput(f"which repository{which}? give OWNER/REPO",
                                  hint="or connect one: `vpsagent github connect OWNER/REPO --token-stdin`")
    return repo


def resolve(ctx: Context, req: DeployRequest) -> Target:
    """The repository, the commit, and the deploy config at that commit (or --config)."""
    from vpsagent.plans.schema import PlanInvalid, validate_text
    from vpsagent.services import github

    limit = ctx.settings.max_file_bytes
    local = _read_local(req.config_file, limit) if req.config_file else None
    local_cfg = load_config(local, str(req.config_file)) if local is not None else None
    repo = _repo(ctx, req, local_cfg.app if local_cfg else None)
    gh = github.client(ctx, repo)
    ref = req.ref or gh.default_branch()
    sha = gh.resolve(ref)
    if local is None:
        raw = gh.file_at(CONFIG_PATH, sha)
        if raw is None:
            raise errors.InvalidInput(f"{repo} has no {CONFIG_PATH} at {sha[:7]} ({ref})",
                                      hint="add one (docs/deploy.md), or pass --config FILE")
        local = _text(raw, CONFIG_PATH, limit)
    cfg = local_cfg or load_config(local, CONFIG_PATH)
    health_text = None
    if cfg.health_plan_path:
        raw = gh.file_at(cfg.health_plan_path, sha)
        if raw is None:
            raise errors.InvalidInput(f"health: plan {cfg.health_plan_path!r} is not in {repo} at {sha[:7]}")
        health_text = _text(raw, cfg.health_plan_path, limit)
        cfg.health, problems = validate_text(health_text, cfg.health_plan_path)
        if problems:
            raise PlanInvalid(problems)
    return Target(repo, gh, ref, sha, cfg, local, health_text)


def _selection(req: DeployRequest, cfg: DeployConfig) -> Selection:
    return req.selection if not req.selection.empty else Selection.of(cfg.servers, cfg.tags)


def _secrets(ctx: Context, app: str, names: Sequence[str]) -> dict[str, str]:
    """The app's secret values the config names, decrypted; a missing one stops the deploy."""
    if not names:
        return {}
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import DeploySecret

    with session_scope(ctx.engine) as s:
        rows = {r.name: (r.id, r.value_enc) for r in s.exec(select(DeploySecret).where(DeploySecret.app == app))}
    missing = [n for n in names if n not in rows]
    if missing:
        raise errors.InvalidInput(f"secret {missing[0]} of {app} is not set",
                                  hint=f"printf %s \"$VALUE\" | vpsagent deploy secret set {app} {missing[0]}")
    keyring = ctx.keyring()
    out = {}
    for n in names:
        rid, env = rows[n]
        assert rid is not None
        out[n] = keyring.decrypt(env, table="deploy_secrets", record_id=rid, field="value_enc").reveal_str()
    return out


# --------------------------------------------------------------------------- the lock


def _holder(ctx: Context) -> str:
    who = ctx.identity()
    user = getpass.getuser()
    return f"{who.email + ' as ' if who.email else ''}{user}@{socket.gethostname()} pid {os.getpid()}"


def _ago(when: datetime) -> str:
    from vpsagent.db.types import utcnow

    s = max(0, int((utcnow() - when).total_seconds()))
    return f"{s}s" if s < 120 else f"{s // 60} min" if s < 7200 else f"{s // 3600} h"


def _stale(holder: str) -> bool:
    """The holder is a process on this machine that no longer runs."""
    m = re.search(r"@(\S+) pid (\d+)$", holder)
    if m is None or m.group(1) != socket.gethostname():
        return False
    try:
        os.kill(int(m.group(2)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lock(ctx: Context, app: str, names: Sequence[str], holder: str, path: str) -> None:
    """Take the database side of the lock for every server at once, or none (exit 75)."""
    from sqlalchemy import delete, insert, select
    from sqlalchemy.exc import IntegrityError

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import deploy_locks as t
    from vpsagent.db.types import utcnow

    try:
        with transaction(ctx.engine) as conn:
            conn.execute(insert(t), [{"app": app, "server": n, "holder": holder, "path": path,
                                      "created_at": utcnow()} for n in names])
        return
    except IntegrityError:
        pass
    with transaction(ctx.engine) as conn:
        row = conn.execute(select(t).where(t.c.app == app, t.c.server.in_(list(names)))).first()
        if row is None:  # released in between: try once more
            conn.execute(delete(t).where(t.c.app == app, t.c.server.in_(list(names)), t.c.holder == holder))
    if row is None:
        return lock(ctx, app, names, holder, path)
    stale = " — that process is gone: the lock is stale" if _stale(row.holder) else ""
    raise errors.Busy(f"{app} on {row.server} is locked by {row.holder} since "
                      f"{row.created_at:%Y-%m-%d %H:%M:%S} UTC ({_ago(row.created_at)} ago){stale}",
                      hint=f"wait for that deploy; if it is gone: vpsagent deploy unlock {app} -s {row.server}",
                      data={"holder": row.holder, "since": row.created_at.isoformat(), "server": row.server})


def _unlock_db(ctx: Context, app: str, names: Sequence[str], holder: str | None = None) -> int:
    from sqlalchemy import delete

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import deploy_locks as t

    cond = [t.c.app == app, t.c.server.in_(list(names))] + ([t.c.holder == holder] if holder else [])
    with transaction(ctx.engine) as conn:
        return conn.execute(delete(t).where(*cond)).rowcount or 0


# --------------------------------------------------------------------------- records


def _stored_config(t: Target) -> str:
    return json.dumps({"deploy.yml": t.config_text, "health": t.health_text, "plan": t.cfg.health_plan_path})


def _record_start(ctx: Context, res: DeployResult, config: str) -> int:
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    who = ctx.identity()
    with session_scope(ctx.engine) as s:
        row = Deploy(kind=res.kind, app=res.app, repo=res.repo, ref=res.ref, sha=res.sha, environment=res.environment,
                     servers=[x.server for x in res.servers], path=res.path, config=config, user_id=who.user_id,
                     user_email=who.email, os_user=who.os_user)
        s.add(row)
        s.flush()
        assert row.id is not None
        return row.id


def _record_end(ctx: Context, res: DeployResult) -> None:
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy
    from vpsagent.db.types import utcnow

    with session_scope(ctx.engine) as s:
        row = s.get(Deploy, res.id)
        if row is None:
            return
        row.status, row.error, row.finished_at = res.status, res.error, utcnow()
        row.github_deployment_id = res.github_deployment_id
        row.results = {x.server: _server_json(x) for x in res.servers}
        s.add(row)


def _server_json(x: ServerDeploy) -> JSONObject:
    data = to_jsonable(x)
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------- deploying


def release_name(sha: str) -> str:
    from vpsagent.db.types import utcnow

    return f"{utcnow():%Y%m%dT%H%M%SZ}-{sha[:7]}"


def batches(names: Sequence[str], canary: int, serial: int | None) -> list[list[str]]:
    """Canary servers first (a batch of their own), then the rest `serial` at a time."""
    first = [list(names[:canary])] if canary else []
    rest = list(names[canary:])
    size = serial or len(rest) or 1
    return first + [rest[i:i + size] for i in range(0, len(rest), size)]


def deploy(ctx: Context, req: DeployRequest, *, on_stage: Callable[[str, Stage], None] | None = None) -> DeployResult:
    t = resolve(ctx, req)
    cfg = t.cfg
    with open_fleet(ctx, _selection(req, cfg), how=HOW, warm=not req.dry_run) as fleet:
        names = list(fleet.names)
        res = DeployResult(None, cfg.app, t.repo, t.ref, t.sha, cfg.environment, cfg.url, cfg.path,
                           release_name(t.sha), "planned", [ServerDeploy(n) for n in names])
        if req.dry_run:
            return _dry_run(t, res)
        secrets = _secrets(ctx, cfg.app, cfg.secrets)
        fleet.also_redact([t.gh.token, *(Secret(v) for v in secrets.values())])
        holder = _holder(ctx)
        lock(ctx, cfg.app, names, holder, cfg.path)
        try:
            res.id = _record_start(ctx, res, _stored_config(t))
            rollout = Rollout(fleet, cfg, t.repo, t.ref, t.sha, res.release, f"{holder} deploy #{res.id}",
                              None, secrets, on_stage=on_stage or (lambda _n, _s: None))
            _go(ctx, t, req, rollout, res)
            if req.diagnose:
                _diagnose(ctx, fleet, res)
            return res
        finally:
            _unlock_db(ctx, cfg.app, names, holder)


def _go(ctx: Context, t: Target, req: DeployRequest, rollout: Rollout, res: DeployResult) -> None:
    """GitHub's in_progress, the archive, the batches; the record and GitHub's last word on every path."""
    cfg = t.cfg
    res.status = "running"
    try:
        res.github_deployment_id = t.gh.start_deployment(t.sha, t.ref, cfg.environment,
                                                         f"vpsagent: {cfg.app} to {', '.join(x.server for x in res.servers)}")
        t.gh.set_status(res.github_deployment_id, "in_progress", f"deploying {t.sha[:7]}")
        if cfg.source == "archive":
            rollout.archive = t.gh.archive(t.sha)
        _batches(rollout, res, req.canary if req.canary is not None else cfg.canary,
                 req.serial if req.serial is not None else cfg.serial,
                 req.max_fail if req.max_fail is not None else cfg.max_fail)
    except KeyboardInterrupt:
        res.status, res.error = "interrupted", "interrupted (Ctrl-C)"
        _report(ctx, t, res)
        raise
    except BaseException as exc:
        res.status = "failed"
        res.error = exc.line() if isinstance(exc, errors.VpsAgentError) else f"{type(exc).__name__}: {exc}"
        _report(ctx, t, res)
        raise
    failed = [x for x in res.servers if x.outcome != DeployOutcome.DEPLOYED]
    res.status = "deployed" if not failed else "failed"
    res.error = next((x.error for x in failed if x.error), None) or next(
        (x.error for x in res.servers if x.error), None)
    _report(ctx, t, res)


def _report(ctx: Context, t: Target, res: DeployResult) -> None:
    """The record and GitHub's status; neither may hide the deploy's own outcome."""
    if res.github_deployment_id is not None:
        if res.status == "deployed":
            t.gh.set_status(res.github_deployment_id, "success",
                            short(f"deployed {t.sha[:7]} to {', '.join(x.server for x in res.servers)}"),
                            environment_url=t.cfg.url)
        else:
            state = "error" if res.status == "interrupted" else "failure"
            t.gh.set_status(res.github_deployment_id, state, short(res.error or res.status))
    _record_end(ctx, res)


def _batches(r: Rollout, res: DeployResult, canary: int, serial: int | None, max_fail: int) -> None:
    by_name = {x.server: i for i, x in enumerate(res.servers)}
    failures = 0
    groups = batches([x.server for x in res.servers], canary, serial)
    for n, group in enumerate(groups):
        for sd in _batch(r, group):
            res.servers[by_name[sd.server]] = sd
            failures += sd.outcome != DeployOutcome.DEPLOYED
        why = ("the canary failed" if n == 0 and canary and failures
               else f"more than {max_fail} server(s) failed" if failures > max_fail else None)
        if why and n + 1 < len(groups):
            for later in groups[n + 1:]:
                for name in later:
                    res.servers[by_name[name]].outcome = DeployOutcome.SKIPPED
                    res.servers[by_name[name]].error = f"not deployed: {why}"
            return


def _batch(r: Rollout, names: Sequence[str], pipeline: Callable[[str], Pipeline] | None = None
           ) -> list[ServerDeploy]:
    """One batch, each server in its own thread; Ctrl-C stops them and lets them unlock."""
    make = pipeline or (lambda n: Pipeline(r, n))
    pool = ThreadPoolExecutor(max_workers=len(names))
    futures: list[Future[ServerDeploy]] = [pool.submit(make(n).run) for n in names]
    try:
        return [f.result() for f in futures]
    except KeyboardInterrupt:
        r.cancel.set()
        r.fleet.interrupt()
        try:
            wait(futures, timeout=STOP_WAIT_S)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: leave now (`deploy unlock` for what stays locked)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _dry_run(t: Target, res: DeployResult) -> DeployResult:
    """What each server would go through, with the commands as they would run."""
    for x in res.servers:
        x.outcome = DeployOutcome.PLANNED
        x.stages = [Stage(name, "planned", 0.0, what) for name, what in _planned(t, res, x.server) if what]
    return res


def _planned(t: Target, res: DeployResult, server: str) -> list[tuple[str, str]]:
    cfg = t.cfg
    path = cfg.path_for(server)
    return [
        ("lock", f"take {path}/{sh.LOCK_DIR}"),
        ("fetch", f"upload the archive of {t.repo}@{t.sha[:7]} over SFTP" if cfg.source == "archive"
         else f"git clone {cfg.git_url or t.repo} at {t.sha[:7]} on the server"),
        ("unpack", f"into {path}/releases/{res.release}" if cfg.source == "archive" else ""),
        ("shared", ", ".join(cfg.shared_files + [d + "/" for d in cfg.shared_dirs])),
        ("env", ", ".join(sorted([*cfg.env, *cfg.secrets]))),
        ("before", "; ".join(cfg.hooks.get("before", []))),
        ("build", "; ".join(cfg.build)),
        ("migrate", f"{cfg.migrate} (once, on the first server)" if cfg.migrate else ""),
        ("switch", f"current -> {path}/releases/{res.release}"), ("restart", cfg.restart or ""),
        ("health", f"{plural(len(cfg.health.steps), 'step')} of {cfg.health.name}" if cfg.health else ""),
        ("after", "; ".join(cfg.hooks.get("after", []))), ("cleanup", f"keep {cfg.keep_releases} releases"),
    ]


def _diagnose(ctx: Context, fleet: Fleet, res: DeployResult) -> None:
    """For each server that failed (and can be reached): what the support checks find there,
    and, with an API key, a short root-cause note from the model (read-only)."""
    from vpsagent.services import support
    from vpsagent.services.ask import AskRequest, ask

    for x in res.servers:
        if x.outcome not in (DeployOutcome.FAILED, DeployOutcome.ROLLED_BACK):
            continue
        try:
            findings, evidence = support.evidence_for(ctx, fleet, x.server)
        except errors.VpsAgentError:
            continue
        x.findings = [f"[{f.severity}] {f.title}" for f in findings]
        if ctx.settings.anthropic_api_key is None:
            continue
        prompt = (f"A deploy of {res.app} ({res.sha[:7]}) failed on {x.server}: {x.error}\n"
                  "In at most five sentences: the most likely root cause, and what to check or change. "
                  "Use read-only commands if you need to look.")
        req = AskRequest(prompt=prompt, context=f"End of the failed step's output:\n{x.output}\n{evidence}",
                         servers=[x.server], mode="read_only", kind="support", max_turns=6)
        try:
            x.diagnosis = ask(ctx, req, fleet=fleet).answer.strip() or None
        except errors.VpsAgentError as exc:
            x.diagnosis = f"no diagnosis: {exc.line()}"
    _record_end(ctx, res)


# --------------------------------------------------------------------------- after the fact


def _parse_stored(config: str) -> DeployConfig:
    from vpsagent.plans.schema import validate_text

    stored = json.loads(config)
    cfg = load_config(stored["deploy.yml"], CONFIG_PATH)
    if stored.get("health"):
        cfg.health, _problems = validate_text(stored["health"], stored.get("plan") or "health")
    return cfg


def _release_configs(ctx: Context, app: str) -> dict[str, DeployConfig]:
    """The config each release on record was deployed with (a rollback restarts and checks a
    release the way it was deployed)."""
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    out: dict[str, DeployConfig] = {}
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(Deploy).where(Deploy.app == app, Deploy.kind == "deploy", col(Deploy.config).is_not(None))
                      .order_by(col(Deploy.id).desc()).limit(100)).all()
        stored = [(r.config, {str(v["release"]) for v in (r.results or {}).values()
                              if isinstance(v, dict) and v.get("release")}) for r in rows]
    for config, names in stored:
        try:
            cfg = _parse_stored(config or "")
        except (errors.VpsAgentError, ValueError, KeyError):
            continue
        for n in names:
            out.setdefault(n, cfg)
    return out


def _last_config(ctx: Context, app: str) -> tuple[str, DeployConfig, str | None]:
    """The config of the app's last successful deploy (the last one at all, failing that)."""
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    with session_scope(ctx.engine) as s:
        rows = s.exec(select(Deploy).where(Deploy.app == app, col(Deploy.config).is_not(None))
                      .order_by(col(Deploy.id).desc()).limit(50)).all()
        row = next((r for r in rows if r.status == "deployed"), rows[0] if rows else None)
        if row is None or row.config is None:
            raise errors.NotFound(f"no deploy of {app!r} on record", hint="`vpsagent deploy list`")
        repo, config = row.repo, row.config
    return repo, _parse_stored(config), json.loads(config).get("health")


def app_for(ctx: Context, app: str | None, selection: Selection) -> str:
    """The app a command means: as given, or the one last deployed to the chosen servers."""
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    if app:
        return app
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(Deploy).order_by(col(Deploy.id).desc()).limit(200)).all()
        apps = {r.app for r in rows if selection.empty or set(r.servers) & set(selection.names)}
    if len(apps) != 1:
        which = "no app has been deployed there" if not apps else f"several apps: {', '.join(sorted(apps))}"
        raise errors.UsageError(f"which app? {which}", hint="name it: vpsagent deploy COMMAND APP -s SERVER")
    return apps.pop()


def _failed_releases(ctx: Context, app: str) -> dict[str, set[str]]:
    """Per server, the releases a deploy recorded as failed (a rollback skips them)."""
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    out: dict[str, set[str]] = {}
    with session_scope(ctx.engine) as s:
        for row in s.exec(select(Deploy).where(Deploy.app == app, Deploy.kind == "deploy")):
            for server, r in (row.results or {}).items():
                if isinstance(r, dict) and r.get("outcome") != "deployed" and isinstance(r.get("release"), str):
                    out.setdefault(server, set()).add(str(r["release"]))
    return out


def rollback(ctx: Context, app: str | None, selection: Selection, *, to: str | None = None,
             on_stage: Callable[[str, Stage], None] | None = None) -> DeployResult:
    """Back to an earlier release on each chosen server (restart, health check), recorded as a deploy."""
    from vpsagent.services.deploy_flow import RollbackPipeline

    name = app_for(ctx, app, selection)
    repo, cfg, health = _last_config(ctx, name)
    sel = selection if not selection.empty else Selection.of(cfg.servers, cfg.tags)
    with open_fleet(ctx, sel, how=HOW, warm=True) as fleet:
        names = list(fleet.names)
        secrets = _secrets(ctx, cfg.app, cfg.secrets)
        fleet.also_redact(Secret(v) for v in secrets.values())
        res = DeployResult(None, cfg.app, repo, "", "", cfg.environment, cfg.url, cfg.path, to or "",
                           "running", [ServerDeploy(n) for n in names], kind="rollback")
        holder = _holder(ctx)
        lock(ctx, cfg.app, names, holder, cfg.path)
        try:
            res.id = _record_start(ctx, res, json.dumps({"deploy.yml": _config_text(ctx, name), "health": health}))
            rollout = Rollout(fleet, cfg, repo, "", "", "", f"{holder} rollback #{res.id}", None, secrets,
                              on_stage=on_stage or (lambda _n, _s: None))
            failed, configs = _failed_releases(ctx, name), _release_configs(ctx, name)
            try:
                res.servers = _batch(rollout, names,
                                     lambda n: RollbackPipeline(rollout, n, to, failed.get(n, set()), configs))
            except KeyboardInterrupt:
                res.status = "interrupted"
                _record_end(ctx, res)
                raise
            res.status = "deployed" if all(x.outcome == DeployOutcome.DEPLOYED for x in res.servers) else "failed"
            res.error = next((x.error for x in res.servers if x.error), None)
            res.sha = next((x.release.rsplit("-", 1)[-1] for x in res.servers if x.release), "")
            _record_end(ctx, res)
            return res
        finally:
            _unlock_db(ctx, cfg.app, names, holder)


def _config_text(ctx: Context, app: str) -> str:
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    with session_scope(ctx.engine) as s:
        row = s.exec(select(Deploy).where(Deploy.app == app, col(Deploy.config).is_not(None))
                     .order_by(col(Deploy.id).desc())).first()
        return str(json.loads(row.config)["deploy.yml"]) if row is not None and row.config else ""


@dataclass
class ServerReleases:
    server: str
    path: str
    current: str | None = None
    releases: list[JSONObject] = field(default_factory=list)
    error: str | None = None


def releases(ctx: Context, app: str | None, selection: Selection) -> list[ServerReleases]:
    """The release directories on each server, which one is live, and what the record says of each."""
    name = app_for(ctx, app, selection)
    _repo_name, cfg, _health = _last_config(ctx, name)
    failed = _failed_releases(ctx, name)
    sel = selection if not selection.empty else Selection.of(cfg.servers, cfg.tags)
    out = []
    with open_fleet(ctx, sel, how=HOW) as fleet:
        for server in fleet.names:
            entry = ServerReleases(server, cfg.path_for(server))
            try:
                result = fleet.run(server, sh.list_releases(entry.path), source="deploy", timeout=60)
            except errors.Unreachable as exc:
                entry.error = exc.line()
                out.append(entry)
                continue
            names, entry.current = sh.parse_releases(result.stdout_text())
            entry.releases = [{"name": n, "sha": n.rsplit("-", 1)[-1], "current": n == entry.current,
                               "failed": n in failed.get(server, set())} for n in reversed(names)]
            out.append(entry)
    return out


@dataclass
class Unlocked:
    server: str
    database: bool  # a lock row was removed
    on_server: bool | None  # the lock directory was there and is gone (None: could not look)
    error: str | None = None


def unlock(ctx: Context, app: str | None, selection: Selection) -> list[Unlocked]:
    """Remove a deploy lock left behind (a killed vpsagent, a lost machine): both sides."""
    from sqlalchemy import select

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import deploy_locks as t

    name = app_for(ctx, app, selection)
    with transaction(ctx.engine) as conn:
        rows = {r.server: r.path for r in conn.execute(select(t).where(t.c.app == name))}
    servers = list(selection.names) or sorted(rows)
    if not servers:
        raise errors.NotFound(f"no deploy lock of {name!r} on record", hint="name the server: -s SERVER")
    try:
        default_path = _last_config(ctx, name)[1].path
    except errors.NotFound:
        default_path = f"/srv/{name}"
    rows = {server: path.replace("{server}", server) for server, path in rows.items()}
    default_path_of = {s: default_path.replace("{server}", s) for s in servers}
    out = []
    with open_fleet(ctx, Selection.of(servers), how=HOW) as fleet:
        for server in fleet.names:
            removed = _unlock_db(ctx, name, [server]) > 0
            path = rows.get(server) or default_path_of[server]
            lock_dir = f"{sh.spell(path)}/{sh.LOCK_DIR}"
            try:
                r = fleet.run(server, f"if [ -d {lock_dir} ]; then {sh.release_lock(path)}; echo removed; fi",
                              source="deploy", timeout=60)
                out.append(Unlocked(server, removed, "removed" in r.stdout_text()))
            except errors.Unreachable as exc:
                out.append(Unlocked(server, removed, None, exc.line()))
    return out


# --------------------------------------------------------------------------- list and show


def _summary(row: object) -> JSONObject:
    from vpsagent.db.models import Deploy

    assert isinstance(row, Deploy)
    took = (row.finished_at - row.created_at).total_seconds() if row.finished_at else None
    return {"id": row.id, "kind": row.kind, "app": row.app, "repo": row.repo, "ref": row.ref, "sha": row.sha,
            "environment": row.environment, "status": row.status, "servers": list(row.servers),
            "by": row.user_email or row.os_user, "created_at": row.created_at.isoformat(),
            "duration_s": round(took, 3) if took is not None else None,
            "github_deployment_id": row.github_deployment_id, "error": row.error}


def list_deploys(ctx: Context, *, app: str | None = None, limit: int = 20) -> list[JSONObject]:
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    with session_scope(ctx.engine) as s:
        q = select(Deploy).order_by(col(Deploy.id).desc()).limit(limit)
        if app:
            q = q.where(Deploy.app == app)
        return [_summary(r) for r in s.exec(q).all()]


def show_deploy(ctx: Context, deploy_id: int) -> JSONObject:
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Deploy

    with session_scope(ctx.engine) as s:
        row = s.get(Deploy, deploy_id)
        if row is None:
            raise errors.NotFound(f"no deploy #{deploy_id}", hint="`vpsagent deploy list`")
        data = _summary(row)
        data["path"] = row.path
        results = row.results or {}
        data["servers"] = [{"server": n, **(results[n] if isinstance(results.get(n), dict) else
                                            {"outcome": row.status, "stages": []})} for n in row.servers]
        return data


# --------------------------------------------------------------------------- secrets and validate


def set_secret(ctx: Context, app: str, name: str, value: Secret) -> None:
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import DeploySecret
    from vpsagent.deploy.config import APP_RE, ENV_NAME_RE

    if not APP_RE.match(app):
        raise errors.InvalidInput(f"{app!r} is not an app name (lower-case letters, digits, '-')")
    if not ENV_NAME_RE.match(name):
        raise errors.InvalidInput(f"{name!r} is not a variable name")
    keyring = ctx.keyring()
    with session_scope(ctx.engine) as s:
        row = s.exec(select(DeploySecret).where(DeploySecret.app == app, DeploySecret.name == name)).first()
        row = row or DeploySecret(app=app, name=name, value_enc="")
        s.add(row)
        s.flush()  # the id is part of the envelope
        assert row.id is not None
        row.value_enc = keyring.encrypt(value.reveal_bytes(), table="deploy_secrets", record_id=row.id,
                                        field="value_enc")
        s.add(row)


def list_secrets(ctx: Context, app: str | None = None) -> list[JSONObject]:
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import DeploySecret

    with session_scope(ctx.engine) as s:
        q = select(DeploySecret).order_by(DeploySecret.app, DeploySecret.name)
        if app:
            q = q.where(DeploySecret.app == app)
        return [{"app": r.app, "name": r.name, "set_at": r.created_at.isoformat()} for r in s.exec(q).all()]


def remove_secret(ctx: Context, app: str, name: str) -> None:
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import DeploySecret

    with session_scope(ctx.engine) as s:
        row = s.exec(select(DeploySecret).where(DeploySecret.app == app, DeploySecret.name == name)).first()
        if row is None:
            raise errors.NotFound(f"{app} has no secret {name}")
        s.delete(row)


@dataclass
class Validated:
    file: str
    config: DeployConfig | None  # None when there are problems
    problems: list[Problem]


def validate(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Validated:
    """Every problem of a deploy config (and of a `health: plan:` file in the same repository)."""
    from vpsagent.deploy.config import parse_config
    from vpsagent.plans.schema import validate_text

    cfg, problems = parse_config(_read_local(path, max_bytes), str(path))
    if cfg is not None and cfg.health_plan_path:
        here = path.resolve().parent
        root = here.parent if here.name == ".vpsagent" else here
        plan_file = root / cfg.health_plan_path
        if not plan_file.is_file():
            problems = [Problem(str(path), 1, 1, f"health: plan {cfg.health_plan_path!r} is not at {plan_file}")]
        else:
            cfg.health, problems = validate_text(_read_local(plan_file, max_bytes), str(plan_file))
    return Validated(str(path), None if problems else cfg, problems)
