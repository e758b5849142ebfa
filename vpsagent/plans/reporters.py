"""Reports of a test run: text (people), JSON (documented), JUnit XML (CI), TAP 13.

Every reporter takes the same `list[PlanResult]` and returns a string. Output from
servers is untrusted and can be anything: excerpts are bounded by the runner, and
characters XML 1.0 forbids are removed before they reach the JUnit document.
The JSON layout is a public contract, documented in docs/testplans.md.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime

from vpsagent.jsondata import JSONObject
from vpsagent.plans.runner import PlanResult, ServerResult, StepResult
from vpsagent.redact import inert
from vpsagent.wording import plural

FORMATS = ("text", "json", "junit", "tap")
JSON_FORMAT_VERSION = 1

# XML 1.0 Char production, minus the discouraged-but-legal ranges we keep.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str | None) -> str:
    return _XML_ILLEGAL.sub("", text or "")


def render(fmt: str, results: list[PlanResult], exit_code: int) -> str:
    if fmt == "text":
        return text_report(results, exit_code)
    if fmt == "json":
        return json.dumps(json_report(results, exit_code), indent=2, ensure_ascii=False) + "\n"
    if fmt == "junit":
        return junit_report(results)
    if fmt == "tap":
        return tap_report(results)
    raise ValueError(f"unknown report format {fmt!r} (use {', '.join(FORMATS)})")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def totals(results: list[PlanResult]) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for r in results:
        for s in r.servers:
            for st in s.steps:
                out[st.status] = out.get(st.status, 0) + 1
    out["total"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------
# text

_MARK = {"passed": "ok  ", "failed": "FAIL", "error": "ERR ", "skipped": "skip"}


def text_report(results: list[PlanResult], exit_code: int) -> str:
    """For people, on a terminal or in a file someone `cat`s later: every text that came
    from a server (or the model) is made inert."""
    lines: list[str] = []
    duration = 0.0
    for r in results:
        duration += r.duration_s
        for s in r.servers:
            head = f"{r.plan.name} on {s.server}: {s.status}"
            if s.error:
                head += f" ({s.error})"
            lines.append(inert(head))
            for st in s.steps:
                lines += _text_step(st)
            lines.append("")
    lines.append(f"{summary_text(totals(results))} in {duration:.2f}s")
    return "\n".join(lines) + "\n"


def _text_step(st: StepResult) -> list[str]:
    line = f"  {_MARK.get(st.status, st.status)} {st.seq:>3}. {inert(st.name)}"
    if st.status in ("passed", "failed", "error") and st.attempts:
        line += f"  ({st.duration_s:.2f}s)"
    if st.status == "skipped" and st.message:
        line += f"  ({inert(st.message)})"
    lines = [line]
    if st.status not in ("failed", "error"):
        return lines
    if st.message:
        lines.append(f"         {inert(st.message)}")
    if st.command:
        cmd = st.command if len(st.command) <= 200 else st.command[:197] + "..."
        lines.append(f"         $ {inert(cmd)}")
    for label, text in (("stdout", st.stdout), ("stderr", st.stderr)):
        body = text.strip()
        if body:
            shown = body.splitlines()[-5:]
            lines.append(f"         {label}: " + inert(shown[0][:300]))
            lines += [f"                 {inert(x[:300])}" for x in shown[1:]]
    if st.explanation:
        lines.append("         explanation: " + "\n         ".join(inert(x) for x in st.explanation.strip().splitlines()))
    return lines


def summary_text(t: dict[str, int]) -> str:
    """`4 passed, 1 failed, 1 error, 0 skipped`."""
    return f"{t['passed']} passed, {t['failed']} failed, {plural(t['error'], 'error')}, {t['skipped']} skipped"


# ---------------------------------------------------------------------------
# JSON


def _step_json(st: StepResult) -> JSONObject:
    return {
        "seq": st.seq,
        "name": st.name,
        "kind": st.kind,
        "status": st.status,
        "line": st.line,
        "command": st.command,
        "exit_code": st.exit_code,
        "attempts": st.attempts,
        "duration_s": round(st.duration_s, 4),
        "message": st.message,
        "expected": st.expected,
        "actual": st.actual,
        "stdout": st.stdout,
        "stderr": st.stderr,
        "stdout_bytes": st.stdout_bytes,
        "stderr_bytes": st.stderr_bytes,
        "captured": st.captured,
        "explanation": st.explanation,
    }


def _server_json(s: ServerResult) -> JSONObject:
    return {
        "server": s.server,
        "status": s.status,
        "error": s.error,
        "duration_s": round(s.duration_s, 4),
        "steps": [_step_json(st) for st in s.steps],
    }


def json_report(results: list[PlanResult], exit_code: int) -> JSONObject:
    return {
        "format": "vpsagent-test-report",
        "version": JSON_FORMAT_VERSION,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "summary": totals(results),
        "plans": [
            {
                "name": r.plan.name,
                "path": r.plan.path,
                "run_id": r.run_id,
                "status": r.status,
                "started_at": _iso(r.started_at) if r.started_at else None,
                "duration_s": round(r.duration_s, 4),
                "summary": totals([r]),
                "servers": [_server_json(s) for s in r.servers],
            }
            for r in results
        ],
    }


# ---------------------------------------------------------------------------
# JUnit XML (the Jenkins/JUnit schema: testsuites > testsuite > testcase)


def _failure_text(st: StepResult) -> str:
    parts = [st.message or st.status]
    if st.expected:
        parts.append(f"expected: {st.expected}")
    if st.actual:
        parts.append(f"actual: {st.actual}")
    if st.command:
        parts.append(f"command: {st.command}")
    if st.stdout:
        parts.append("stdout:\n" + st.stdout)
    if st.stderr:
        parts.append("stderr:\n" + st.stderr)
    return "\n".join(parts)


def junit_report(results: list[PlanResult]) -> str:
    import xml.etree.ElementTree as ET

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
        e = ET.SubElement(parent, tag, {k: xml_safe(str(v)) for k, v in attrs.items()})
        if text is not None:
            e.text = xml_safe(text)
        return e

    t = totals(results)
    root = ET.Element("testsuites", {
        "name": "vpsagent",
        "tests": str(t["total"]),
        "failures": str(t["failed"]),
        "errors": str(t["error"]),
        "time": f"{sum(r.duration_s for r in results):.3f}",
    })
    hostname = socket.gethostname()
    suite_id = 0
    for r in results:
        for s in r.servers:
            suite = el(root, "testsuite",
                       name=f"{r.plan.name} @ {s.server}",
                       tests=len(s.steps),
                       failures=s.count("failed"),
                       errors=s.count("error"),
                       skipped=s.count("skipped"),
                       time=f"{s.duration_s:.3f}",
                       timestamp=_iso(r.started_at).rstrip("Z") if r.started_at else "",
                       hostname=hostname,
                       id=suite_id,
                       package=r.plan.name,
                       file=r.plan.path)
            suite_id += 1
            props = el(suite, "properties")
            el(props, "property", name="server", value=s.server)
            el(props, "property", name="plan", value=r.plan.path)
            if r.run_id is not None:
                el(props, "property", name="run_id", value=r.run_id)
            classname = f"{r.plan.name}.{s.server}"
            for st in s.steps:
                case = el(suite, "testcase", name=f"{st.seq:03d} {st.name}",
                          classname=classname, time=f"{st.duration_s:.3f}",
                          file=r.plan.path, line=st.line)
                if st.status == "failed":
                    el(case, "failure", _failure_text(st), message=st.message[:1000],
                       type="failed")
                elif st.status == "error":
                    el(case, "error", _failure_text(st), message=st.message[:1000], type="error")
                elif st.status == "skipped":
                    el(case, "skipped", message=st.message)
                out = st.stdout if st.status == "passed" else ""
                if st.explanation:
                    out = (out + "\n" if out else "") + "AI diagnosis (read-only):\n" \
                        + st.explanation
                if out:
                    el(case, "system-out", out)
                if st.status == "passed" and st.stderr:
                    el(case, "system-err", st.stderr)
            if s.error:
                el(suite, "system-err", s.error)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"


# ---------------------------------------------------------------------------
# TAP 13


def _tap_desc(text: str) -> str:
    # '#' starts a directive in TAP; newlines would end the line
    return " ".join(text.split()).replace("\\", "\\\\").replace("#", "\\#")


def _tap_yaml(diag: JSONObject) -> str:
    """The diagnostic block, with no blank line in it (TAP consumers take one as the block's
    end): multi-line text as a literal block (`|`), or double-quoted with `\n` escapes when
    it has blank lines of its own; never PyYAML's default single-quoted style, which folds
    each newline into a blank line."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = None
        if "\n" in value:
            style = '"' if "\n\n" in value or value.endswith("\n\n") else "|"
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    dumped: str = yaml.dump(diag, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    return dumped


def tap_report(results: list[PlanResult]) -> str:
    steps = [(r, s, st) for r in results for s in r.servers for st in s.steps]
    lines = ["TAP version 13", f"1..{len(steps)}"]
    for n, (r, s, st) in enumerate(steps, 1):
        desc = _tap_desc(f"{r.plan.name} @ {s.server}: {st.name}")
        if st.status == "skipped":
            lines.append(f"ok {n} - {desc} # SKIP {_tap_desc(st.message)}")
            continue
        if st.status == "passed":
            lines.append(f"ok {n} - {desc}")
            continue
        lines.append(f"not ok {n} - {desc}")
        diag: JSONObject = {
            "message": st.message,
            "severity": "fail" if st.status == "failed" else "error",
            "server": s.server,
            "plan": r.plan.path,
            "line": st.line,
        }
        for key in ("expected", "actual", "command"):
            if getattr(st, key):
                diag[key] = getattr(st, key)
        if st.exit_code is not None:
            diag["exit_code"] = st.exit_code
        for key in ("stdout", "stderr", "explanation"):
            value = getattr(st, key)
            if value:
                diag[key] = xml_safe(value)
        block = _tap_yaml(diag)
        lines.append("  ---")
        lines += ["  " + x for x in block.rstrip("\n").splitlines()]
        lines.append("  ...")
    return "\n".join(lines) + "\n"
