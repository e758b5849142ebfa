"""Every step kind, run for real on this machine (the built-in `local` host).

Tool fallbacks (curl → wget → python3, ss → netstat → /proc, pgrep → ps, dpkg → none)
are exercised by running the generated shell with a PATH that only holds the tools
under test, so the branch the server would take is the one that runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from tests.plans.helpers import local_run, my_comm, steps_of


def one(text: str, overrides: dict | None = None):
    """Run a one-server plan; returns its step results."""
    return steps_of(local_run(text, overrides))


# ---------------------------------------------------------------------------
# run: exit codes and matchers


def test_run_matchers_pass():
    steps = one(r"""
name: matchers
steps:
  - run: printf 'alpha beta\nline two\n'
    expect:
      exit: 0
      stdout: beta
  - run: printf 'alpha beta\n'
    expect:
      stdout: {contains: [alpha, beta], not_contains: gamma}
  - run: printf '  exactly this  \n'
    expect: {stdout: {equals: exactly this}}
  - run: printf 'a\nversion 1.24.0\nz\n'
    expect: {stdout: {matches: '^version \d+\.\d+\.\d+$'}}
  - run: echo 42
    expect: {stdout: {lt: 43, le: 42, gt: 41, ge: 42}}
  - run: echo 3.5
    expect: {stdout: {gt: 3.25, lt: 4}}
  - run: echo oops >&2; exit 3
    expect:
      exit: [1, 3]
      stderr: {contains: oops, not_contains: fine}
""")
    assert [s.status for s in steps] == ["passed"] * 7, [s.message for s in steps]
    assert steps[0].exit_code == 0 and steps[0].stdout == "alpha beta\nline two\n"
    assert steps[6].exit_code == 3 and steps[6].stderr == "oops\n"
    assert steps[0].name == "printf 'alpha beta\\nline two\\n'"  # derived from the command


@pytest.mark.parametrize("expect, stdout, message", [
    ("{exit: 0}", "exit 4", "expected exit 0, got exit 4"),
    ("{exit: [0, 1]}", "exit 4", "expected exit one of [0, 1], got exit 4"),
    ("{stdout: gamma}", "echo alpha", "expected stdout to contain 'gamma', got 'alpha'"),
    ("{stdout: {not_contains: alp}}", "echo alpha", "expected stdout not to contain 'alp', got 'alpha'"),
    ("{stdout: {equals: alph}}", "echo alpha", "expected stdout to equal 'alph', got 'alpha'"),
    ("{stdout: {matches: '^b'}}", "echo alpha", "expected stdout to match /^b/, got 'alpha'"),
    ("{stdout: {lt: 10}}", "echo 10", "expected stdout < 10, got 10"),
    ("{stdout: {le: 9}}", "echo 10", "expected stdout <= 9, got 10"),
    ("{stdout: {gt: 10}}", "echo 10", "expected stdout > 10, got 10"),
    ("{stdout: {ge: 11}}", "echo 10", "expected stdout >= 11, got 10"),
    ("{stdout: {lt: 90}}", "echo full", "expected stdout < 90, got 'full' (not a number)"),
    ("{stderr: {contains: boom}}", "echo calm >&2", "expected stderr to contain 'boom', got 'calm'"),
])
def test_run_matchers_fail(expect, stdout, message):
    (step,) = one(f"name: m\nsteps:\n  - run: {stdout}\n    expect: {expect}\n")
    assert step.status == "failed"
    assert message in step.message
    assert step.attempts == 1


def test_capture_feeds_later_steps_and_names():
    steps = one(r"""
name: capture
vars: {prefix: v}
steps:
  - name: read release
    run: printf 'release=1.4.2\nbuild=77\n'
    capture: {version: 'release=(\d+\.\d+\.\d+)', build: 'build=\d+'}
  - name: "release {{ version }} from {{ plan }} on {{ server }}"
    run: echo "{{ prefix }}{{ version }} {{ build }}"
    expect: {stdout: {equals: "v1.4.2 build=77"}}
  - run: echo nothing
    capture: {missing: 'release=(\S+)'}
""")
    assert steps[0].status == "passed"
    assert steps[0].captured == {"version": "1.4.2", "build": "build=77"}  # no group: whole match
    assert steps[1].status == "passed", steps[1].message
    assert steps[1].name == "release 1.4.2 from capture on local"
    assert steps[1].command == 'echo "v1.4.2 build=77"'
    assert steps[2].status == "failed"
    assert r"capture missing: /release=(\S+)/ found nothing in stdout" in steps[2].message


def test_retry_until_it_passes(tmp_path):
    counter = tmp_path / "n"
    steps = one(f"""
name: retry
steps:
  - run: echo x >> {counter}; [ $(wc -l < {counter}) -ge 3 ]
    retry: {{attempts: 5, interval: 50ms}}
  - run: "false"
    retry: {{attempts: 2, interval: 10ms}}
""")
    assert steps[0].status == "passed" and steps[0].attempts == 3
    assert len(counter.read_text().splitlines()) == 3  # stopped as soon as it passed
    assert steps[1].status == "failed" and steps[1].attempts == 2
    assert steps[1].message == "expected exit 0, got exit 1 (after 2 attempts)"


def test_eventually_polls_until_deadline(tmp_path):
    counter = tmp_path / "n"
    steps = one(f"""
name: eventually
steps:
  - run: echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ]
    eventually: 10s
  - run: exit 1
    eventually: 600ms
""")
    assert steps[0].status == "passed" and steps[0].attempts == 2
    assert steps[1].status == "failed"
    assert steps[1].attempts >= 2
    assert 0.5 <= steps[1].duration_s < 5
    assert "(after" in steps[1].message


def test_skip_never_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    steps = one(f"""
name: skip
steps:
  - run: touch {a}
    skip: true
  - run: touch {b}
    skip: waiting for the new disk
  - run: echo runs
    skip: false
""")
    assert [s.status for s in steps] == ["skipped", "skipped", "passed"]
    assert steps[0].message == "skipped by the plan"
    assert steps[1].message == "waiting for the new disk"
    assert not a.exists() and not b.exists()


def test_sudo_runs_as_root():
    (step,) = one("name: s\nsteps:\n  - run: id -u\n    sudo: true\n    expect: {stdout: {equals: '0'}}\n")
    assert step.status == "passed", step.message


def test_timeout_fails_the_step():
    (step,) = one("name: t\nsteps:\n  - run: sleep 5\n    timeout: 300ms\n")
    assert step.status == "failed"
    assert "timed out after 0.3s" in step.message
    assert step.exit_code is None
    assert step.duration_s < 4


def test_fail_fast_skips_the_rest(tmp_path):
    marker = tmp_path / "m"
    text = f"name: ff\nsteps:\n  - run: 'false'\n  - run: touch {marker}\n"
    steps = steps_of(local_run(text, fail_fast=True))
    assert [s.status for s in steps] == ["failed", "skipped"]
    assert steps[1].message == "not run: fail_fast after step 1 failed"
    assert not marker.exists()
    steps = steps_of(local_run("fail_fast: true\n" + text))
    assert steps[1].status == "skipped"
    steps = steps_of(local_run("fail_fast: true\n" + text, fail_fast=False))  # --no-fail-fast wins
    assert steps[1].status == "passed" and marker.exists()


def test_values_are_shell_quoted(tmp_path):
    marker = tmp_path / "pwned"
    steps = one(f"""
name: quoting
steps:
  - file: {{path: "/nonexistent; touch {marker}", exists: false}}
  - service: {{name: "x; touch {marker}", active: false}}
  - process: {{name: "x$(touch {marker})", running: false}}
  - package: {{name: "x`touch {marker}`", installed: false}}
""")
    assert [s.status for s in steps] == ["passed"] * 4, [s.message for s in steps]
    assert not marker.exists()


# ---------------------------------------------------------------------------
# http


def test_http_from_server_and_local(web):
    steps = one(f"""
name: http
vars: {{base: "{web.url}"}}
steps:
  - http: {{url: "{{{{ base }}}}", body_contains: Welcome, response_headers: {{content-type: text/html, x-served-by: vpsagent}}}}
  - http: {{url: "{{{{ base }}}}", from: local, status: 200, body_contains: [Welcome, test site]}}
  - http: {{url: "{{{{ base }}}}nope", status: 404}}
  - http: {{url: "{{{{ base }}}}redirect", status: [301, 302]}}
  - http:
      url: "{{{{ base }}}}echo"
      method: POST
      body: hello-body
      headers: {{X-Token: abc123}}
      body_contains: ["POST /echo", "X-Token: abc123", hello-body]
  - http: {{url: "{{{{ base }}}}echo", method: PUT, from: local, headers: {{X-Local: yes-local}}, body_contains: "X-Local: yes-local"}}
""")
    assert [s.status for s in steps] == ["passed"] * 6, [s.message for s in steps]
    assert steps[0].name == f"http GET {web.url}"  # derived from the spec, then rendered
    assert steps[0].description == f"GET {web.url} from server → 200"
    assert steps[1].command is None  # from: local runs here, nothing on the server
    assert [r[0] for r in web.requests].count("POST") == 1
    assert web.requests[-1][0] == "PUT" and web.requests[-1][2]["X-Local"] == "yes-local"


@pytest.mark.parametrize("where", ["server", "local"])
def test_http_failures(web, where):
    free = _free_port()
    steps = one(f"""
name: http fails
steps:
  - http: {{url: "{web.url}", from: {where}, status: 201, body_contains: Goodbye, response_headers: {{x-missing: a, content-type: json}}}}
  - http: {{url: "http://127.0.0.1:{free}/", from: {where}, timeout: 2s}}
""")
    assert [s.status for s in steps] == ["failed", "failed"]
    m = steps[0].message
    assert "expected status 201, got 200" in m
    assert "expected body to contain 'Goodbye'" in m
    assert "expected header x-missing, got none" in m
    assert "expected header content-type to contain 'json', got 'text/html; charset=utf-8'" in m
    assert steps[1].message.startswith("request failed: ")
    assert len(steps[1].message) > len("request failed: ")


def test_http_retry_and_eventually(web):
    web.flaky_left = 2
    (step,) = one(f"name: h\nsteps:\n  - http: {{url: '{web.url}flaky'}}\n    retry: {{attempts: 4, interval: 50ms}}\n")
    assert step.status == "passed" and step.attempts == 3
    web.flaky_left = 100
    (step,) = one(f"name: h\nsteps:\n  - http: {{url: '{web.url}flaky', from: local}}\n    eventually: 500ms\n")
    assert step.status == "failed" and "expected status 200, got 503" in step.message


def _tool_bin(tmp_path: Path, *tools: str) -> Path:
    """A directory holding only these tools (symlinks), for a PATH without the others."""
    d = tmp_path / ("bin-" + "-".join(tools or ("none",)))
    d.mkdir()
    for t in tools:
        target = sys.executable if t == "python3" else shutil.which(t)
        assert target, t
        (d / t).symlink_to(target)
    return d


def _run_with_path(command: str, path: Path):
    from vpsagent.remote.local import LocalHost

    return LocalHost().run(f"PATH={path}; export PATH; {command}", timeout=20)


@pytest.mark.parametrize("tools, chosen", [
    (("curl", "wget", "python3"), "curl"),
    (("wget", "python3"), "wget"),
    (("python3",), "python3"),
])
def test_http_tool_fallback(web, tmp_path, tools, chosen):
    from vpsagent.plans import checks
    from vpsagent.plans.schema import Step

    spec = {"url": web.url + "echo", "method": "POST", "body": "b0dy",
            "headers": {"X-Tool": chosen}, "body_contains": ["POST /echo", "b0dy"],
            "response_headers": {"content-type": "text/plain"}}
    step = Step(index=1, name="h", kind="http", spec=spec, timeout=10)
    check = checks.build(step, spec, {}, {})
    bindir = _tool_bin(tmp_path, *tools)
    result = _run_with_path(check.command or "", bindir)
    assert result.stdout.startswith(f"#tool {chosen}\n".encode())
    outcome = check.judge(result)
    assert outcome.passed, (outcome.failures, result.stderr_text())
    assert web.requests[-1][2].get("X-Tool") == chosen
    # 404 and redirects are answers, not errors, whichever tool asks
    spec404 = {"url": web.url + "redirect", "status": 302}
    check = checks.build(step, spec404, {}, {})
    assert check.judge(_run_with_path(check.command or "", bindir)).passed


def test_http_without_any_tool(web, tmp_path):
    from vpsagent.plans import checks
    from vpsagent.plans.schema import Step

    spec = {"url": web.url}
    check = checks.build(Step(index=1, name="h", kind="http", spec=spec), spec, {}, {})
    result = _run_with_path(check.command or "", _tool_bin(tmp_path))
    assert result.exit_code == 127
    outcome = check.judge(result)
    assert not outcome.passed
    assert outcome.failures == ["request failed: no curl, wget or python3 on the server"]


# ---------------------------------------------------------------------------
# file


def test_file_checks(tmp_path):
    f = tmp_path / "app.conf"
    f.write_text("worker_processes 4;\nlisten 80;\n")
    f.chmod(0o640)
    link = tmp_path / "link"
    link.symlink_to(f)
    steps = one(f"""
name: files
steps:
  - file: {{path: {f}, exists: true, type: file, mode: "0640", owner: root, group: root, contains: worker_processes, not_contains: "listen 443"}}
  - file: {{path: {f}, mode: 0640, contains: [worker_processes, "listen 80"]}}
  - file: {{path: {f}, mode: 640}}
  - file: {{path: {tmp_path}, type: directory}}
  - file: {{path: {link}, type: symlink}}
  - file: {{path: {tmp_path}/absent, exists: false}}
""")
    # `mode: 640` unquoted means octal, as for chmod (YAML alone would read decimal 640)
    assert [s.status for s in steps] == ["passed"] * 6, [s.message for s in steps]
    steps = one(f"""
name: files fail
steps:
  - file: {{path: {f}, type: directory, mode: "0644", owner: nobody, group: nogroup, contains: "listen 443", not_contains: worker}}
  - file: {{path: {tmp_path}/absent}}
  - file: {{path: {f}, exists: false}}
""")
    assert [s.status for s in steps] == ["failed"] * 3
    m = steps[0].message
    for part in ("expected type directory, got file", "expected mode 0644, got 0640",
                 "expected owner nobody, got root", "expected group nogroup, got root",
                 f"expected {f} to contain 'listen 443'", f"expected {f} not to contain 'worker'"):
        assert part in m
    assert steps[1].message == f"expected {tmp_path}/absent to exist, it does not exist"
    assert steps[2].message == f"expected {f} to be absent, it exists"


# ---------------------------------------------------------------------------
# port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_checks(web):
    free = _free_port()
    steps = one(f"""
name: ports
vars: {{web_port: {web.port}}}
steps:
  - port: {{port: "{{{{ web_port }}}}"}}
  - port: {{port: {free}, listening: false}}
  - port: {{port: {free}}}
  - port: {{port: {web.port}, listening: false}}
""")
    assert [s.status for s in steps] == ["passed", "passed", "failed", "failed"]
    assert steps[2].message == f"expected tcp port {free} listening, it is not listening"
    assert steps[3].message == f"expected tcp port {web.port} not listening, it is listening"


def test_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        (step,) = one(f"name: u\nsteps:\n  - port: {{port: {port}, protocol: udp}}\n")
        assert step.status == "passed", step.message
    (step,) = one(f"name: u\nsteps:\n  - port: {{port: {port}, protocol: udp}}\n")
    assert step.status == "failed"


@pytest.mark.parametrize("tools, chosen", [(("ss", "netstat", "cat"), "ss"), (("netstat", "cat"), "netstat"),
                                           (("cat",), "proc")])
def test_port_tool_fallback(web, tmp_path, tools, chosen):
    from vpsagent.plans import checks

    result = _run_with_path(checks.port_command("tcp"), _tool_bin(tmp_path, *tools))
    assert result.stdout_text().startswith(f"#tool {chosen}\n")
    ports = checks.listening_ports(result.stdout_text(), "tcp")
    assert web.port in ports
    assert _free_port() not in ports


# ---------------------------------------------------------------------------
# service (no systemd on this machine: the sysv/`service` branch runs)


def test_service_checks():
    steps = one("""
name: services
steps:
  - service: {name: postgresql, active: true, enabled: true}
  - service: {name: no-such-service-xyz, active: false, enabled: false}
  - service: {name: no-such-service-xyz}
  - service: {name: postgresql, active: false}
""")
    assert [s.status for s in steps] == ["passed", "passed", "failed", "failed"], [s.message for s in steps]
    manager = "systemd" if os.path.isdir("/run/systemd/system") else "sysv"
    assert steps[2].message == f"expected no-such-service-xyz active, got inactive ({manager})"
    assert steps[3].message == f"expected postgresql inactive, got active ({manager})"


def test_service_sysv_branch_reads_rc_links():
    from vpsagent.plans import checks
    from vpsagent.remote.local import LocalHost

    out = LocalHost().run(checks.service_command("postgresql", "sysv"), timeout=20).stdout_text()
    assert out.splitlines() == ["manager sysv", "active active", "enabled enabled"]


# ---------------------------------------------------------------------------
# package


def test_package_checks():
    steps = one("""
name: packages
steps:
  - package: {name: openssh-server}
  - package: {name: openssh-server, version: ">=1:8.0"}
  - package: {name: openssh-server, version: ">=8.0"}
  - package: {name: no-such-package-xyz, installed: false}
  - package: {name: openssh-server, version: "<8"}
  - package: {name: no-such-package-xyz}
  - package: {name: openssh-server, installed: false}
""")
    assert [s.status for s in steps] == ["passed"] * 4 + ["failed"] * 3, [s.message for s in steps]
    assert steps[4].message.startswith("expected openssh-server < 8, got 1:")
    assert steps[5].message == "expected no-such-package-xyz installed, it is not installed"
    assert steps[6].message.startswith("expected openssh-server absent, it is installed (1:")


def test_package_without_a_manager(tmp_path):
    from vpsagent.plans import checks
    from vpsagent.plans.schema import Step

    spec = {"name": "openssh-server"}
    check = checks.build(Step(index=1, name="p", kind="package", spec=spec), spec, {}, {})
    outcome = check.judge(_run_with_path(check.command or "", _tool_bin(tmp_path)))
    assert outcome.failures == ["could not query package openssh-server: no dpkg, rpm or apk on the server"]


@pytest.mark.parametrize("a, op, b, ok", [
    ("1:9.2p1-2+deb12u10", ">=", "9.0", True),
    ("1.18.0-6ubuntu14", ">=", "1.18", True),
    ("1.18.0-6ubuntu14", ">", "1.18.0", False),
    ("1.2.10", ">", "1.2.9", True),
    ("1.0~rc1", "<", "1.0", True),
    ("2.0", "!=", "2.0", False),
    ("15+248+deb12u2", ">=", "13", True),
])
def test_version_comparison(a, op, b, ok):
    from vpsagent.plans.checks import version_satisfies

    assert version_satisfies(a, op, b) is ok


# ---------------------------------------------------------------------------
# process


def test_process_checks():
    me = my_comm()
    steps = one(f"""
name: processes
steps:
  - process: {{name: "{me}"}}
  - process: {{name: no-such-proc-xyz, running: false}}
  - process: {{name: no-such-proc-xyz}}
""")
    assert [s.status for s in steps] == ["passed", "passed", "failed"], [s.message for s in steps]
    assert steps[2].message == "expected no-such-proc-xyz running, 0 running"


@pytest.mark.parametrize("tools, chosen", [(("pgrep", "wc"), "pgrep"), (("ps", "grep"), "ps")])
def test_process_tool_fallback(tmp_path, tools, chosen):
    from vpsagent.plans import checks

    result = _run_with_path(checks.process_command(my_comm()), _tool_bin(tmp_path, *tools))
    lines = result.stdout_text().splitlines()
    assert lines[0] == f"#tool {chosen}"
    assert int(lines[1].split()[1]) >= 1
