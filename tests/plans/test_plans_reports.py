"""Reports: JUnit XML valid against the Jenkins JUnit schema, TAP 13, the JSON layout, text.

The results come from real runs on this machine, including output that XML cannot
carry and a command that prints 10 MB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from lxml import etree

from tests.plans.helpers import local_run

XSD = Path(__file__).with_name("junit.xsd")

MIXED_PLAN = r"""
name: "mixed # plan"
description: one of each outcome
vars: {bad_port: not-a-number}
steps:
  - name: passes
    run: echo hello out; echo hello err >&2
  - name: fails with control characters
    run: printf 'bad\001\002\033[31mred\000nul\013\014 ok\n'; printf 'err\007\n' >&2; exit 3
    expect: {stdout: {contains: fine}}
  - name: skipped one
    run: echo never
    skip: "not today # really"
  - name: errors on a bad variable
    port: {port: "{{ bad_port }}"}
"""


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.fixture(scope="module")
def mixed():
    """The mixed plan run on two 'servers' (both this machine, under two names)."""
    result = local_run(MIXED_PLAN, servers=("local", "other"), file="plans/mixed.yaml")
    result.run_id = 7
    return result


def test_outcomes(mixed):
    for s in mixed.servers:
        assert [st.status for st in s.steps] == ["passed", "failed", "skipped", "error"]
    assert mixed.servers[0].steps[3].message == "port.port: expected a whole number, got 'not-a-number'"
    assert mixed.status == "error"  # an errored step makes the whole run an error


def test_junit_validates_and_carries_the_facts(mixed, schema):
    from vpsagent.plans import reporters

    text = reporters.render("junit", [mixed], 1)
    doc = etree.fromstring(text.encode("utf-8"))
    schema.assertValid(doc)

    assert doc.tag == "testsuites"
    assert (doc.get("tests"), doc.get("failures"), doc.get("errors")) == ("8", "2", "2")
    suites = doc.findall("testsuite")
    assert [s.get("name") for s in suites] == ["mixed # plan @ local", "mixed # plan @ other"]
    suite = suites[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == \
        ("4", "1", "1", "1")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props == {"server": "local", "plan": "plans/mixed.yaml", "run_id": "7"}
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["001 passes", "002 fails with control characters",
                                              "003 skipped one", "004 errors on a bad variable"]
    assert cases[0].get("classname") == "mixed # plan.local"
    assert cases[0].findtext("system-out") == "hello out\n"
    assert cases[0].findtext("system-err") == "hello err\n"
    failure = cases[1].find("failure")
    assert "expected stdout to contain 'fine'" in failure.get("message")
    body = failure.text
    assert "expected: exit 0; stdout contains 'fine'" in body
    assert "actual: exit 3; stdout" in body
    assert "command: printf" in body
    # XML-illegal characters are gone, the rest of the output is kept
    assert "stdout:\nbad[31mrednul ok\n" in body
    assert "stderr:\nerr\n" in body
    assert cases[2].find("skipped").get("message") == "not today # really"
    assert cases[3].find("error").get("message").startswith("port.port: expected a whole number")
    for ch in ("\x00", "\x01", "\x02", "\x07", "\x0b", "\x0c", "\x1b"):
        assert ch not in text


def test_xml_safe_keeps_legal_unicode():
    from vpsagent.plans.reporters import xml_safe

    assert xml_safe("a\x00b\x08c\td\ne\rf\ufffeg\U0001f600h\ud7ffi") == "abc\td\ne\rfg\U0001f600h\ud7ffi"


def test_tap13(mixed):
    from vpsagent.plans import reporters

    text = reporters.render("tap", [mixed], 1)
    lines = text.splitlines()
    assert lines[0] == "TAP version 13"
    assert lines[1] == "1..8"
    results = [x for x in lines if x.startswith(("ok ", "not ok "))]
    assert results[0] == "ok 1 - mixed \\# plan @ local: passes"
    assert results[1] == "not ok 2 - mixed \\# plan @ local: fails with control characters"
    assert results[2] == "ok 3 - mixed \\# plan @ local: skipped one # SKIP not today \\# really"
    assert results[3] == "not ok 4 - mixed \\# plan @ local: errors on a bad variable"
    assert results[4] == "ok 5 - mixed \\# plan @ other: passes"
    assert len(results) == 8
    # the YAML diagnostic block after a failure parses and says what went wrong
    start = lines.index(results[1]) + 1
    assert lines[start] == "  ---"
    end = lines.index("  ...", start)
    diag = yaml.safe_load("\n".join(x[2:] for x in lines[start + 1:end]))
    assert diag["severity"] == "fail"
    assert diag["server"] == "local" and diag["plan"] == "plans/mixed.yaml" and diag["line"] == 8
    assert diag["exit_code"] == 3
    assert "expected stdout to contain 'fine'" in diag["message"]
    assert diag["stdout"] == "bad[31mrednul ok\n"
    start = lines.index(results[3]) + 1
    end = lines.index("  ...", start)
    diag = yaml.safe_load("\n".join(x[2:] for x in lines[start + 1:end]))
    assert diag["severity"] == "error"


def test_json_layout(mixed):
    from vpsagent.plans import reporters

    doc = json.loads(reporters.render("json", [mixed], 1))
    assert set(doc) == {"format", "version", "ok", "exit_code", "summary", "plans"}
    assert (doc["format"], doc["version"], doc["ok"], doc["exit_code"]) == ("vpsagent-test-report", 1, False, 1)
    assert doc["summary"] == {"passed": 2, "failed": 2, "error": 2, "skipped": 2, "total": 8}
    (plan,) = doc["plans"]
    assert set(plan) == {"name", "path", "run_id", "status", "started_at", "duration_s", "summary", "servers"}
    assert (plan["name"], plan["path"], plan["run_id"]) == ("mixed # plan", "plans/mixed.yaml", 7)
    assert plan["started_at"].endswith("Z") and "T" in plan["started_at"]
    assert [s["server"] for s in plan["servers"]] == ["local", "other"]
    server = plan["servers"][0]
    assert set(server) == {"server", "status", "error", "duration_s", "steps"}
    step = server["steps"][1]
    assert set(step) == {"seq", "name", "kind", "status", "line", "command", "exit_code", "attempts",
                         "duration_s", "message", "expected", "actual", "stdout", "stderr",
                         "stdout_bytes", "stderr_bytes", "captured", "explanation"}
    assert (step["seq"], step["kind"], step["status"], step["line"], step["exit_code"]) == (2, "run", "failed", 8, 3)
    assert step["stdout_bytes"] == len(b"bad\x01\x02\x1b[31mred\x00nul\x0b\x0c ok\n")
    assert step["explanation"] is None
    assert server["steps"][2]["message"] == "not today # really"


def test_text_report(mixed):
    from vpsagent.plans import reporters

    text = reporters.render("text", [mixed], 1)
    assert "mixed # plan on local: error" in text
    assert "FAIL   2. fails with control characters" in text
    assert "$ printf 'bad" in text
    assert "skip   3. skipped one  (not today # really)" in text
    assert text.rstrip().splitlines()[-1].startswith("2 passed, 2 failed, 2 errors, 2 skipped in ")


def test_unknown_format(mixed):
    from vpsagent.plans import reporters

    with pytest.raises(ValueError, match="unknown report format 'xml'"):
        reporters.render("xml", [mixed], 1)


def test_ten_megabytes_of_output_do_not_break_reports(schema):
    from vpsagent.plans import reporters

    plan = """
name: loud
steps:
  - name: prints 10 MB then fails
    run: head -c 10000000 /dev/zero | tr '\\0' 'x'; printf '\\nTHE END\\n'; exit 1
  - name: prints 10 MB of binary and passes
    run: head -c 10000000 /dev/urandom
"""
    result = local_run(plan)
    loud, binary = result.servers[0].steps
    assert loud.status == "failed" and binary.status == "passed"
    assert loud.stdout_bytes == 10_000_000 + len("\nTHE END\n")
    assert binary.stdout_bytes == 10_000_000
    assert len(loud.stdout) < 70_000  # head + tail excerpt
    assert loud.stdout.startswith("xxxx") and loud.stdout.rstrip().endswith("THE END")
    assert "bytes cut" in loud.stdout
    junit = reporters.render("junit", [result], 1)
    schema.assertValid(etree.fromstring(junit.encode("utf-8")))
    assert len(junit) < 400_000
    tap = reporters.render("tap", [result], 1)
    assert len(tap) < 400_000 and "not ok 1 - loud @ local: prints 10 MB then fails" in tap
    doc = json.loads(reporters.render("json", [result], 1))
    assert doc["plans"][0]["servers"][0]["steps"][0]["stdout_bytes"] == 10_000_009
    assert len(json.dumps(doc)) < 600_000
