"""Acceptance tests for issue 14, written from the issue text and docs/deploy.md's format alone by someone who had not read the implementation.

Black-box: everything goes through the CLI (`cli` in-process, or a real `python -m vpsagent`
subprocess where a signal is needed), the real test sshd (which runs on this machine as the
current user, so the deploy `path` under `tmp_path` is a real directory we can inspect), the
local GitHub API (`github_api`) serving a real git repository built here, and a real app:
`restart.sh` starts `app.py`, which serves its release's VERSION over HTTP.

Assumptions shared by every test (beyond the contract in the brief):
- `github_api.add_repo()` serves the repository as it is on disk when asked, so commits
  made after `add_repo` are visible (we add the repository once, then commit each version).
- `--ref main` resolves the branch `main` of that repository.
- vpsagent creates the deploy `path` (and releases/) when it does not exist yet.
- Command-line shapes not spelled out in the issue are found by trying the issue's literal
  form first and, when that is a usage error (exit 2), the same with the app name `shop`
  inserted (`_deploy_sub`).
- JSON shapes not given by the issue are searched, not indexed: a per-server record is a dict
  naming the server (`server` or `name`) and holding `stages` (a list of dicts or a mapping
  name -> dict); a stage has a name (`name`/`stage` or its key), a duration (a key containing
  `duration`) and an outcome (`outcome`/`status`/`result`/`ok`).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = "acme/shop"

APP_PY = '''\
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "VERSION")) as f:
    VERSION = f.read().strip()
port, pidfile, pidlist = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(pidlist, "a") as f:
    f.write(f"{os.getpid()}\\n")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", port), Handler)
with open(pidfile, "w") as f:
    f.write(str(os.getpid()))
server.serve_forever()
'''

RESTART_SH = '''\
SHARED='{shared}'
mkdir -p "$SHARED"
pwd -P >> "$SHARED/restarts.log"
if [ -f "$SHARED/app.pid" ]; then
  old=$(cat "$SHARED/app.pid")
  if grep -q app.py "/proc/$old/cmdline" 2>/dev/null; then
    kill "$old" 2>/dev/null
    i=0
    while kill -0 "$old" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  fi
fi
nohup python3 app.py {port} "$SHARED/app.pid" "$SHARED/app.pids" > "$SHARED/app.log" 2>&1 < /dev/null &
exit 0
'''

SUCCESS_WORDS = ("ok", "success", "succeeded", "deployed", "passed", "done")
FAIL_WORDS = ("fail", "error", "roll")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _stop_pid(pid: int, must_contain: bytes) -> None:
    """Stop a process this test started (identified by a pid it wrote), checking it is ours."""
    if not _alive(pid) or must_contain not in _cmdline(pid):
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(pid):
            return
        time.sleep(0.05)
    if must_contain in _cmdline(pid):
        os.kill(pid, signal.SIGKILL)


def _out(r: Any) -> str:
    return (r.stdout or "") + (r.stderr or "")


def _dicts(obj: Any):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _dicts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _dicts(v)


def _server_entries(data: Any, server: str) -> list[dict]:
    return [d for d in _dicts(data) if server in (d.get("server"), d.get("name")) and "stages" in d]


def _stages(entry: dict) -> list[dict]:
    st = entry["stages"]
    if isinstance(st, dict):
        return [{"name": k, **(v if isinstance(v, dict) else {"outcome": v})} for k, v in st.items()]
    return list(st)


def _stage_name(stage: dict) -> str:
    return str(stage.get("name") or stage.get("stage") or "").lower()


def _outcome(d: dict) -> str:
    for key in ("outcome", "status", "result", "ok"):
        if key in d:
            v = d[key]
            if isinstance(v, bool):
                return "ok" if v else "failed"
            return str(v).lower()
    return ""


def _is_failure(v: str) -> bool:
    return any(w in v for w in FAIL_WORDS)


def _is_success(v: str) -> bool:
    return not _is_failure(v) and any(w in v for w in SUCCESS_WORDS)


def _duration(stage: dict) -> float | None:
    for k, v in stage.items():
        if "duration" in k and isinstance(v, (int, float)):
            return float(v)
    return None


def _error_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip().lower().startswith("error")]


def _deploy_sub(cli: Any, env: dict, *variants: list[str]) -> Any:
    """Run the first variant of a `deploy` subcommand that is not a usage error (exit 2)."""
    r = None
    for args in variants:
        r = cli("deploy", *args, env=env)
        if r.exit_code != 2:
            return r
    return r


class Shop:
    """One test's world: the git repository on `github_api`, the deploy path, the app's port."""

    def __init__(self, tmp: Path, api: Any) -> None:
        self.tmp = tmp
        self.api = api
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.path = tmp / "srv" / "shop"
        self.shared = self.path / "shared"
        self.repo = tmp / "repo"
        self.env = {"GITHUB_TOKEN": api.token, "GITHUB_API_URL": api.url}
        self.waiters: list[tuple[Path, Path]] = []  # (pid file, go file) of slow build steps
        self.procs: list[subprocess.Popen] = []
        self.repo.mkdir()
        self.git("init", "-q")
        self.git("symbolic-ref", "HEAD", "refs/heads/main")
        (self.repo / "README.md").write_text("shop\n")
        self.git("add", "-A")
        self.git("-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false",
                 "commit", "-q", "-m", "init")
        api.add_repo(REPO, self.repo)

    # -- the repository -------------------------------------------------------------------
    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.repo), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def config(self, version: str, *, healthy: bool = True, **over: Any) -> dict:
        cfg: dict[str, Any] = {
            "app": "shop",
            "servers": ["t1"],
            "path": str(self.path),
            "environment": "production",
            "url": self.url,
            "keep_releases": 5,
            "build": ["test -f app.py"],
            "restart": "sh restart.sh",
            "health": {"steps": [{
                "http": {"url": self.url, "from": "server", "status": 200,
                         "body_contains": version if healthy else f"{version}-never-served"},
                "eventually": "15s" if healthy else "2s",
            }]},
        }
        for k, v in over.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        return cfg

    def commit(self, version: str, *, healthy: bool = True, no_config: bool = False, **over: Any) -> str:
        """Commit the app at VERSION with its deploy.yml; returns the full sha."""
        (self.repo / "app.py").write_text(APP_PY)
        (self.repo / "restart.sh").write_text(RESTART_SH.format(shared=self.shared, port=self.port))
        (self.repo / "restart.sh").chmod(0o755)
        (self.repo / "VERSION").write_text(version + "\n")
        cfg_file = self.repo / ".vpsagent" / "deploy.yml"
        cfg_file.parent.mkdir(exist_ok=True)
        if no_config:
            if cfg_file.exists():
                cfg_file.unlink()
        else:
            # JSON is YAML; it keeps the generated config unambiguous
            cfg_file.write_text(json.dumps(self.config(version, healthy=healthy, **over), indent=2))
        self.git("add", "-A")
        self.git("-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false",
                 "commit", "-q", "--allow-empty", "-m", version)
        return self.git("rev-parse", "HEAD")

    # -- deploying --------------------------------------------------------------------------
    def deploy(self, cli: Any, *args: str, ref: str = "main", env: dict | None = None) -> Any:
        return cli("deploy", REPO, "--ref", ref, *args, env=self.env if env is None else env)

    def popen_deploy(self, *args: str) -> subprocess.Popen:
        """A real `vpsagent deploy` subprocess (output to files: a full pipe must not block it)."""
        env = dict(os.environ)
        env.update(self.env)
        n = len(self.procs)
        with open(self.tmp / f"deploy{n}.out", "wb") as out, open(self.tmp / f"deploy{n}.err", "wb") as err:
            p = subprocess.Popen([sys.executable, "-m", "vpsagent", "deploy", REPO, "--ref", "main", *args],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def output_of(self, proc: subprocess.Popen) -> str:
        n = self.procs.index(proc)
        return "".join((self.tmp / f"deploy{n}.{k}").read_text(errors="replace") for k in ("out", "err"))

    def slow_build(self, name: str) -> tuple[Path, Path, str]:
        """A build step that writes its pid and waits for a GO file (60 s at most)."""
        mark, go = self.tmp / f"{name}.pid", self.tmp / f"{name}.go"
        self.waiters.append((mark, go))
        cmd = (f"echo $$ > {mark}; i=0; "
               f"while [ ! -f {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done")
        return mark, go, cmd

    # -- inspecting the server --------------------------------------------------------------
    def releases(self) -> list[str]:
        d = self.path / "releases"
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def current(self) -> Path | None:
        c = self.path / "current"
        return c.resolve() if c.is_symlink() else None

    def version_of(self, release: Path | str) -> str:
        p = release if isinstance(release, Path) else self.path / "releases" / release
        try:
            return (p / "VERSION").read_text().strip()
        except OSError:
            return ""

    def release_for(self, version: str) -> Path:
        found = [self.path / "releases" / n for n in self.releases() if self.version_of(n) == version]
        assert len(found) == 1, f"releases with VERSION {version}: {found} (all: {self.releases()})"
        return found[0].resolve()

    def get(self) -> str | None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
        try:
            with opener.open(self.url, timeout=2) as r:
                return r.read().decode().strip()
        except OSError:
            return None

    def wait_for(self, version: str, timeout: float = 20) -> str | None:
        deadline = time.monotonic() + timeout
        body = self.get()
        while body != version and time.monotonic() < deadline:
            time.sleep(0.2)
            body = self.get()
        return body

    def restarts(self) -> list[str]:
        f = self.shared / "restarts.log"
        return f.read_text().splitlines() if f.exists() else []

    # -- cleanup ----------------------------------------------------------------------------
    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()  # our own subprocess, by its Popen handle
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for mark, go in self.waiters:
            go.touch()
            if mark.exists():
                try:
                    _stop_pid(int(mark.read_text().strip()), str(go).encode())
                except ValueError:
                    pass
        pids = self.shared / "app.pids"
        if pids.exists():
            for line in pids.read_text().split():
                _stop_pid(int(line), b"app.py")


@pytest.fixture
def shop(tmp_path: Path, github_api: Any, ssh_server: str):
    s = Shop(tmp_path, github_api)
    try:
        yield s
    finally:
        s.cleanup()


def _add_server(cli: Any, sshd: Any, name: str, host: str, *extra: str, check: bool = True) -> None:
    r = cli("servers", "add", name, "--host", host, "--port", str(sshd.port), "--user", sshd.user,
            "--key", str(sshd.client_key_path), *extra)
    assert r.exit_code == 0, _out(r)
    if check:
        r = cli("servers", "check", name)
        assert r.exit_code == 0, _out(r)


def _deploy_id(cli: Any, env: dict, nth_newest: int = 0) -> Any:
    # Assumption: `deploy list --json` holds one record per deploy with an `id`, newest first
    # (like `history`); when ids are numbers we order them ourselves.
    r = cli("deploy", "list", "--json", env=env)
    assert r.exit_code == 0, _out(r)
    data = r.json()["data"]
    lists = [data] if isinstance(data, list) else [v for v in data.values() if isinstance(v, list)]
    recs = next((lst for lst in lists if lst and all(isinstance(d, dict) and "id" in d for d in lst)), [])
    assert recs, r.stdout
    ids = [d["id"] for d in recs]
    if all(isinstance(i, int) for i in ids):
        ids = sorted(set(ids), reverse=True)
    return ids[nth_newest]


# ================================================================ first and second deploy


def test_first_deploy_serves_the_app(cli, shop):
    shop.commit("v1")
    r = shop.deploy(cli)
    assert r.exit_code == 0, _out(r)
    assert (shop.path / "current").is_symlink()
    cur = shop.current()
    assert cur is not None and cur.parent == (shop.path / "releases").resolve()
    assert (cur / "app.py").is_file() and shop.version_of(cur) == "v1"
    assert shop.wait_for("v1") == "v1"


def test_release_directory_is_named_utc_time_dash_short_sha(cli, shop):
    sha = shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    (name,) = shop.releases()
    m = re.fullmatch(r"(.+)-([0-9a-f]{7,40})", name)
    assert m, name
    assert sha.startswith(m.group(2))
    assert len(re.sub(r"\D", "", m.group(1))) >= 8, f"no UTC time in {name}"


def test_second_deploy_switches_current_and_keeps_the_old_release(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2")
    r = shop.deploy(cli)
    assert r.exit_code == 0, _out(r)
    assert len(shop.releases()) == 2
    assert shop.current() == shop.release_for("v2")
    assert shop.release_for("v1").is_dir()
    assert shop.wait_for("v2") == "v2"


def test_deploy_json_is_one_envelope_with_per_server_stages(cli, shop):
    shop.commit("v1")
    r = shop.deploy(cli, "--json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["vpsagent"] == 1 and doc["ok"] is True and doc["exit_code"] == 0
    assert doc["command"].startswith("deploy") and doc["errors"] == []
    (entry,) = _server_entries(doc["data"], "t1")
    assert _is_success(_outcome(entry)), entry
    stages = _stages(entry)
    assert stages and all(_duration(s) is not None and _duration(s) >= 0 for s in stages), stages


def test_commands_see_the_deploy_variables_in_the_release_directory(cli, shop):
    sha = shop.commit("v1", env={"APP_ENV": "acceptance"}, build=[
        "test -f app.py",
        "printf '%s\\n' \"$APP\" \"$RELEASE\" \"$SHA\" \"$REF\" \"$DEPLOY_PATH\" \"$APP_ENV\" "
        "\"$(pwd -P)\" > build-env.txt",
    ])
    assert shop.deploy(cli).exit_code == 0
    cur = shop.current()
    app, release, got_sha, ref, deploy_path, app_env, cwd = (cur / "build-env.txt").read_text().splitlines()
    assert app == "shop"
    assert Path(release).resolve() == cur
    assert len(got_sha) >= 7 and sha.startswith(got_sha)
    assert ref == "main"
    assert Path(deploy_path).resolve() == shop.path.resolve()
    assert app_env == "acceptance"
    assert Path(cwd).resolve() == cur


def test_shared_paths_are_linked_into_the_release_before_the_build(cli, shop):
    # We create PATH/shared/ ourselves; no assumption about who creates missing shared files.
    (shop.shared / "storage").mkdir(parents=True)
    (shop.shared / ".env").write_text("SECRET=1\n")
    (shop.shared / "storage" / "keep").write_text("x")
    shop.commit("v1", shared=[".env", "storage/"],
                build=["grep -q SECRET=1 .env", "test -f storage/keep"])
    r = shop.deploy(cli)
    assert r.exit_code == 0, _out(r)
    cur = shop.current()
    assert (cur / ".env").is_symlink() and (cur / ".env").resolve() == (shop.shared / ".env").resolve()
    assert (cur / "storage").resolve() == (shop.shared / "storage").resolve()


def test_migrate_runs_once_in_the_new_release_before_the_switch(cli, shop):
    log = shop.tmp / "migrate.log"
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2", migrate=f'echo "$(pwd -P) $(readlink -f {shop.path}/current)" >> {log}')
    assert shop.deploy(cli).exit_code == 0
    (line,) = log.read_text().splitlines()
    cwd, current_then = line.split()
    assert Path(cwd).resolve() == shop.release_for("v2")
    assert Path(current_then).resolve() == shop.release_for("v1")


def test_hooks_before_and_after_run_around_a_successful_deploy(cli, shop):
    # Assumption: `before` runs before the build and `after` after the health check passed.
    log = shop.tmp / "hooks.log"
    shop.commit("v1", build=[f"echo build >> {log}"],
                hooks={"before": [f"echo before >> {log}"], "after": [f"echo after >> {log}"],
                       "on_failure": [f"echo on_failure >> {log}"]})
    assert shop.deploy(cli).exit_code == 0
    assert log.read_text().split() == ["before", "build", "after"]


def test_deploy_with_config_file_option(cli, shop):
    shop.commit("v1", no_config=True)
    cfg = shop.tmp / "deploy-local.yml"
    cfg.write_text(json.dumps(shop.config("v1"), indent=2))
    r = shop.deploy(cli, "--config", str(cfg))
    assert r.exit_code == 0, _out(r)
    assert shop.wait_for("v1") == "v1"


# ================================================================ a build that fails


def test_build_failure_switches_nothing_and_old_version_still_answers(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2", build=["test -f app.py", "exit 3"])
    r = shop.deploy(cli)
    assert r.exit_code == 1, _out(r)
    assert shop.current() == shop.release_for("v1")
    assert shop.wait_for("v1") == "v1"
    assert len(shop.restarts()) == 1  # only the first deploy restarted the app


def test_build_failure_keeps_the_failed_release_and_shows_its_output(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2", build=["echo boom-7f3a >&2; exit 3"])
    r = shop.deploy(cli)
    assert r.exit_code == 1
    assert "boom-7f3a" in _out(r)
    assert len(shop.releases()) == 2 and shop.release_for("v2").is_dir()


def test_build_failure_on_first_deploy_leaves_no_current(cli, shop):
    shop.commit("v1", build=["exit 1"])
    assert shop.deploy(cli).exit_code == 1
    assert not (shop.path / "current").exists() and not (shop.path / "current").is_symlink()


def test_build_failure_sets_github_status_failure_with_reason(cli, shop, github_api):
    # Assumption: "says why" means the description names the failing stage ("build").
    shop.commit("v1", build=["exit 3"])
    assert shop.deploy(cli).exit_code == 1
    (dep,) = github_api.deployments
    last = github_api.statuses(dep["id"])[-1]
    assert last["state"] == "failure"
    assert 0 < len(last["description"] or "") <= 140
    assert "build" in last["description"].lower()


def test_on_failure_hook_runs_and_after_does_not(cli, shop):
    log = shop.tmp / "hooks.log"
    shop.commit("v1", build=["exit 3"],
                hooks={"after": [f"echo after >> {log}"], "on_failure": [f"echo on_failure >> {log}"]})
    assert shop.deploy(cli).exit_code == 1
    assert log.read_text().split() == ["on_failure"]


def test_failed_deploy_json_names_the_failed_stage(cli, shop):
    shop.commit("v1", build=["exit 3"])
    r = shop.deploy(cli, "--json")
    assert r.exit_code == 1
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["errors"]
    (entry,) = _server_entries(doc["data"], "t1")
    assert _is_failure(_outcome(entry)), entry
    build = [s for s in _stages(entry) if "build" in _stage_name(s)]
    assert build and _is_failure(_outcome(build[0])), _stages(entry)


# ================================================================ a health check that fails


def test_health_failure_rolls_back_and_old_version_answers(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2", healthy=False)
    r = shop.deploy(cli)
    assert r.exit_code == 1, _out(r)
    assert shop.current() == shop.release_for("v1")
    assert shop.wait_for("v1") == "v1"
    assert shop.release_for("v2").is_dir()  # kept for inspection


def test_health_failure_rolls_back_once_not_in_a_loop(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2", healthy=False)
    assert shop.deploy(cli).exit_code == 1
    v1, v2 = str(shop.release_for("v1")), str(shop.release_for("v2"))
    # deploy 1 restart, deploy 2 restart, one restart of the rolled-back release
    assert [str(Path(p).resolve()) for p in shop.restarts()] == [v1, v2, v1]


def test_health_failure_github_status_failure_says_why(cli, shop, github_api):
    # Assumption: "says why" means the description mentions the health check.
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2", healthy=False)
    assert shop.deploy(cli).exit_code == 1
    dep = github_api.deployments[-1]
    states = [s["state"] for s in github_api.statuses(dep["id"])]
    assert states[-1] == "failure" and "in_progress" in states
    desc = github_api.statuses(dep["id"])[-1]["description"] or ""
    assert 0 < len(desc) <= 140
    assert "health" in desc.lower()


# ================================================================ canary, selection, reachability


def test_failed_canary_leaves_the_other_server_untouched(cli, shop, sshd):
    # The two "servers" are one machine (same sshd, 127.0.0.1 and 127.0.0.2), so they share
    # the deploy path: "no new release there" is checked as "one build ran and one new
    # release directory appeared", plus $SSH_CONNECTION logged by the build step.
    _add_server(cli, sshd, "t2", "127.0.0.2")
    builds = shop.tmp / "builds.log"
    build = ["test -f app.py", f'echo "$SSH_CONNECTION" >> {builds}']
    shop.commit("v1", build=build)
    assert shop.deploy(cli, "-s", "t1").exit_code == 0
    shop.commit("v2", healthy=False, build=build, servers=["t1", "t2"], canary=1)
    r = shop.deploy(cli)
    assert r.exit_code == 1, _out(r)
    lines = builds.read_text().splitlines()
    assert len(lines) == 2, lines  # v1 on t1, v2 on the canary only
    assert len(shop.releases()) == 2
    assert shop.current() == shop.release_for("v1")
    assert shop.wait_for("v1") == "v1"


def test_tag_on_command_line_overrides_config_servers(cli, shop, sshd):
    _add_server(cli, sshd, "t2", "127.0.0.2", "-t", "web")
    builds = shop.tmp / "builds.log"
    shop.commit("v1", build=[f'echo "$SSH_CONNECTION" >> {builds}'])  # config says servers: [t1]
    r = shop.deploy(cli, "-t", "web")
    assert r.exit_code == 0, _out(r)
    (line,) = builds.read_text().splitlines()
    assert line.split()[2] == "127.0.0.2"


def test_unknown_server_is_bad_input(cli, shop):
    shop.commit("v1")
    r = shop.deploy(cli, "-s", "nope")
    assert r.exit_code == 2, _out(r)
    assert shop.releases() == []


def test_unreachable_server_exits_5_and_deploys_nothing(cli, shop, sshd):
    port = free_port("127.0.0.3")  # nothing listens there
    r = cli("servers", "add", "t3", "--host", "127.0.0.3", "--port", str(port), "--user", sshd.user,
            "--key", str(sshd.client_key_path))
    assert r.exit_code == 0, _out(r)
    shop.commit("v1")
    r = shop.deploy(cli, "-s", "t3")
    assert r.exit_code == 5, _out(r)
    assert shop.releases() == []
    assert "Traceback" not in _out(r)


# ================================================================ the deploy lock


def _wait_file(shop: Shop, path: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"deploy ended ({proc.returncode}) before its build step:\n{shop.output_of(proc)}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    time.sleep(0.2)


def _names_who_and_when(text: str) -> bool:
    # Assumption: "who" is the OS user (no login in a personal database); "when" is a date, a
    # clock time or a relative age.
    when = re.search(r"\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}|\bago\b", text)
    return getpass.getuser() in text and when is not None


def test_held_lock_refuses_a_second_deploy_with_who_and_when(cli, shop):
    mark, go, wait_cmd = shop.slow_build("holder")
    shop.commit("v1", build=["test -f app.py", wait_cmd])
    holder = shop.popen_deploy()
    _wait_file(shop, mark, holder)
    r = shop.deploy(cli)
    assert r.exit_code in (75, 1), _out(r)
    assert _names_who_and_when(_out(r)), _out(r)
    go.touch()
    assert holder.wait(120) == 0, shop.output_of(holder)
    assert shop.wait_for("v1") == "v1"
    assert len(shop.releases()) == 1  # the refused deploy made no release


def test_stale_lock_is_reported_and_deploy_unlock_releases_it(cli, shop):
    # Assumption: a lock left by a killed vpsagent is refused (not silently taken over) until
    # `deploy unlock` (tried as `deploy unlock -s t1`, then `deploy unlock shop -s t1`, then
    # `deploy unlock shop`).
    mark, go, wait_cmd = shop.slow_build("dead")
    shop.commit("v1", build=["test -f app.py", wait_cmd])
    holder = shop.popen_deploy()
    _wait_file(shop, mark, holder)
    holder.kill()  # the holder dies without releasing its lock
    holder.wait(10)
    go.touch()
    shop.commit("v2")
    r = shop.deploy(cli)
    assert r.exit_code in (75, 1), _out(r)
    assert _names_who_and_when(_out(r)), _out(r)
    r = _deploy_sub(cli, shop.env, ["unlock", "-s", "t1"], ["unlock", "shop", "-s", "t1"], ["unlock", "shop"])
    assert r.exit_code == 0, _out(r)
    r = shop.deploy(cli)
    assert r.exit_code == 0, _out(r)
    assert shop.wait_for("v2") == "v2"


def test_ctrl_c_during_build_exits_130_and_current_stays_complete(cli, shop):
    # Assumption: an interrupted deploy releases its lock (checked by the last deploy).
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    old = shop.current()
    mark, go, wait_cmd = shop.slow_build("slow")
    shop.commit("v2", build=["test -f app.py", wait_cmd])
    proc = shop.popen_deploy()
    _wait_file(shop, mark, proc)
    os.kill(proc.pid, signal.SIGINT)  # our own subprocess
    try:
        proc.wait(60)
    finally:
        go.touch()
    assert proc.returncode == 130, shop.output_of(proc)
    assert shop.current() == old
    assert (old / "app.py").is_file() and shop.version_of(old) == "v1"
    assert shop.wait_for("v1") == "v1"
    shop.commit("v3")
    r = shop.deploy(cli)
    assert r.exit_code == 0, _out(r)
    assert shop.wait_for("v3") == "v3"


# ================================================================ GitHub errors


def test_github_401_is_one_clear_line_and_nothing_is_deployed(cli, shop, github_api):
    shop.commit("v1")
    r = shop.deploy(cli, env={"GITHUB_TOKEN": "not-the-token", "GITHUB_API_URL": github_api.url})
    assert r.exit_code != 0
    assert "Traceback" not in _out(r)
    errors = _error_lines(r.stderr)
    assert len(errors) == 1, r.stderr
    assert re.search(r"401|token|credential|unauthori", errors[0], re.I), errors[0]
    assert shop.releases() == [] and github_api.deployments == []


def test_github_401_with_json_is_an_error_envelope(cli, shop, github_api):
    shop.commit("v1")
    r = shop.deploy(cli, "--json", env={"GITHUB_TOKEN": "not-the-token", "GITHUB_API_URL": github_api.url})
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == r.exit_code != 0
    assert doc["errors"] and doc["errors"][0]["message"]
    assert "not-the-token" not in r.stdout + r.stderr


def test_github_5xx_once_is_retried_or_reported_never_a_half_deploy(cli, shop, github_api):
    shop.commit("v1")
    github_api.fail_next(502)
    r = shop.deploy(cli)
    assert "Traceback" not in _out(r)
    if r.exit_code == 0:
        assert shop.current() == shop.release_for("v1")
        assert shop.wait_for("v1") == "v1"
    else:
        assert len(_error_lines(r.stderr)) == 1, r.stderr
        assert shop.current() is None


def test_github_5xx_persistent_is_one_clear_line_and_nothing_deployed(cli, shop, github_api):
    shop.commit("v1")
    github_api.fail_next(500, count=100)
    r = shop.deploy(cli)
    assert r.exit_code != 0
    assert "Traceback" not in _out(r)
    assert len(_error_lines(r.stderr)) == 1, r.stderr
    assert shop.current() is None and shop.releases() == []


# ================================================================ GitHub statuses, record, audit


def test_github_statuses_in_progress_then_success_with_environment_url(cli, shop, github_api):
    sha = shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    (dep,) = github_api.deployments
    assert dep["environment"] == "production"
    assert dep["sha"] == sha and dep["ref"] in ("main", sha)
    statuses = github_api.statuses(dep["id"])
    states = [s["state"] for s in statuses]
    assert "in_progress" in states and states[-1] == "success"
    assert states.index("in_progress") < len(states) - 1
    assert statuses[-1]["environment_url"] == shop.url


def test_github_deployment_uses_the_configured_environment(cli, shop, github_api):
    shop.commit("v1", environment="staging")
    assert shop.deploy(cli).exit_code == 0
    assert [d["environment"] for d in github_api.deployments] == ["staging"]


def test_history_has_every_command_of_a_deploy(cli, shop):
    assert cli("run", "-s", "t1", "echo not-a-deploy").exit_code == 0
    shop.commit("v1", build=["test -f app.py", "echo build-step-2"])
    assert shop.deploy(cli).exit_code == 0
    r = cli("history", "--source", "deploy", "--limit", "0", "--json")
    assert r.exit_code == 0, _out(r)
    entries = [d for d in _dicts(r.json()["data"]) if "command" in d]
    commands = "\n".join(str(e["command"]) for e in entries)
    for expected in ("test -f app.py", "echo build-step-2", "restart.sh"):
        assert expected in commands, commands
    assert "not-a-deploy" not in commands
    assert all(e.get("source", "deploy") == "deploy" for e in entries)
    assert all(e.get("server", "t1") == "t1" for e in entries)
    assert not [e for e in entries if e.get("status") == "running"]


def test_deploy_list_shows_each_deploy(cli, shop):
    sha1 = shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    sha2 = shop.commit("v2", build=["exit 1"])
    assert shop.deploy(cli).exit_code == 1
    r = cli("deploy", "list", "--json", env=shop.env)
    assert r.exit_code == 0, _out(r)
    assert sha1[:7] in r.stdout and sha2[:7] in r.stdout
    r = cli("deploy", "list", env=shop.env)
    assert r.exit_code == 0 and "shop" in r.stdout


def test_deploy_show_json_has_per_server_stages_durations_and_outcome(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    dep_id = _deploy_id(cli, shop.env)
    r = cli("deploy", "show", str(dep_id), "--json", env=shop.env)
    assert r.exit_code == 0, _out(r)
    (entry,) = _server_entries(r.json()["data"], "t1")
    assert _is_success(_outcome(entry)), entry
    stages = _stages(entry)
    names = " ".join(_stage_name(s) for s in stages)
    assert "build" in names and "health" in names, names
    for s in stages:
        assert _duration(s) is not None and _duration(s) >= 0, s
        assert _outcome(s), s
    r = cli("deploy", "show", str(dep_id), env=shop.env)
    assert r.exit_code == 0 and "t1" in r.stdout


def test_deploy_show_of_a_rolled_back_deploy(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2", healthy=False)
    assert shop.deploy(cli).exit_code == 1
    r = cli("deploy", "show", str(_deploy_id(cli, shop.env)), "--json", env=shop.env)
    assert r.exit_code == 0, _out(r)
    (entry,) = _server_entries(r.json()["data"], "t1")
    assert _is_failure(_outcome(entry)), entry
    health = [s for s in _stages(entry) if "health" in _stage_name(s)]
    assert health and _is_failure(_outcome(health[0])), _stages(entry)


# ================================================================ keep_releases, rollback, releases


def test_keep_releases_removes_old_releases(cli, shop):
    for v in ("v1", "v2", "v3", "v4"):
        shop.commit(v, keep_releases=2)
        r = shop.deploy(cli)
        assert r.exit_code == 0, _out(r)
    assert len(shop.releases()) == 2
    assert sorted(shop.version_of(n) for n in shop.releases()) == ["v3", "v4"]
    assert shop.current() == shop.release_for("v4")


def test_rollback_goes_back_to_the_previous_release(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2")
    assert shop.deploy(cli).exit_code == 0
    r = _deploy_sub(cli, shop.env, ["rollback", "-s", "t1"], ["rollback", "shop", "-s", "t1"])
    assert r.exit_code == 0, _out(r)
    assert shop.current() == shop.release_for("v1")
    assert shop.wait_for("v1") == "v1"
    assert len(shop.releases()) == 2


def test_rollback_to_a_named_release(cli, shop):
    # Assumption: RELEASE is the release directory's name under releases/.
    for v in ("v1", "v2", "v3"):
        shop.commit(v)
        assert shop.deploy(cli).exit_code == 0
    first = shop.release_for("v1").name
    r = _deploy_sub(cli, shop.env, ["rollback", "-s", "t1", "--to", first],
                    ["rollback", "shop", "-s", "t1", "--to", first])
    assert r.exit_code == 0, _out(r)
    assert shop.current() == shop.release_for("v1")
    assert shop.wait_for("v1") == "v1"


def test_rollback_to_an_unknown_release_changes_nothing(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    r = _deploy_sub(cli, shop.env, ["rollback", "-s", "t1", "--to", "19700101T000000Z-deadbee"],
                    ["rollback", "shop", "-s", "t1", "--to", "19700101T000000Z-deadbee"])
    assert r.exit_code in (1, 2), _out(r)
    assert "Traceback" not in _out(r)
    assert shop.current() == shop.release_for("v1")


def test_releases_lists_the_release_directories_of_a_server(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    shop.commit("v2")
    assert shop.deploy(cli).exit_code == 0
    r = _deploy_sub(cli, shop.env, ["releases", "-s", "t1"], ["releases", "shop", "-s", "t1"])
    assert r.exit_code == 0, _out(r)
    for name in shop.releases():
        assert name in r.stdout


# ================================================================ dry run


def test_dry_run_executes_nothing(cli, shop, github_api):
    shop.commit("v1")
    r = shop.deploy(cli, "--dry-run")
    assert r.exit_code == 0, _out(r)
    assert "t1" in r.stdout
    assert shop.releases() == [] and shop.current() is None
    assert github_api.deployments == []
    h = cli("history", "--source", "deploy", "--limit", "0", "--json")
    assert [d for d in _dicts(h.json()["data"]) if "command" in d] == []


# ================================================================ validate and bad config


def _validate(cli, tmp_path: Path, text: str) -> tuple[Any, Path]:
    # Assumption: `deploy validate FILE` (positional, like `test validate PLAN`).
    f = tmp_path / "deploy.yml"
    f.write_text(text)
    return cli("deploy", "validate", str(f)), f


def test_validate_accepts_a_good_config(cli, ssh_server, tmp_path):
    r, _ = _validate(cli, tmp_path, 'app: shop\nservers: [t1]\nbuild: ["true"]\nrestart: "true"\n')
    assert r.exit_code == 0, _out(r)


def test_validate_reports_every_problem_as_file_line_col(cli, ssh_server, tmp_path):
    r, f = _validate(cli, tmp_path, 'app: Bad_Name!\nservers: [t1]\nkeep_releases: 5\nbuild: ["true"]\nbulid: ["true"]\n')
    assert r.exit_code == 2
    out = _out(r)
    assert re.search(r"deploy\.yml:1:\d+", out), out  # the app name
    assert re.search(r"deploy\.yml:5:1\b", out), out  # the unknown key
    assert "bulid" in out


def test_validate_reports_wrong_types_and_health_plan_problems(cli, ssh_server, tmp_path):
    r, _ = _validate(cli, tmp_path, (
        "app: shop\n"
        "servers: [t1]\n"
        "keep_releases: many\n"
        "health:\n"
        "  steps:\n"
        '    - http: {url: "http://127.0.0.1:1/", statuz: 200}\n'
    ))
    assert r.exit_code == 2
    out = _out(r)
    assert re.search(r"deploy\.yml:3:\d+", out), out
    assert re.search(r"deploy\.yml:6:\d+", out), out


def test_validate_refuses_unsafe_yaml_tags(cli, ssh_server, tmp_path):
    marker = tmp_path / "pwned"
    r, _ = _validate(cli, tmp_path, f'app: !!python/object/apply:os.system ["touch {marker}"]\nservers: [t1]\n')
    assert r.exit_code == 2
    assert not marker.exists()


def test_deploy_of_a_commit_with_a_bad_config_exits_2_and_deploys_nothing(cli, shop):
    shop.commit("v1", keep_releases="many")
    r = shop.deploy(cli)
    assert r.exit_code == 2, _out(r)
    assert re.search(r"deploy\.yml:\d+:\d+", _out(r)), _out(r)
    assert shop.releases() == [] and shop.current() is None


# ================================================================ github connect / list / remove


def _db_text() -> bytes:
    """Everything the test's database holds, as bytes (SQLite files, or every PostgreSQL row)."""
    url = os.environ["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())
    import sqlalchemy as sa

    engine = sa.create_engine(re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url))
    try:
        chunks = []
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    for v in row:
                        chunks.append(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode())
        return b"\n".join(chunks)
    finally:
        engine.dispose()


def _connect(cli, github_api) -> Any:
    return cli("github", "connect", REPO, "--token-stdin", input=github_api.token + "\n",
               env={"GITHUB_API_URL": github_api.url})


def test_github_connect_stores_the_token_and_never_shows_it(cli, shop, github_api):
    r = _connect(cli, github_api)
    assert r.exit_code == 0, _out(r)
    assert github_api.token not in _out(r)
    r = cli("github", "list", "--json", env={"GITHUB_API_URL": github_api.url})
    assert r.exit_code == 0, _out(r)
    assert REPO in r.stdout
    assert github_api.token not in r.stdout + r.stderr


def test_github_token_is_not_in_the_database_in_plain_text(cli, shop, github_api):
    assert _connect(cli, github_api).exit_code == 0
    data = _db_text()
    assert REPO.encode() in data or b"shop" in data  # we are looking at the right database
    assert github_api.token.encode() not in data


def test_deploy_uses_the_stored_token(cli, shop, github_api):
    assert _connect(cli, github_api).exit_code == 0
    shop.commit("v1")
    r = shop.deploy(cli, env={"GITHUB_API_URL": github_api.url})  # no GITHUB_TOKEN
    assert r.exit_code == 0, _out(r)
    assert shop.wait_for("v1") == "v1"
    assert len(github_api.deployments) == 1


def test_github_remove_forgets_the_repository(cli, shop, github_api):
    # Assumption: like `servers remove`, without a terminal it may ask for --yes (exit 4).
    assert _connect(cli, github_api).exit_code == 0
    env = {"GITHUB_API_URL": github_api.url}
    r = cli("github", "remove", REPO, env=env)
    if r.exit_code == 4:
        r = cli("github", "remove", REPO, "--yes", env=env)
    assert r.exit_code == 0, _out(r)
    r = cli("github", "list", "--json", env=env)
    assert r.exit_code == 0 and REPO not in r.stdout
    shop.commit("v1")
    r = shop.deploy(cli, env=env)
    assert r.exit_code != 0
    assert "Traceback" not in _out(r) and len(_error_lines(r.stderr)) == 1, r.stderr
    assert shop.releases() == []
