"""Every example plan fails when what it checks is absent (issue 11): each runs on the real
sshd with the thing it checks missing, and the steps that check it must not pass."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.plans.helpers import TESTPLANS, my_comm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cli, plan: str, server: str, tmp_path: Path, **vars_: object) -> tuple[int, dict[str, dict]]:
    report = tmp_path / f"{plan}.json"
    args = [x for k, v in vars_.items() for x in ("--var", f"{k}={v}")]
    r = cli("test", "run", str(TESTPLANS / plan), "-s", server, *args, "--report", f"json:{report}")
    steps = json.loads(report.read_text())["plans"][0]["servers"][0]["steps"]
    return r.exit_code, {s["name"]: s for s in steps}


def _not_passed(steps: dict[str, dict], *names: str) -> None:
    for name in names:
        assert steps[name]["status"] in ("failed", "error"), (name, steps[name])


def test_post_deploy_fails_when_the_log_is_missing(cli, ssh_server, web, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "VERSION").write_text("1.4.2\n")
    code, steps = _run(cli, "post-deploy.yaml", ssh_server, tmp_path, version="1.4.2", app_dir=app,
                       app_process=my_comm(), app_port=web.port, health_url=web.url + "health",
                       app_log=app / "app.log")
    assert code == 1
    failed = [n for n, s in steps.items() if s["status"] != "passed"]
    assert failed == ["no errors in the last 200 log lines"], steps


def test_post_deploy_fails_when_the_release_and_the_app_are_missing(cli, ssh_server, web, tmp_path):
    gone = tmp_path / "no-release"
    port = _free_port()
    code, steps = _run(cli, "post-deploy.yaml", ssh_server, tmp_path, version="1.4.2", app_dir=gone,
                       app_process="no-such-app-proc", app_port=port, health_url=web.url + "health",
                       app_log=gone / "app.log")
    assert code == 1
    _not_passed(steps, "release file exists", "deployed release is 1.4.2", "no-such-app-proc is running",
                f"app listens on {port}", "no errors in the last 200 log lines",
                f"disk under {gone} below 90%")
    # the title needs the release the failed step would have captured: it stays as written
    assert steps["health endpoint answers (release {{ deployed }})"]["status"] == "passed"


def test_system_health_fails_when_the_disk_path_is_missing(cli, ssh_server, tmp_path):
    gone = tmp_path / "no-such-mount"
    code, steps = _run(cli, "system-health.yaml", ssh_server, tmp_path, disk_path=gone, load_max_per_cpu=100)
    assert code == 1
    _not_passed(steps, f"disk {gone} below 90% used", f"inodes on {gone} below 90% used")


def test_web_smoke_fails_when_no_web_server_runs(cli, ssh_server, tmp_path):
    port = _free_port()
    code, steps = _run(cli, "web-smoke.yaml", ssh_server, tmp_path, url=f"http://127.0.0.1:{port}/", port=port,
                       web_process="no-such-httpd")
    assert code == 1
    assert all(s["status"] in ("failed", "error") for s in steps.values()), steps


def test_tls_expiry_fails_when_nothing_serves_tls(cli, ssh_server, tmp_path):
    port = _free_port()
    code, steps = _run(cli, "tls-expiry.yaml", ssh_server, tmp_path, host="localhost", connect="127.0.0.1",
                       port=port)
    assert code == 1
    assert all(s["status"] in ("failed", "error") for s in steps.values()), steps


def test_postgresql_fails_when_there_is_no_postgresql(cli, ssh_server, tmp_path):
    port = _free_port()
    code, steps = _run(cli, "postgresql.yaml", ssh_server, tmp_path, pg_service="no-such-pg",
                       pg_process="no-such-postgres", pg_package="no-such-postgresql-pkg", pg_port=port)
    assert code == 1
    assert all(s["status"] in ("failed", "error") for s in steps.values()), steps
