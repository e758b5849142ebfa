"""Step kinds: the shell command each one runs on the server, and how its output is judged.

Nothing is installed on the server. Every check is one POSIX `sh` command that picks
whatever tool the server has (systemd or init scripts, dpkg/rpm/apk, curl/wget/python3,
ss/netstat//proc) and prints a small, line-based answer that `judge` reads. Every value
from the plan is passed through `shlex.quote`, so a plan cannot inject shell by accident.

`build(step, spec, expect)` takes the step after its `{{ vars }}` were rendered and
returns a `Check`: either `command` (run on the host by the runner) or `local` (run
here, e.g. `http from: local`), plus `judge(result) -> Outcome`.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, TypeAlias

from vpsagent.jsondata import JSON, JSONList, JSONObject
from vpsagent.plans.schema import Step, parse_version_spec
from vpsagent.remote.base import DEFAULT_CAPTURE, CommandResult

if TYPE_CHECKING:
    from http.client import HTTPMessage
    from urllib.request import Request


class CheckError(ValueError):
    """A rendered value is unusable (e.g. a port variable that is not a number)."""


@dataclass
class Outcome:
    passed: bool
    failures: list[str] = field(default_factory=list)  # "expected X, got Y" lines
    captured: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return "; ".join(self.failures)


@dataclass
class Check:
    description: str  # what is checked, for reports ("GET http://x/ → 200")
    judge: Callable[[CommandResult], Outcome]
    command: str | None = None  # shell command for the server
    local: Callable[[float], CommandResult] | None = None  # runs here instead


# How a step kind becomes a Check: the step, its rendered spec (run: the command string,
# other kinds: their mapping), run's rendered expect and capture.
Builder: TypeAlias = Callable[[Step, JSON, JSONObject, dict[str, str]], Check]


def build(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    builder = _BUILDERS[step.kind]
    return builder(step, spec, expect, capture)


# ---------------------------------------------------------------------------
# helpers


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _as_int(value: object, label: str) -> int:
    if isinstance(value, bool):
        raise CheckError(f"{label}: expected a whole number, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise CheckError(f"{label}: expected a whole number, got {value!r}") from None


def _as_list(value: JSON) -> JSONList:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _as_bool(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise CheckError(f"expected true or false, got {value!r}")


def _short(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unfinished(result: CommandResult) -> Outcome | None:
    """A command that did not finish (timeout, lost connection) fails the step."""
    if result.exit_code is None:
        return Outcome(False, [result.error or f"command did not finish ({result.status})"])
    return None


def _lines(result: CommandResult) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in result.stdout_text().splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, value.strip())
    return out


# ---------------------------------------------------------------------------
# matchers (expect on run)


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def match(label: str, text: str, matcher: JSONObject) -> list[str]:
    """Failures of one stream against a matcher map (empty list when it matches)."""
    fails: list[str] = []
    shown = repr(_short(text, 120))
    for want in _as_list(matcher.get("contains")):
        if str(want) not in text:
            fails.append(f"expected {label} to contain {str(want)!r}, got {shown}")
    for bad in _as_list(matcher.get("not_contains")):
        if str(bad) in text:
            fails.append(f"expected {label} not to contain {str(bad)!r}, got {shown}")
    if "equals" in matcher and text.strip() != str(matcher["equals"]).strip():
        fails.append(f"expected {label} to equal {str(matcher['equals'])!r}, got {shown}")
    if "matches" in matcher:
        try:
            if not re.search(str(matcher["matches"]), text, re.MULTILINE):
                fails.append(f"expected {label} to match /{matcher['matches']}/, got {shown}")
        except re.error as e:
            fails.append(f"bad regex {matcher['matches']!r}: {e}")
    ops = {"lt": ("<", float.__lt__), "le": ("<=", float.__le__),
           "gt": (">", float.__gt__), "ge": (">=", float.__ge__)}
    for key, (sym, fn) in ops.items():
        if key not in matcher:
            continue
        bound = _number(str(matcher[key]))
        if bound is None:
            fails.append(f"{label}.{key}: {matcher[key]!r} is not a number")
            continue
        value = _number(text)
        if value is None:
            fails.append(f"expected {label} {sym} {matcher[key]}, got {shown} (not a number)")
        elif not fn(value, bound):
            fails.append(f"expected {label} {sym} {matcher[key]}, got {text.strip()}")
    return fails


def _build_run(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    command = str(spec)
    exits = [_as_int(e, "expect.exit") for e in _as_list(expect.get("exit", 0))]

    def judge(result: CommandResult) -> Outcome:
        unfinished = _unfinished(result)
        if unfinished:
            return unfinished
        fails = []
        if result.exit_code not in exits:
            want = exits[0] if len(exits) == 1 else f"one of {exits}"
            fails.append(f"expected exit {want}, got exit {result.exit_code}")
        out = result.stdout_text()
        if "stdout" in expect:
            fails += match("stdout", out, expect["stdout"])
        if "stderr" in expect:
            fails += match("stderr", result.stderr_text(), expect["stderr"])
        captured = {}
        for var, rx in capture.items():
            try:
                m = re.search(rx, out, re.MULTILINE)
            except re.error as e:
                fails.append(f"capture {var}: bad regex: {e}")
                continue
            if not m:
                fails.append(f"capture {var}: /{rx}/ found nothing in stdout")
            else:
                captured[var] = m.group(1) if m.re.groups else m.group(0)
        return Outcome(not fails, fails, captured)

    return Check(description=command, judge=judge, command=command)


# ---------------------------------------------------------------------------
# http

_PY_HTTP = r"""
import sys,ssl,urllib.request as u
class N(u.HTTPRedirectHandler):
    def redirect_request(self,*a,**k): return None
m,url,t,ins,body=sys.argv[1],sys.argv[2],float(sys.argv[3]),sys.argv[4]=='1',sys.argv[5]
h=dict((x.split(':',1)[0],x.split(':',1)[1].strip()) for x in sys.argv[6:])
ctx=ssl._create_unverified_context() if ins else None
o=u.build_opener(N,u.HTTPSHandler(context=ctx))
r=u.Request(url,data=body.encode() if body else None,method=m,headers=h)
try: resp=o.open(r,timeout=t)
except u.HTTPError as e: resp=e
except Exception as e:
    sys.stderr.write('%s\n'%(getattr(e,'reason',None) or e)); sys.exit(1)
w=sys.stdout.buffer
w.write(('HTTP/1.1 %d %s\r\n'%(resp.code,resp.reason)).encode())
for k,v in resp.headers.items(): w.write(('%s: %s\r\n'%(k,v)).encode())
w.write(b'\r\n'); w.write(resp.read())
""".strip()

HTTP_TOOLS = ("curl", "wget", "python3")


def http_command(spec: JSONObject, timeout: float, tool: str | None = None) -> str:
    """The server-side request; `tool` forces one branch (the tests try each)."""
    method = str(spec.get("method") or "GET").upper()
    url = str(spec["url"])
    insecure = _as_bool(spec.get("insecure"), False)
    headers = [f"{k}: {v}" for k, v in (spec.get("headers") or {}).items()]
    body = str(spec.get("body") or "")
    t = f"{timeout:g}"
    curl = ["curl", "-sS", "-i", "--max-time", t, "-X", method]
    wget = ["wget", "-q", "-S", "-O", "-", "--max-redirect=0", "--content-on-error",
            f"--timeout={t}", "--tries=1", f"--method={method}"]
    if insecure:
        curl.append("-k")
        wget.append("--no-check-certificate")
    for h in headers:
        curl += ["-H", h]
        wget.append(f"--header={h}")
    if body:
        curl += ["--data-binary", body]
        wget.append(f"--body-data={body}")
    curl += ["--", url]
    wget.append(url)
    py = ["python3", "-c", _PY_HTTP, method, url, t, "1" if insecure else "0", body, *headers]
    branches = {
        "curl": "echo '#tool curl'; " + " ".join(_q(a) for a in curl),
        "wget": "echo '#tool wget'; " + " ".join(_q(a) for a in wget),
        "python3": "echo '#tool python3'; " + " ".join(_q(a) for a in py),
    }
    if tool:
        return branches[tool]
    script = ""
    for i, name in enumerate(HTTP_TOOLS):
        script += f"{'if' if i == 0 else 'elif'} command -v {name} >/dev/null 2>&1; then {branches[name]}; "
    return script + "else echo 'no curl, wget or python3 on the server' >&2; exit 127; fi"


@dataclass
class HttpResponse:
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str = ""


def parse_http(result: CommandResult) -> HttpResponse:
    data = result.stdout
    tool = "curl"
    if data.startswith(b"#tool "):
        first, _, data = data.partition(b"\n")
        tool = first.split()[1].decode()
    if tool == "wget":
        # wget -S prints the response head to stderr, indented, the body to stdout
        blocks: list[list[str]] = []
        for line in result.stderr_text().splitlines():
            if line.startswith("  HTTP/"):
                blocks.append([line.strip()])
            elif line.startswith("  ") and blocks:
                blocks[-1].append(line.strip())
        if not blocks:
            return HttpResponse(None, {}, b"", _short(result.stderr_text()) or "no response")
        return _head(blocks[-1], data)
    # curl -i and our python3 script: one or more heads (1xx), blank line, body
    while True:
        sep = data.find(b"\r\n\r\n")
        if not data.startswith(b"HTTP/") or sep < 0:
            err = _short(result.stderr_text()) or f"no HTTP response (exit {result.exit_code})"
            return HttpResponse(None, {}, b"", err)
        head, data = data[:sep].decode("latin-1").split("\r\n"), data[sep + 4:]
        resp = _head(head, data)
        if resp.status is None or not 100 <= resp.status < 200:
            return resp


def _head(lines: list[str], body: bytes) -> HttpResponse:
    parts = lines[0].split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            headers[k.strip().lower()] = v.strip()
    return HttpResponse(status, headers, body)


def http_local(spec: JSONObject, timeout: float) -> CommandResult:
    """`from: local`: the request from this machine, shaped like the server-side output."""
    import ssl
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Request, fp: IO[bytes], code: int, msg: str,
                             headers: HTTPMessage, newurl: str) -> None:
            return None

    method = str(spec.get("method") or "GET").upper()
    url = str(spec["url"])
    ctx = ssl._create_unverified_context() if _as_bool(spec.get("insecure"), False) else None
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=ctx))
    body = spec.get("body")
    req = urllib.request.Request(
        url, data=str(body).encode() if body else None, method=method,
        headers={k: str(v) for k, v in (spec.get("headers") or {}).items()},
    )
    started = time.monotonic()
    command = f"{method} {url} (from local)"
    try:
        try:
            resp = opener.open(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            resp = e
        payload = resp.read(DEFAULT_CAPTURE)
        head = f"HTTP/1.1 {resp.code} {resp.reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in resp.headers.items()
        )
        out = head.encode("latin-1", "replace") + b"\r\n" + payload
        return CommandResult(host="local", command=command, exit_code=0, stdout=out,
                             stdout_bytes=len(out), duration_s=time.monotonic() - started)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        err = str(reason).encode()
        status = "timeout" if "timed out" in str(reason) else "ok"
        return CommandResult(host="local", command=command, exit_code=1, stderr=err,
                             stderr_bytes=len(err), status=status,
                             duration_s=time.monotonic() - started)


def _build_http(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    statuses = [_as_int(s, "http.status") for s in _as_list(spec.get("status", 200))]
    wants = [str(w) for w in _as_list(spec.get("body_contains"))]
    want_headers = {str(k).lower(): str(v) for k, v in (spec.get("response_headers") or {}).items()}
    method = str(spec.get("method") or "GET").upper()
    where = spec.get("from") or "server"

    def judge(result: CommandResult) -> Outcome:
        resp = parse_http(result)
        if resp.status is None:
            return Outcome(False, [f"request failed: {resp.error}"])
        fails = []
        if resp.status not in statuses:
            want = statuses[0] if len(statuses) == 1 else f"one of {statuses}"
            fails.append(f"expected status {want}, got {resp.status}")
        text = resp.body.decode("utf-8", "replace")
        for w in wants:
            if w not in text:
                fails.append(f"expected body to contain {w!r}, got {_short(text, 120)!r}")
        for k, v in want_headers.items():
            got = resp.headers.get(k)
            if got is None:
                fails.append(f"expected header {k}, got none")
            elif v not in got:
                fails.append(f"expected header {k} to contain {v!r}, got {got!r}")
        return Outcome(not fails, fails)

    desc = f"{method} {spec['url']} from {where} → {statuses[0] if len(statuses) == 1 else statuses}"
    if where == "local":
        return Check(description=desc, judge=judge, local=lambda t: http_local(spec, t))
    return Check(description=desc, judge=judge, command=http_command(spec, step.timeout))


# ---------------------------------------------------------------------------
# file

_FILE_TYPES = {"regular file": "file", "regular empty file": "file", "directory": "directory",
               "symbolic link": "symlink"}


def file_command(path: str, patterns: list[str]) -> str:
    """Prints `exists 0|1`, `stat TYPE|MODE|OWNER|GROUP` and `has<i> 0|1` per pattern."""
    p = _q(path)
    parts = [
        f"if [ -e {p} ] || [ -L {p} ]; then echo 'exists 1'; "
        f"echo \"stat $(stat -c '%F|%a|%U|%G' -- {p})\"; "
    ]
    # grep -F per pattern: the file is never copied back, however big it is
    for i, text in enumerate(patterns):
        parts.append(f"if grep -qF -e {_q(text)} -- {p} 2>/dev/null; then echo 'has{i} 1'; "
                     f"else echo 'has{i} 0'; fi; ")
    parts.append("else echo 'exists 0'; fi")
    return "".join(parts)


def _file_attribute_failures(spec: JSONObject, stat_line: str) -> list[str]:
    """type, mode, owner and group as the plan wants them, against `stat`'s answer."""
    fails = []
    ftype, mode, owner, group = (stat_line.split("|") + ["", "", "", ""])[:4]
    ftype = _FILE_TYPES.get(ftype, ftype)
    if spec.get("type") and spec["type"] != ftype:
        fails.append(f"expected type {spec['type']}, got {ftype}")
    if spec.get("mode") is not None:
        want = str(spec["mode"])
        try:
            if int(want, 8) != int(mode or "x", 8):
                fails.append(f"expected mode {want.zfill(4)}, got {mode.zfill(4)}")
        except ValueError:
            fails.append(f"expected mode {want}, got {mode!r}")
    if spec.get("owner") is not None and str(spec["owner"]) != owner:
        fails.append(f"expected owner {spec['owner']}, got {owner}")
    if spec.get("group") is not None and str(spec["group"]) != group:
        fails.append(f"expected group {spec['group']}, got {group}")
    return fails


def _build_file(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    path = str(spec["path"])
    exists = _as_bool(spec.get("exists"), True)
    contains = [str(c) for c in _as_list(spec.get("contains"))]
    not_contains = [str(c) for c in _as_list(spec.get("not_contains"))]
    command = file_command(path, contains + not_contains)

    def judge(result: CommandResult) -> Outcome:
        unfinished = _unfinished(result)
        if unfinished:
            return unfinished
        got = _lines(result)
        if "exists" not in got:
            return Outcome(False, [f"could not inspect {path}: {_short(result.stderr_text())}"])
        present = got["exists"] == "1"
        if present != exists:
            return Outcome(False, [f"expected {path} to {'exist' if exists else 'be absent'}, "
                                   f"it {'exists' if present else 'does not exist'}"])
        if not present:
            return Outcome(True)
        fails = _file_attribute_failures(spec, got.get("stat", ""))
        for i, text in enumerate(contains):
            if got.get(f"has{i}") != "1":
                fails.append(f"expected {path} to contain {text!r}")
        for j, text in enumerate(not_contains):
            if got.get(f"has{len(contains) + j}") == "1":
                fails.append(f"expected {path} not to contain {text!r}")
        return Outcome(not fails, fails)

    return Check(description=f"file {path}", judge=judge, command=command)


# ---------------------------------------------------------------------------
# port


def port_command(proto: str, tool: str | None = None) -> str:
    flag = "t" if proto == "tcp" else "u"
    branches = {
        "ss": f"echo '#tool ss'; ss -Hln{flag}",
        "netstat": f"echo '#tool netstat'; netstat -ln{flag}",
        "proc": f"echo '#tool proc'; cat /proc/net/{proto} /proc/net/{proto}6 2>/dev/null",
    }
    if tool:
        return branches[tool]
    return (f"if command -v ss >/dev/null 2>&1; then {branches['ss']}; "
            f"elif command -v netstat >/dev/null 2>&1; then {branches['netstat']}; "
            f"else {branches['proc']}; fi")


def listening_ports(output: str, proto: str) -> set[int]:
    lines = output.splitlines()
    tool = "ss"
    if lines and lines[0].startswith("#tool "):
        tool = lines[0].split()[1]
        lines = lines[1:]
    ports: set[int] = set()
    for line in lines:
        cols = line.split()
        if tool == "proc":
            # sl local_address rem_address st ...; st 0A = LISTEN (tcp), 07 = unconnected (udp)
            if len(cols) < 4 or ":" not in cols[1] or cols[0] == "sl":
                continue
            if proto == "tcp" and cols[3] != "0A":
                continue
            try:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
            except ValueError:
                continue
            continue
        idx = 3
        if tool == "netstat" and not (cols and cols[0].startswith(proto)):
            continue
        if len(cols) <= idx:
            continue
        local = cols[idx]
        try:
            ports.add(int(local.rsplit(":", 1)[1]))
        except (IndexError, ValueError):
            continue
    return ports


def _build_port(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    port = _as_int(spec["port"], "port.port")
    proto = str(spec.get("protocol") or "tcp")
    listening = _as_bool(spec.get("listening"), True)

    def judge(result: CommandResult) -> Outcome:
        unfinished = _unfinished(result)
        if unfinished:
            return unfinished
        ports = listening_ports(result.stdout_text(), proto)
        if not ports and result.exit_code != 0:
            return Outcome(False, [f"could not list ports: {_short(result.stderr_text())}"])
        got = port in ports
        if got != listening:
            return Outcome(False, [f"expected {proto} port {port} "
                                   f"{'listening' if listening else 'not listening'}, "
                                   f"it is {'listening' if got else 'not listening'}"])
        return Outcome(True)

    return Check(description=f"{proto} port {port}", judge=judge, command=port_command(proto))


# ---------------------------------------------------------------------------
# service

_ENABLED_STATES = {"enabled", "enabled-runtime", "static", "indirect", "generated", "alias"}


def service_command(name: str, manager: str | None = None) -> str:
    n = _q(name)
    branches = {
        "systemd": (
            "echo 'manager systemd'; "
            f"echo \"active $(systemctl is-active -- {n} 2>/dev/null)\"; "
            f"echo \"enabled $(systemctl is-enabled -- {n} 2>/dev/null)\""
        ),
        "openrc": (
            "echo 'manager openrc'; "
            f"if rc-service {n} status >/dev/null 2>&1; then echo 'active active'; "
            "else echo 'active inactive'; fi; "
            f"if rc-update show 2>/dev/null | grep -qw -- {n}; then echo 'enabled enabled'; "
            "else echo 'enabled disabled'; fi"
        ),
        "sysv": (
            "echo 'manager sysv'; "
            f"if command -v service >/dev/null 2>&1; then service {n} status >/dev/null 2>&1; "
            f"else /etc/init.d/{n} status >/dev/null 2>&1; fi; "
            "if [ $? -eq 0 ]; then echo 'active active'; else echo 'active inactive'; fi; "
            f"if ls /etc/rc[2345].d/S*{n} >/dev/null 2>&1 || "
            f"chkconfig --list {n} 2>/dev/null | grep -q ':on'; then echo 'enabled enabled'; "
            "else echo 'enabled disabled'; fi"
        ),
    }
    if manager:
        return branches[manager]
    # systemctl exists in many containers without systemd running: ask for the runtime dir
    return (f"if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then "
            f"{branches['systemd']}; elif command -v rc-service >/dev/null 2>&1; then "
            f"{branches['openrc']}; else {branches['sysv']}; fi")


def _build_service(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    name = str(spec["name"])
    want_active = _as_bool(spec.get("active"), True)
    want_enabled = None if spec.get("enabled") is None else _as_bool(spec["enabled"], True)

    def judge(result: CommandResult) -> Outcome:
        unfinished = _unfinished(result)
        if unfinished:
            return unfinished
        got = _lines(result)
        if "active" not in got:
            return Outcome(False, [f"could not query service {name}: "
                                   f"{_short(result.stderr_text())}"])
        fails = []
        active = got["active"] == "active"
        if active != want_active:
            fails.append(f"expected {name} {'active' if want_active else 'inactive'}, "
                         f"got {got['active'] or 'unknown'} ({got.get('manager', '?')})")
        if want_enabled is not None:
            enabled = got.get("enabled", "") in _ENABLED_STATES
            if enabled != want_enabled:
                fails.append(f"expected {name} {'enabled' if want_enabled else 'disabled'}, "
                             f"got {got.get('enabled') or 'unknown'} ({got.get('manager', '?')})")
        return Outcome(not fails, fails)

    return Check(description=f"service {name}", judge=judge, command=service_command(name))


# ---------------------------------------------------------------------------
# package


def package_command(name: str, manager: str | None = None) -> str:
    n = _q(name)
    branches = {
        "dpkg": ("echo 'manager dpkg'; "
                 f"dpkg-query -W -f='pkg ${{Status}}|${{Version}}\\n' -- {n} 2>/dev/null; true"),
        "rpm": ("echo 'manager rpm'; "
                f"rpm -q --qf 'pkg install ok installed|%{{VERSION}}-%{{RELEASE}}\\n' -- {n} "
                "2>/dev/null | grep '^pkg '; true"),
        "apk": ("echo 'manager apk'; "
                f"apk list -I -- {n} 2>/dev/null | sed -n 's/^'{n}'-\\([^ ]*\\) .*/pkg install ok "
                "installed|\\1/p'; true"),
    }
    if manager:
        return branches[manager]
    return (f"if command -v dpkg-query >/dev/null 2>&1; then {branches['dpkg']}; "
            f"elif command -v rpm >/dev/null 2>&1; then {branches['rpm']}; "
            f"elif command -v apk >/dev/null 2>&1; then {branches['apk']}; "
            "else echo 'no dpkg, rpm or apk on the server' >&2; exit 127; fi")


def _build_package(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    name = str(spec["name"])
    want_installed = _as_bool(spec.get("installed"), True)
    constraint = parse_version_spec(str(spec["version"])) if spec.get("version") else None

    def judge(result: CommandResult) -> Outcome:
        unfinished = _unfinished(result)
        if unfinished:
            return unfinished
        text = result.stdout_text()
        if "manager " not in text:
            return Outcome(False, [f"could not query package {name}: "
                                   f"{_short(result.stderr_text())}"])
        version = None
        for line in text.splitlines():
            if line.startswith("pkg "):
                status, _, ver = line[4:].partition("|")
                if status.split()[-1:] == ["installed"]:
                    version = ver.strip()
                    break
        installed = version is not None
        if installed != want_installed:
            return Outcome(False, [f"expected {name} {'installed' if want_installed else 'absent'}"
                                   f", it is {'installed (' + str(version) + ')' if installed else 'not installed'}"])
        if installed and constraint and not version_satisfies(version or "", *constraint):
            return Outcome(False, [f"expected {name} {constraint[0]} {constraint[1]}, "
                                   f"got {version}"])
        return Outcome(True)

    return Check(description=f"package {name}", judge=judge, command=package_command(name))


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


_NON_DIGITS = re.compile(r"[^0-9]*")
_DIGITS = re.compile(r"[0-9]*")


def _run_of(rx: re.Pattern[str], text: str) -> str:
    """The run of `rx` at the start of `text` (both patterns above also match nothing)."""
    m = rx.match(text)
    return m.group(0) if m else ""


def _cmp_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternating non-digit and digit runs."""
    while a or b:
        na = _run_of(_NON_DIGITS, a)
        nb = _run_of(_NON_DIGITS, b)
        for i in range(max(len(na), len(nb))):
            ca = _order(na[i]) if i < len(na) else 0
            cb = _order(nb[i]) if i < len(nb) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(na):], b[len(nb):]
        da = _run_of(_DIGITS, a)
        db = _run_of(_DIGITS, b)
        ia, ib = int(da or 0), int(db or 0)
        if ia != ib:
            return -1 if ia < ib else 1
        a, b = a[len(da):], b[len(db):]
    return 0


def compare_versions(a: str, b: str) -> int:
    """Debian version ordering (epoch:upstream-revision); good enough for rpm and apk."""
    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, rev = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0) if epoch.isdigit() else 0, upstream, rev

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)


def version_satisfies(installed: str, op: str, wanted: str) -> bool:
    # Compare like with like: "1.18" against "1:1.18.0-6" looks at 1.18.0 only.
    if ":" not in wanted and ":" in installed:
        installed = installed.split(":", 1)[1]
    if "-" not in wanted and "-" in installed:
        installed = installed.rsplit("-", 1)[0]
    c = compare_versions(installed, wanted)
    return {"==": c == 0, "=": c == 0, "!=": c != 0, ">=": c >= 0, "<=": c <= 0,
            ">": c > 0, "<": c < 0}[op]


# ---------------------------------------------------------------------------
# process


def process_command(name: str, tool: str | None = None) -> str:
    n = _q(name[:15])  # the kernel's comm is 15 characters; pgrep -x matches that
    branches = {
        "pgrep": f"echo '#tool pgrep'; echo \"count $(pgrep -x -- {n} | wc -l)\"",
        "ps": f"echo '#tool ps'; echo \"count $(ps -e -o comm= | grep -cxF -- {n})\"",
    }
    if tool:
        return branches[tool]
    return (f"if command -v pgrep >/dev/null 2>&1; then {branches['pgrep']}; "
            f"else {branches['ps']}; fi")


def _build_process(step: Step, spec: JSON, expect: JSONObject, capture: dict[str, str]) -> Check:
    name = str(spec["name"])
    want = _as_bool(spec.get("running"), True)

    def judge(result: CommandResult) -> Outcome:
        unfinished = _unfinished(result)
        if unfinished:
            return unfinished
        got = _lines(result)
        try:
            count = int(got.get("count", "").strip())
        except ValueError:
            return Outcome(False, [f"could not list processes: {_short(result.stderr_text())}"])
        if (count > 0) != want:
            return Outcome(False, [f"expected {name} {'running' if want else 'not running'}, "
                                   f"{count} running"])
        return Outcome(True)

    return Check(description=f"process {name}", judge=judge, command=process_command(name))


_BUILDERS: dict[str, Builder] = {
    "run": _build_run,
    "http": _build_http,
    "file": _build_file,
    "port": _build_port,
    "service": _build_service,
    "package": _build_package,
    "process": _build_process,
}
