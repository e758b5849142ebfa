"""`vpsagent test` end to end: the CLI against the real sshd, the database, the audit log.

Every example plan in testplans/ validates and passes here, pointed at servers these
tests start on 127.0.0.1 through the plans' own `vars`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.plans.helpers import TESTPLANS, my_comm

XSD = Path(__file__).with_name("junit.xsd")
EXAMPLES = sorted(p.name for p in TESTPLANS.glob("*.yaml"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vars(**kv: object) -> list[str]:
    out: list[str] = []
    for k, v in kv.items():
        out += ["--var", f"{k}={v}"]
    return out


def _steps(report: dict, server: int = 0, plan: int = 0) -> list[dict]:
    return report["plans"][plan]["servers"][server]["steps"]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A deployed 'release' for post-deploy.yaml: VERSION and a clean log."""
    d = tmp_path / "srv-app"
    d.mkdir()
    (d / "VERSION").write_text("1.4.2\n")
    (d / "app.log").write_text("booting\nlistening on 8080\nready\n")
    return d


@pytest.fixture
def example_vars(web, tls_web, app_dir) -> dict[str, list[str]]:
    """--var arguments that point each example plan at what runs on this machine."""
    return {
        "system-health.yaml": _vars(load_max_per_cpu=100),  # a shared test machine may be busy
        "web-smoke.yaml": _vars(url=web.url, port=web.port, expect_text="Welcome",
                                web_process=my_comm(), max_seconds=5),
        "tls-expiry.yaml": _vars(host="localhost", connect="127.0.0.1", port=tls_web.port, min_days=21),
        "postgresql.yaml": [],
        "post-deploy.yaml": _vars(version="1.4.2", app_dir=app_dir, app_process=my_comm(),
                                  app_port=web.port, health_url=web.url + "health",
                                  app_log=app_dir / "app.log"),
    }


@pytest.fixture(params=["ssh", "local"])
def target(request: pytest.FixtureRequest) -> str:
    """The server a test runs on: the real sshd (`t1`), and the built-in `local` server."""
    if request.param == "ssh":
        return request.getfixturevalue("ssh_server")
    return "local"


def test_there_are_five_examples():
    assert {"system-health.yaml", "web-smoke.yaml", "tls-expiry.yaml", "postgresql.yaml",
            "post-deploy.yaml"} <= set(EXAMPLES)


def test_every_example_validates(cli):
    r = cli("test", "validate", str(TESTPLANS))
    assert r.exit_code == 0, r.stdout + r.stderr
    for name in EXAMPLES:
        assert f"ok: {TESTPLANS / name} (" in r.stdout


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_passes(name, cli, target, example_vars, tmp_path):
    report = tmp_path / "report.json"
    r = cli("test", "run", str(TESTPLANS / name), "-s", target, *example_vars[name],
            "--report", f"json:{report}")
    doc = json.loads(report.read_text())
    failed = [(s["name"], s["message"], s["stderr"]) for s in _steps(doc) if s["status"] != "passed"]
    assert r.exit_code == 0, failed
    assert failed == []
    assert doc["plans"][0]["servers"][0]["server"] == target
    assert "passed, 0 failed, 0 errors" in r.stdout


def test_examples_can_fail(cli, target, example_vars, tmp_path):
    """The example plans detect real problems (their checks are not vacuous)."""
    report = tmp_path / "r.json"
    given = example_vars["post-deploy.yaml"]
    args = [x for pair in zip(given[::2], given[1::2], strict=True) if not pair[1].startswith("version=")
            for x in pair]
    r = cli("test", "run", str(TESTPLANS / "post-deploy.yaml"), "-s", target, *args,
            "--report", f"json:{report}")  # no --var version: the placeholder fails on purpose
    assert r.exit_code == 1
    steps = _steps(json.loads(report.read_text()))
    assert [s["status"] for s in steps].count("failed") == 1
    assert steps[1]["message"] == "expected stdout to equal '0.0.0', got '1.4.2'"

    r = cli("test", "run", str(TESTPLANS / "tls-expiry.yaml"), "-s", target,
            *example_vars["tls-expiry.yaml"], "--var", "min_days=200", "--report", f"json:{report}")
    assert r.exit_code == 1
    steps = _steps(json.loads(report.read_text()))
    assert [s["status"] for s in steps] == ["passed", "passed", "passed", "failed"]
    assert "will expire" in steps[3]["stdout"]

    r = cli("test", "run", str(TESTPLANS / "system-health.yaml"), "-s", target,
            "--var", "disk_max_pct=0", "--report", f"json:{report}")
    assert r.exit_code == 1
    assert _steps(json.loads(report.read_text()))[0]["message"].startswith("expected stdout < 0, got ")


def test_quick_start_line_from_the_readme(cli):
    """README: `vpsagent test run testplans/system-health.yaml -s local`."""
    r = cli("test", "run", str(TESTPLANS / "system-health.yaml"), "-s", "local",
            "--var", "load_max_per_cpu=100")
    assert r.exit_code == 0, r.stdout
    assert "system health on local: passed" in r.stdout


PLAN = """\
name: e2e
servers: [{server}]
vars: {{who: plan}}
steps:
  - name: greet
    run: echo "hello {{{{ who }}}}"
    expect: {{stdout: hello}}
    capture: {{greeting: 'hello (\\w+)'}}
  - name: use the capture
    run: echo "got {{{{ greeting }}}}"
    expect: {{stdout: {{equals: "got {{{{ who }}}}"}}}}
  - name: fails
    run: echo broken; exit 2
  - name: skipped
    run: echo never
    skip: not now
"""


def test_reports_records_and_audit(cli, target, engine, write_plan, tmp_path, schema):
    from sqlmodel import Session, col, select

    from vpsagent.db.models import CommandHistory, TestRun, TestStep

    path = write_plan(PLAN.format(server=target))
    junit, tap, js, text = (tmp_path / "out" / n for n in ("r.xml", "r.tap", "r.json", "r.txt"))
    r = cli("test", "run", path, "--report", f"junit:{junit}", "--report", f"tap:{tap}",
            "--report", f"json:{js}", "--format", "text", "-o", str(text))
    assert r.exit_code == 1
    assert r.stdout == ""  # the report went to -o
    assert f"report in {text}" in r.stderr
    assert f"e2e on {target}: failed" in text.read_text()
    schema.assertValid(etree.parse(str(junit)))
    assert tap.read_text().startswith("TAP version 13\n1..4\n")
    doc = json.loads(js.read_text())
    run_id = doc["plans"][0]["run_id"]
    assert isinstance(run_id, int)
    assert [s["status"] for s in _steps(doc)] == ["passed", "passed", "failed", "skipped"]
    assert _steps(doc)[0]["captured"] == {"greeting": "plan"}
    # progress went to stderr, one line per step
    assert f"✓ [{target}] greet" in r.stderr
    assert f"✗ [{target}] fails — expected exit 0, got exit 2" in r.stderr

    with Session(engine) as s:
        run = s.get(TestRun, run_id)
        assert (run.plan_name, run.plan_path, run.status, run.servers) == ("e2e", path, "failed", [target])
        assert (run.passed, run.failed, run.skipped, run.errors) == (2, 1, 1, 0)
        assert run.finished_at is not None and run.duration_ms is not None
        steps = s.exec(select(TestStep).where(TestStep.run_id == run_id).order_by(col(TestStep.seq))).all()
        assert [(st.seq, st.name, st.status, st.exit_code) for st in steps] == [
            (1, "greet", "passed", 0), (2, "use the capture", "passed", 0), (3, "fails", "failed", 2),
            (4, "skipped", "skipped", None)]
        assert steps[2].stdout_excerpt == "broken\n" and steps[2].message == "expected exit 0, got exit 2"
        audit = s.exec(select(CommandHistory).where(CommandHistory.test_run_id == run_id)
                       .order_by(col(CommandHistory.id))).all()
        assert [(a.source, a.server, a.command, a.exit_code) for a in audit] == [
            ("test", target, 'echo "hello plan"', 0), ("test", target, 'echo "got plan"', 0),
            ("test", target, "echo broken; exit 2", 2)]  # the skipped step never ran

    h = cli("test", "history", "--json")
    (row,) = h.json()["data"]["runs"]
    assert (row["id"], row["plan"], row["status"], row["failed"]) == (run_id, "e2e", "failed", 1)
    assert cli("test", "history", "--plan", "other", "--json").json()["data"]["runs"] == []
    h = cli("test", "history")
    assert "e2e" in h.stdout and "failed" in h.stdout
    show = cli("test", "show", str(run_id), "--json").json()["data"]
    assert [st["status"] for st in show["steps"]] == ["passed", "passed", "failed", "skipped"]
    assert show["steps"][2]["stdout"] == "broken\n"
    show = cli("test", "show", str(run_id))
    assert f"run {run_id}: e2e ({path}) — failed" in show.stdout
    assert "expected exit 0, got exit 2" in show.stdout
    missing = cli("test", "show", "99999")
    assert missing.exit_code == 2 and "error: no test run 99999" in missing.stderr


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def test_json_envelope_on_stdout(cli, target, write_plan):
    path = write_plan("name: j\nsteps:\n  - run: echo fine\n")
    r = cli("test", "run", path, "-s", target, "--json")
    assert r.exit_code == 0
    doc = r.json()
    assert (doc["command"], doc["ok"], doc["exit_code"]) == ("test run", True, 0)
    assert doc["data"]["format"] == "vpsagent-test-report"
    assert doc["data"]["plans"][0]["servers"][0]["steps"][0]["stdout"] == "fine\n"


def test_variable_precedence(cli, target, write_plan, tmp_path):
    path = write_plan(PLAN.format(server=target))
    report = tmp_path / "r.json"

    def greeting(*args: str, env: dict | None = None) -> str:
        cli("test", "run", path, "--report", f"json:{report}", *args, env=env)
        return _steps(json.loads(report.read_text()))[0]["stdout"].strip()

    assert greeting() == "hello plan"
    assert greeting(env={"VPSAGENT_VAR_who": "env"}) == "hello env"
    assert greeting("--var", "who=flag", env={"VPSAGENT_VAR_who": "env"}) == "hello flag"
    assert greeting("--var", "who=a=b c") == "hello a=b c"  # only the first '=' splits


def test_server_and_tag_overrides(cli, settings, sshd, ssh_server, write_plan, tmp_path):
    from tests.sshd import register_sshd

    register_sshd(settings, sshd, name="w2", address="127.0.0.2", tags=["web"])
    register_sshd(settings, sshd, name="w3", address="127.0.0.3", tags=["web", "eu"])
    path = write_plan("name: o\nservers: [t1]\nsteps:\n  - run: echo on {{ server }}\n")
    report = tmp_path / "r.json"

    def servers(*args: str) -> list[tuple[str, str]]:
        r = cli("test", "run", path, *args, "--report", f"json:{report}")
        assert r.exit_code == 0, r.stderr
        srv = json.loads(report.read_text())["plans"][0]["servers"]
        return [(s["server"], s["steps"][0]["stdout"].strip()) for s in srv]

    assert servers() == [("t1", "on t1")]
    assert servers("-s", "w2") == [("w2", "on w2")]
    assert servers("-t", "web") == [("w2", "on w2"), ("w3", "on w3")]
    assert servers("-t", "eu", "-s", "local") == [("local", "on local"), ("w3", "on w3")]
    tagged = write_plan("name: t\ntags: [eu]\nservers: [t1]\nsteps:\n  - run: echo on {{ server }}\n", "t.yaml")
    r = cli("test", "run", tagged, "--report", f"json:{report}")
    assert r.exit_code == 0
    assert [s["server"] for s in json.loads(report.read_text())["plans"][0]["servers"]] == ["t1", "w3"]


def test_unreachable_server_exit_5_while_others_finish(ctx, cli, engine, keyring, target, write_plan,
                                                       tmp_path, schema):
    from vpsagent.services import servers as svc

    svc.add_server(ctx, svc.ServerSpec(
        name="dead", host="127.0.0.1", port=_free_port(), user="nobody"))
    path = write_plan(f"name: u\nservers: [dead, {target}]\nsteps:\n  - run: echo one\n  - run: echo two\n")
    junit = tmp_path / "r.xml"
    r = cli("test", "run", path, "--json", "--report", f"junit:{junit}")
    assert r.exit_code == 5
    doc = r.json()
    assert doc["exit_code"] == 5 and doc["ok"] is False
    dead, alive = doc["data"]["plans"][0]["servers"]
    assert dead["server"] == "dead" and dead["status"] == "unreachable" and dead["error"]
    assert [s["status"] for s in dead["steps"]] == ["error", "error"]
    assert dead["steps"][0]["message"].startswith("unreachable: ")
    assert dead["steps"][1]["message"] == "not run: dead is unreachable"
    assert alive["status"] == "passed"
    assert [s["stdout"] for s in alive["steps"]] == ["one\n", "two\n"]
    schema.assertValid(etree.parse(str(junit)))
    assert cli("test", "history", "--json").json()["data"]["runs"][0]["status"] == "error"


def test_ten_megabytes_are_recorded_bounded(cli, engine, target, write_plan, tmp_path, schema):
    from sqlmodel import Session, select

    from vpsagent.db.models import CommandHistory, TestStep

    path = write_plan("name: big\nsteps:\n  - run: head -c 10000000 /dev/zero | tr '\\0' 'y'; exit 1\n")
    junit = tmp_path / "r.xml"
    r = cli("test", "run", path, "-s", target, "--report", f"junit:{junit}")
    assert r.exit_code == 1
    schema.assertValid(etree.parse(str(junit)))
    assert junit.stat().st_size < 200_000
    with Session(engine) as s:
        (step,) = s.exec(select(TestStep)).all()
        assert step.status == "failed" and len(step.stdout_excerpt) <= 16384
        (audit,) = s.exec(select(CommandHistory).where(CommandHistory.source == "test")).all()
        assert audit.stdout_bytes == 10_000_000


def test_fail_fast_flag(cli, target, write_plan, tmp_path):
    path = write_plan("name: f\nsteps:\n  - run: 'false'\n  - run: echo after\n")
    report = tmp_path / "r.json"
    cli("test", "run", path, "-s", target, "--fail-fast", "--report", f"json:{report}")
    assert [s["status"] for s in _steps(json.loads(report.read_text()))] == ["failed", "skipped"]
    cli("test", "run", path, "-s", target, "--report", f"json:{report}")
    assert [s["status"] for s in _steps(json.loads(report.read_text()))] == ["failed", "passed"]


def test_ctrl_c_in_a_real_process_exits_130(home, write_plan, tmp_path, engine):
    from sqlmodel import Session, select

    from vpsagent.db.models import TestRun

    stamp = f"{31 + (os.getpid() % 1000) / 1000:.3f}"  # a sleep we can find and must not outlive us
    path = write_plan(f"name: c\nservers: [local]\nsteps:\n  - run: echo started\n  - run: sleep {stamp}\n"
                      "  - run: echo never\n")
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "test", "run", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if subprocess.run(["pgrep", "-f", f"sleep {stamp}"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the sleep step never started")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    assert b"interrupted" in err
    time.sleep(0.2)
    assert subprocess.run(["pgrep", "-f", f"sleep {stamp}"], capture_output=True).returncode == 1
    with Session(engine) as s:
        (run,) = s.exec(select(TestRun)).all()
        assert run.status == "interrupted" and run.finished_at is not None


def test_a_run_cut_by_a_closed_pipe_keeps_its_completed_steps(home, write_plan, tmp_path, engine):
    """`vpsagent test run plan.yaml 2>&1 | head -1`: the reader leaves, the run stops, and
    what ran is stored (it was stored as `error` with no steps)."""
    from sqlmodel import Session, select

    from vpsagent.db.models import CommandHistory, TestRun, TestStep

    flag = tmp_path / "reader-gone"
    path = write_plan(f"name: cut\nservers: [local]\nsteps:\n  - run: echo one\n"
                      f"  - run: 'while [ ! -e {flag} ]; do sleep 0.05; done'\n    timeout: 60s\n"
                      "  - run: echo never\n")
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "test", "run", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        assert proc.stderr.readline().startswith(b"cut @ local")
        proc.stderr.close()  # the reader of the progress lines goes away mid-run
        flag.touch()  # only now can step 2 finish: a progress line meets the closed pipe by then
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 141
    with Session(engine) as s:
        (run,) = s.exec(select(TestRun)).all()
        steps = s.exec(select(TestStep).where(TestStep.run_id == run.id).order_by(TestStep.seq)).all()
        audited = s.exec(select(CommandHistory).where(CommandHistory.test_run_id == run.id)).all()
    assert run.status == "interrupted" and run.finished_at is not None
    # step 1 always ran; step 2 too when the pipe closed before step 1's line was written
    assert steps and steps[0].command == "echo one" and {st.status for st in steps} == {"passed"}
    assert len(audited) == len(steps) <= 2 and "echo never" not in [a.command for a in audited]


def test_several_plans_and_a_directory(cli, target, write_plan, tmp_path, schema):
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "a.yaml").write_text(f"name: first\nservers: [{target}]\nsteps:\n  - run: echo a\n")
    (plans / "b.yml").write_text(f"name: second\nservers: [{target}]\nsteps:\n  - run: 'false'\n")
    (plans / "notes.txt").write_text("not a plan\n")
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    r = cli("test", "run", str(plans), "--report", f"junit:{junit}", "--report", f"json:{js}")
    assert r.exit_code == 1
    doc = json.loads(js.read_text())
    assert [(p["name"], p["status"]) for p in doc["plans"]] == [("first", "passed"), ("second", "failed")]
    assert doc["plans"][0]["run_id"] != doc["plans"][1]["run_id"]
    xml = etree.parse(str(junit))
    schema.assertValid(xml)
    assert [s.get("name") for s in xml.findall("testsuite")] == [f"first @ {target}", f"second @ {target}"]
    runs = cli("test", "history", "--json").json()["data"]["runs"]
    assert [x["plan"] for x in runs] == ["second", "first"]  # newest first


def test_one_invalid_plan_stops_all_of_them(cli, write_plan, tmp_path):
    marker = tmp_path / "marker"
    good = write_plan(f"name: good\nservers: [local]\nsteps:\n  - run: touch {marker}\n", "good.yaml")
    bad = write_plan("name: bad\nservers: [local]\nsteps:\n  - run: echo {{ x }}\n", "bad.yaml")
    r = cli("test", "run", good, bad)
    assert r.exit_code == 2
    assert f"{bad}:4:10: undefined variable 'x'" in r.stderr
    assert not marker.exists()


def test_sudo_step(cli, target, write_plan, tmp_path):
    path = write_plan(f"name: s\nservers: [{target}]\nsteps:\n  - run: id -u\n    sudo: true\n"
                      "    expect: {stdout: {equals: '0'}}\n")
    report = tmp_path / "r.json"
    r = cli("test", "run", path, "--report", f"json:{report}")
    assert r.exit_code == 0, _steps(json.loads(report.read_text()))[0]["message"]


def test_binary_output_is_recorded_on_every_database(cli, engine, target, write_plan, tmp_path):
    from sqlmodel import Session, select

    from vpsagent.db.models import CommandHistory, TestStep

    path = write_plan(f"name: bin\nservers: [{target}]\nsteps:\n"
                      "  - run: printf 'a\\000b\\377c\\033[0m\\n'; printf 'e\\000rr' >&2; exit 1\n")
    r = cli("test", "run", path, "--format", "junit")
    assert r.exit_code == 1
    etree.fromstring(r.stdout.encode())  # well-formed despite NUL, 0xFF and ESC
    with Session(engine) as s:
        (step,) = s.exec(select(TestStep)).all()
        assert step.status == "failed" and "\x00" not in step.stdout_excerpt
        assert step.stdout_excerpt.startswith("ab\ufffdc")
        (audit,) = s.exec(select(CommandHistory).where(CommandHistory.source == "test")).all()
        assert audit.exit_code == 1 and audit.stdout_bytes == 10  # the full size, NUL included


def test_ctrl_c_stops_every_server_at_once(settings, sshd, ssh_server, write_plan):
    """With several servers the commands run in worker threads: Ctrl-C must not wait for them."""
    from tests.sshd import register_sshd

    register_sshd(settings, sshd, name="t2", address="127.0.0.2")
    stamp = f"{41 + (os.getpid() % 1000) / 1000:.3f}"
    path = write_plan(f"name: c2\nservers: [{ssh_server}, t2]\nsteps:\n  - run: sleep {stamp}\n")
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "test", "run", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = subprocess.run(["pgrep", "-fx", f"sleep {stamp}"], capture_output=True).stdout.split()
            if len(found) >= 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the sleep steps never started on both servers")
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=40)
        stopped_after = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert stopped_after < 15, f"Ctrl-C took {stopped_after:.1f}s: it waited for the commands"
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-fx", f"sleep {stamp}"], capture_output=True).returncode == 1


def test_host_key_mismatch_is_unreachable(cli, engine, settings, sshd, write_plan, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tests.sshd import register_sshd

    register_sshd(settings, sshd, name="spoofed", pin=False)
    # pin a different ed25519 key: the server's real one must then be refused
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode().split()
    from vpsagent.db.inventory import pin_host_key

    pin_host_key(engine, "spoofed", other[0], other[1], "SHA256:pinned-elsewhere")
    path = write_plan("name: k\nservers: [spoofed]\nsteps:\n  - run: echo must not run\n")
    js = tmp_path / "r.json"
    r = cli("test", "run", path, "--report", f"json:{js}")
    assert r.exit_code == 5
    (srv,) = json.loads(js.read_text())["plans"][0]["servers"]
    assert srv["status"] == "unreachable"
    assert "HOST KEY CHANGED" in srv["error"] and sshd.host_key_fingerprint in srv["error"]
    assert srv["steps"][0]["stdout"] == ""


def test_step_timeout_stops_the_command(cli, target, write_plan, tmp_path):
    stamp = f"{51 + (os.getpid() % 1000) / 1000:.3f}"
    path = write_plan(f"name: t\nservers: [{target}]\nsteps:\n  - run: sleep {stamp}\n    timeout: 1s\n"
                      "  - run: echo next\n")
    js = tmp_path / "r.json"
    r = cli("test", "run", path, "--report", f"json:{js}")
    assert r.exit_code == 1
    first, second = _steps(json.loads(js.read_text()))
    assert first["status"] == "failed" and "timed out after 1s" in first["message"]
    assert first["exit_code"] is None
    assert second["status"] == "passed"  # the connection is still good for the next step
    time.sleep(0.3)
    assert subprocess.run(["pgrep", "-fx", f"sleep {stamp}"], capture_output=True).returncode == 1


def test_all_steps_share_one_ssh_connection(cli, sshd, ssh_server, write_plan):
    path = write_plan(f"name: pool\nservers: [{ssh_server}]\nsteps:\n"
                      + "".join(f"  - run: echo {i}\n" for i in range(6))
                      + f"  - port: {{port: {sshd.port}}}\n  - process: {{name: sshd}}\n")
    before = sshd.log().count("Accepted publickey")
    r = cli("test", "run", path)
    assert r.exit_code == 0, r.stdout
    assert sshd.log().count("Accepted publickey") - before == 1


def test_output_file_is_written_under_json_too(cli, write_plan, tmp_path):
    path = write_plan("name: o\nservers: [local]\nsteps:\n  - run: echo hi\n")
    out = tmp_path / "report.tap"
    r = cli("test", "run", path, "--format", "tap", "-o", str(out), "--json")
    assert r.exit_code == 0
    assert r.json()["data"]["summary"]["passed"] == 1
    assert out.read_text() == "TAP version 13\n1..1\nok 1 - o @ local: echo hi\n"
