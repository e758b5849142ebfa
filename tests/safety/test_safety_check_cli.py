"""`vpsagent safety check`: through click's CliRunner and as a real subprocess with a fresh
VPSAGENT_HOME. The commands are only judged; nothing is run."""

from __future__ import annotations

import json
from pathlib import Path

POLICY = """\
allow:
  - ./deploy.sh
deny:
  - reboot
tags:
  prod:
    deny: ["systemctl restart *"]
servers:
  web1:
    allow: ["rm -rf /srv/app/cache"]
"""


def _write_policy(settings) -> None:  # noqa: ANN001
    settings.policy_file.parent.mkdir(parents=True, exist_ok=True)
    settings.policy_file.write_text(POLICY)


def test_text_has_one_line_per_command_and_exit_0(cli) -> None:  # noqa: ANN001
    r = cli("safety", "check", "df -h", "rm -rf /srv", "./deploy.sh", "systemctl restart nginx")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("allow") and "read-only" in lines[0] and "df -h" in lines[0]
    assert lines[1].startswith("deny") and "destructive" in lines[1]
    assert lines[2].startswith("ask") and "unknown" in lines[2]
    assert lines[3].startswith("ask") and "change" in lines[3]


def test_json_results_in_input_order_with_the_contract_fields(cli) -> None:  # noqa: ANN001
    r = cli("safety", "check", "--json", "--mode", "yes", "systemctl restart nginx", "frobnicate", "df -h")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    results = doc["data"]["results"]
    assert [x["command"] for x in results] == ["systemctl restart nginx", "frobnicate", "df -h"]
    assert all(set(x) == {"command", "risk", "decision", "reason", "rule"} for x in results)
    assert [(x["risk"], x["decision"]) for x in results] == [("change", "allow"), ("unknown", "ask"),
                                                             ("read-only", "allow")]
    assert doc["data"]["mode"] == "yes" and doc["ok"] is True


def test_stdin_one_per_line_or_nul_separated(cli) -> None:  # noqa: ANN001
    r = cli("safety", "check", "--json", "-", input="df -h\n\nrm -rf /srv\n")
    assert [x["command"] for x in json.loads(r.stdout)["data"]["results"]] == ["df -h", "rm -rf /srv"]
    r = cli("safety", "check", "--json", "-0", "-", input="cd /srv\nrm -rf cache\0uptime\0")
    results = json.loads(r.stdout)["data"]["results"]
    assert [x["command"] for x in results] == ["cd /srv\nrm -rf cache", "uptime"]
    assert [x["decision"] for x in results] == ["deny", "allow"]


def test_read_only_mode(cli) -> None:  # noqa: ANN001
    r = cli("safety", "check", "--json", "--mode", "read-only", "df -h", "touch /tmp/x")
    assert [x["decision"] for x in json.loads(r.stdout)["data"]["results"]] == ["allow", "deny"]


def test_server_and_tag_rules_apply_with_s(cli, settings) -> None:  # noqa: ANN001
    _write_policy(settings)
    assert cli("servers", "add", "web1", "--host", "198.51.100.7", "--password-stdin", "-t", "prod",
               input="pw\n").exit_code == 0
    commands = ["rm -rf /srv/app/cache", "systemctl restart nginx", "./deploy.sh", "reboot"]
    plain = json.loads(cli("safety", "check", "--json", *commands).stdout)["data"]
    assert [x["decision"] for x in plain["results"]] == ["deny", "ask", "allow", "deny"]
    on_web1 = json.loads(cli("safety", "check", "--json", "-s", "web1", *commands).stdout)["data"]
    assert [x["decision"] for x in on_web1["results"]] == ["allow", "deny", "allow", "deny"]
    assert [x["rule"] for x in on_web1["results"]] == ["rm -rf /srv/app/cache", "systemctl restart *", "./deploy.sh",
                                                       "reboot"]
    assert on_web1["tags"] == ["prod"] and on_web1["policy"] == str(settings.policy_file)


def test_bad_input_is_exit_2(cli, settings) -> None:  # noqa: ANN001
    assert cli("safety", "check").exit_code == 2
    assert cli("safety", "check", "df", "-").exit_code == 2
    assert cli("safety", "check", "-0", "df -h").exit_code == 2
    assert cli("safety", "check", "--mode", "yolo", "df").exit_code == 2
    r = cli("safety", "check", "-s", "nope", "df -h")
    assert r.exit_code == 2 and "nope" in r.stderr
    settings.policy_file.parent.mkdir(parents=True, exist_ok=True)
    settings.policy_file.write_text("alow: [x]\n")
    r = cli("safety", "check", "df -h")
    assert r.exit_code == 2 and "alow" in r.stderr


def test_as_a_real_subprocess_with_a_fresh_home(run_vpsagent, home: Path) -> None:  # noqa: ANN001
    r = run_vpsagent("safety", "check", "--json", "-", input="echo 'rm -rf /' | sh\nls -la\n",
                     env={"VPSAGENT_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)["data"]["results"]
    assert [(x["command"], x["risk"], x["decision"]) for x in results] == [
        ("echo 'rm -rf /' | sh", "destructive", "deny"), ("ls -la", "read-only", "allow")]
