"""One server's deploy: the stages in order, each timed and recorded, and on a failure
after the switch the way back (once, never in a loop).

    lock     create PATH, take the server's lock, learn the live release
    fetch    upload the archive over SFTP (or `git clone` on the server)
    unpack   into releases/<UTC time>-<short sha>
    shared   link PATH/shared/ files and directories into the release
    env      write the release's env file (env: and secrets; 0600)
    before   hooks
    build    the build commands, in the release
    migrate  once per deploy, on the first server to get here; the others wait for it
    switch   `current` -> the release, atomically
    restart  the restart command, in the release
    health   the health plan (the test-plan engine), with its retries
    after    hooks
    cleanup  releases beyond keep_releases removed

Every command goes through the fleet's audited run with source `deploy`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from vpsagent import errors
from vpsagent.deploy import server as sh
from vpsagent.deploy.config import DeployConfig
from vpsagent.outcomes import CommandStatus, DeployOutcome, StepStatus
from vpsagent.remote.base import CommandResult
from vpsagent.services.fleet import Fleet
from vpsagent.wording import plural

T = TypeVar("T")

BUILD_TIMEOUT = 30 * 60.0  # a build, a migration, a hook
RESTART_TIMEOUT = 5 * 60.0
STEP_TIMEOUT = 2 * 60.0  # the deploy's own bookkeeping commands
UPLOAD_TIMEOUT = 30 * 60.0
DETAIL_TAIL = 2000  # characters of a failed command's output kept with its stage


@dataclass
class Stage:
    name: str
    outcome: str  # a StepStatus, or "planned" in a dry run
    duration_s: float = 0.0
    detail: str = ""  # why it failed (with the end of its output), why skipped, or what it would run


@dataclass
class ServerDeploy:
    server: str
    outcome: DeployOutcome = DeployOutcome.RUNNING
    release: str | None = None
    previous: str | None = None
    stages: list[Stage] = field(default_factory=list)
    error: str | None = None  # the failed stage and why, in one line
    output: str = ""  # the end of the failed command's output
    findings: list[str] = field(default_factory=list)  # what the support checks found after a failure
    diagnosis: str | None = None  # the model's root-cause note, when a key is set


@dataclass
class Rollout:
    """What every server's pipeline shares: the deploy, and the coordination between servers."""

    fleet: Fleet
    cfg: DeployConfig
    repo: str
    ref: str
    sha: str
    release: str
    holder: str
    archive: bytes | None  # None: `source: git`
    secrets: Mapping[str, str]
    cancel: threading.Event = field(default_factory=threading.Event)
    on_stage: Callable[[str, Stage], None] = lambda _server, _stage: None
    _migrate_lock: threading.Lock = field(default_factory=threading.Lock)
    _migrated_on: str | None = None
    _migrate_error: str | None = None


class StageFailed(Exception):
    def __init__(self, reason: str, output: str = "") -> None:
        super().__init__(reason)
        self.reason, self.output = reason, output


class Stopped(Exception):
    """The deploy was interrupted (Ctrl-C): no further stage starts."""


def _tail(text: str, limit: int = DETAIL_TAIL) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


class Pipeline:
    """The stages of one server, run by `run()` in a worker thread."""

    def __init__(self, rollout: Rollout, name: str) -> None:
        self.r, self.name = rollout, name
        self.release = rollout.release  # a rollback goes to a release of its own per server
        self.cfg = rollout.cfg  # ... with the config that release was deployed with
        self.sd = ServerDeploy(name, release=rollout.release)
        self.base = ""
        self.switched = False
        self.locked = False

    # -- running things ----------------------------------------------------------------
    def variables(self) -> dict[str, str]:
        rel = f"{self.base}/releases/{self.release}"
        prev = f"{self.base}/releases/{self.sd.previous}" if self.sd.previous else ""
        return {"APP": self.cfg.app, "ENVIRONMENT": self.cfg.environment, "REF": self.r.ref,
                "SHA": self.r.sha or self.release.rsplit("-", 1)[-1],
                "RELEASE": rel, "RELEASE_NAME": self.release, "PREVIOUS_RELEASE": prev, "DEPLOY_PATH": self.base,
                "SERVER": self.name}

    def sh(self, command: str, *, timeout: float = STEP_TIMEOUT, what: str | None = None) -> CommandResult:
        """An audited command; a failure raises StageFailed with its output's end."""
        result = self.r.fleet.run(self.name, command, source="deploy", timeout=timeout)
        if result.status == CommandStatus.INTERRUPTED or self.r.cancel.is_set():
            raise Stopped
        if not result.ok:
            redact = self.r.fleet.redactor.redact
            output = redact(_tail(result.stderr_text() + "\n" + result.stdout_text()))
            label = what or command
            why = f"exit {result.exit_code}" if result.exit_code is not None else (result.error or result.status)
            raise StageFailed(f"`{label}` {why}" + (f": {output.splitlines()[-1]}" if output else ""), output)
        return result

    def in_release(self, command: str, *, where: str | None = None, timeout: float = BUILD_TIMEOUT,
                   extra: Mapping[str, str] | None = None) -> CommandResult:
        where = where or f"{self.base}/releases/{self.release}"
        return self.sh(sh.in_release(where, command, {**self.variables(), **(extra or {})}), timeout=timeout,
                       what=command)

    def stage(self, name: str, fn: Callable[[], T]) -> T:
        if self.r.cancel.is_set():
            raise Stopped
        started = time.monotonic()
        try:
            try:
                value = fn()
            except errors.Interrupted:
                raise Stopped from None
            except errors.VpsAgentError as exc:
                if isinstance(exc, errors.Unreachable):
                    raise
                raise StageFailed(exc.line()) from None  # an SFTP write refused, a disk full: this stage failed
        except StageFailed as exc:
            self._record(Stage(name, StepStatus.FAILED, time.monotonic() - started, exc.reason))
            raise
        except errors.Unreachable as exc:
            self._record(Stage(name, StepStatus.ERROR, time.monotonic() - started, exc.line()))
            raise
        except Stopped:
            self._record(Stage(name, StepStatus.ERROR, time.monotonic() - started, "interrupted"))
            raise
        self._record(Stage(name, StepStatus.PASSED, time.monotonic() - started))
        return value

    def skip(self, name: str, why: str) -> None:
        self._record(Stage(name, StepStatus.SKIPPED, 0.0, why))

    def _record(self, stage: Stage) -> None:
        stage.duration_s = round(stage.duration_s, 3)
        self.sd.stages.append(stage)
        self.r.on_stage(self.name, stage)

    # -- the whole thing ---------------------------------------------------------------
    def run(self) -> ServerDeploy:
        try:
            self.stage("lock", self._lock)
            try:
                self._prepare()
                self._go_live()
                self.sd.outcome = DeployOutcome.DEPLOYED
                self._cleanup()
            except StageFailed as exc:
                self._failed(exc)
            finally:
                self._unlock()
        except StageFailed as exc:  # the lock: nothing was touched
            self.sd.outcome, self.sd.error, self.sd.output = DeployOutcome.FAILED, f"lock: {exc.reason}", exc.output
        except errors.Unreachable as exc:
            self.sd.outcome = DeployOutcome.UNREACHABLE
            self.sd.error = f"{'after the switch, ' if self.switched else ''}{exc.line()}"
        except Stopped:
            self.sd.outcome = DeployOutcome.INTERRUPTED
            self.sd.error = (f"interrupted after the switch: {self.release} is live but was not checked "
                             "(`vpsagent deploy rollback` to go back)" if self.switched
                             else "interrupted before the switch: the live release did not change")
        return self.sd

    def _lock(self) -> None:
        try:
            out = self.sh(sh.open_app(self.cfg.path_for(self.name), self.r.holder), what="take the deploy lock")
        except StageFailed as exc:
            if "held by:" in exc.output:
                raise StageFailed(f"another deploy holds {self.cfg.path_for(self.name)}/{sh.LOCK_DIR} on {self.name}: "
                                  + exc.output.split("held by:", 1)[1].strip().splitlines()[0],
                                  exc.output) from None
            raise
        self.locked = True
        lines = out.stdout_text().splitlines()
        self.base = lines[0].strip()
        current = lines[1].strip() if len(lines) > 1 else ""
        self.sd.previous = current.rstrip("/").rsplit("/", 1)[-1] if current else None

    def _unlock(self) -> None:
        if not self.locked:
            return
        try:  # a new command on the same connection; after Ctrl-C too
            self.r.fleet.run(self.name, sh.release_lock(self.base), source="deploy", timeout=30)
            self.locked = False
        except (errors.VpsAgentError, OSError):
            pass  # reported by `deploy unlock`'s hint when the next deploy meets it

    def _prepare(self) -> None:
        cfg = self.cfg
        self.stage("fetch", self._fetch)
        if self.r.archive is not None:
            self.stage("unpack", lambda: self.sh(sh.unpack(self.base, self.release, self._upload_path())))
        shared = sh.link_shared(self.base, self.release, cfg.shared_files, cfg.shared_dirs)
        if shared:
            self.stage("shared", lambda: self.sh(shared, what="link the shared files and directories"))
        if cfg.env or self.r.secrets:
            self.stage("env", self._env)
        self._hooks("before")
        if cfg.build:
            self.stage("build", lambda: [self.in_release(c) for c in cfg.build])
        else:
            self.skip("build", "no build commands")
        if cfg.migrate:
            self._migrate(cfg.migrate)

    def _upload_path(self) -> str:
        return f"{self.base}/releases/.{self.release}.tar.gz"

    def _fetch(self) -> None:
        if self.r.archive is None:
            url = self.cfg.git_url or f"https://github.com/{self.r.repo}.git"
            self.sh(sh.clone(self.base, self.release, url, self.r.sha), timeout=UPLOAD_TIMEOUT)
            return
        data, path = self.r.archive, self._upload_path()
        host = self.r.fleet.host(self.name)
        self.r.fleet.operation(self.name, f"upload {self.r.repo}@{self.r.sha[:7]} ({len(data)} bytes) to {path}",
                               lambda: host.upload(path, data, mode=0o600), source="deploy")

    def _env(self) -> None:
        values = {**self.cfg.env, **self.r.secrets}
        path = f"{self.base}/releases/{self.release}/{sh.ENV_FILE}"
        host = self.r.fleet.host(self.name)
        names = ", ".join(sorted(values))
        self.r.fleet.operation(self.name, f"write {path} ({names}; values not recorded)",
                               lambda: host.write_file(path, sh.env_file(values), mode=0o600), source="deploy")

    def _hooks(self, which: str, *, where: str | None = None, extra: Mapping[str, str] | None = None) -> None:
        commands = self.cfg.hooks.get(which, [])
        if commands:
            self.stage(which, lambda: [self.in_release(c, where=where, extra=extra) for c in commands])

    def _migrate(self, command: str) -> None:
        """Once per deploy: the first server here runs it, the others wait and go on (or fail) with it."""
        with self.r._migrate_lock:
            if self.r._migrated_on is None and self.r._migrate_error is None:
                try:
                    self.stage("migrate", lambda: self.in_release(command))
                    self.r._migrated_on = self.name
                except StageFailed as exc:
                    self.r._migrate_error = f"{self.name}: {exc.reason}"
                    raise
                return
        if self.r._migrate_error is not None:
            self.stage("migrate", lambda: _raise(StageFailed(f"the migration failed on {self.r._migrate_error}")))
        self.skip("migrate", f"ran once, on {self.r._migrated_on}")

    def _go_live(self) -> None:
        cfg = self.cfg

        def switch() -> None:
            self.sh(sh.switch(self.base, self.release), what=f"point current at {self.release}")
            self.switched = True

        self.stage("switch", switch)
        if cfg.restart:
            self.stage("restart", lambda: self.in_release(cfg.restart or "", timeout=RESTART_TIMEOUT))
        else:
            self.skip("restart", "no restart command")
        if cfg.health is not None:
            self.stage("health", self._health)
        else:
            self.skip("health", "no health check in the deploy config: a broken release cannot be noticed")
        try:
            self._hooks("after")
        except StageFailed as exc:  # the release is live and healthy: a failed notification does not undo it
            self.sd.error = f"after hook failed on {self.name}: {exc.reason}"

    def _health(self) -> None:
        from vpsagent.plans.runner import run_plan

        assert self.cfg.health is not None
        result = run_plan(self.cfg.health, [self.name], open_host=self.r.fleet,
                          execute=self.r.fleet.executor("deploy"), cancel=self.r.cancel,
                          overrides={k.lower(): v for k, v in self.variables().items()})
        if self.r.cancel.is_set():
            raise Stopped
        srv = result.servers[0]
        if srv.status == "unreachable":
            raise errors.Unreachable(srv.error or f"{self.name}: unreachable during the health check")
        bad = [s for s in srv.steps if s.status in ("failed", "error")]
        if bad:
            st = bad[0]
            out = self.r.fleet.redactor.redact(_tail(f"{st.stderr}\n{st.stdout}".strip()))
            raise StageFailed(f"health check failed: {st.name}: {st.message}", out)

    def _cleanup(self) -> None:
        keep = self.cfg.keep_releases

        def clean() -> None:
            names, current = sh.parse_releases(self.sh(sh.list_releases(self.base)).stdout_text())
            extra = [n for n in names[:-keep] if n != current] if len(names) > keep else []
            command = sh.remove_releases(self.base, extra)
            if command:
                self.sh(command, what=f"remove {plural(len(extra), 'old release')}")

        try:
            self.stage("cleanup", clean)
        except StageFailed:
            pass  # deployed and healthy: an old release left over is not a failed deploy

    # -- the way back ------------------------------------------------------------------
    def _failed(self, exc: StageFailed) -> None:
        stage = self.sd.stages[-1].name if self.sd.stages else "deploy"
        self.sd.error, self.sd.output = f"{stage} failed on {self.name}: {exc.reason}", exc.output
        self.sd.outcome = DeployOutcome.FAILED
        if self.switched:
            self._roll_back()
        failed = f"{self.base}/releases/{self.release}"
        try:
            self._hooks("on_failure", where=failed if stage not in ("fetch", "unpack") else self.base,
                        extra={"FAILED_STAGE": stage})
        except StageFailed:
            pass  # recorded as a stage; the deploy already failed

    def _roll_back(self) -> None:
        prev = self.sd.previous

        def back() -> None:
            if prev is None:  # a first deploy: nothing to go back to, so nothing stays live
                self.sh(sh.unlink_current(self.base), what="remove current (no earlier release)")
                return
            self.sh(sh.switch(self.base, prev), what=f"point current back at {prev}")
            if self.cfg.restart:
                self.in_release(self.cfg.restart, where=f"{self.base}/releases/{prev}", timeout=RESTART_TIMEOUT)

        try:
            self.stage("rollback", back)
            self.sd.outcome = DeployOutcome.ROLLED_BACK
            self.sd.error = f"{self.sd.error}; rolled back to {prev or 'no release'}"
        except StageFailed as exc:
            self.sd.error = f"{self.sd.error}; the rollback failed too: {exc.reason}"


class RollbackPipeline(Pipeline):
    """`deploy rollback`: back to an earlier release that is still on the server (the one
    before the live one that did not fail, or --to NAME), restart, and check its health."""

    def __init__(self, rollout: Rollout, name: str, to: str | None, failed: set[str],
                 configs: Mapping[str, DeployConfig]) -> None:
        super().__init__(rollout, name)
        self.to, self.failed, self.configs = to, failed, configs

    def run(self) -> ServerDeploy:
        try:
            self.stage("lock", self._lock)
            try:
                self.release = self.stage("choose", self._choose)
                self.sd.release = self.release
                # the release's own restart command and health check (not the newer one's)
                self.cfg = self.configs.get(self.release, self.cfg)
                self._go_live()
                self.sd.outcome = DeployOutcome.DEPLOYED
            except StageFailed as exc:
                stage = self.sd.stages[-1].name if self.sd.stages else "rollback"
                self.sd.outcome = DeployOutcome.FAILED
                self.sd.error, self.sd.output = f"{stage} failed on {self.name}: {exc.reason}", exc.output
            finally:
                self._unlock()
        except StageFailed as exc:
            self.sd.outcome, self.sd.error = DeployOutcome.FAILED, f"lock: {exc.reason}"
        except errors.Unreachable as exc:
            self.sd.outcome, self.sd.error = DeployOutcome.UNREACHABLE, exc.line()
        except Stopped:
            self.sd.outcome, self.sd.error = DeployOutcome.INTERRUPTED, "interrupted"
        return self.sd

    def _choose(self) -> str:
        names, current = sh.parse_releases(self.sh(sh.list_releases(self.base)).stdout_text())
        if self.to is not None:
            if self.to not in names:
                raise StageFailed(f"no release {self.to!r} on {self.name} (there: {', '.join(names) or 'none'})")
            if self.to == current:
                raise StageFailed(f"{self.to} is already live on {self.name}")
            return self.to
        earlier = [n for n in names if current is not None and n < current and n not in self.failed]
        if not earlier:
            raise StageFailed(f"no earlier release to go back to on {self.name} (live: {current or 'none'})")
        return earlier[-1]


def _raise(exc: Exception) -> None:
    raise exc
