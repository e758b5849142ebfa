"""HTTP clients (curl, wget, httpie, xh): GET reads; POST/PUT/PATCH change; DELETE and the
delete endpoints of services destroy; saving the body writes a file."""

from __future__ import annotations

import re

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, Finding
from vpsagent.safety.table import Program, opts, scan

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# service endpoints that delete or wipe even when the method is POST
_DELETE_URL = re.compile(r"/_delete_by_query|/_flush\b|/_shrink|/flushall|/v1/kv/[^ ]*\?recurse|/api/queues/.+/contents"
                         r"|/_snapshot/.+/_restore|/admin/collections\?action=DELETE|/purge\b|/wipe\b", re.I)


def _method_finding(prog: str, method: str, urls: list[str], sends: str | None) -> Finding:
    if method == "DELETE" or any(_DELETE_URL.search(u) for u in urls) and method not in _READ_METHODS:
        return Finding(DES, f"{prog} sends a {method} request that deletes on the server")
    if method not in _READ_METHODS:
        return Finding(CHANGE, f"{prog} sends a {method} request")
    if sends is not None:
        return Finding(CHANGE, f"{prog} {sends} sends data (a POST or an upload)")
    return Finding(RO, f"{prog} only fetches")


def curl(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "odFTXHuAebcKmxwrCEyYzUQDtP", opts(
        "--output", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--data-ascii", "--form",
        "--form-string", "--upload-file", "--request", "--header", "--user", "--user-agent", "--referer", "--cookie",
        "--cookie-jar", "--config", "--max-time", "--proxy", "--write-out", "--range", "--continue-at", "--cert",
        "--json", "--dump-header", "--output-dir", "--url", "--resolve", "--connect-timeout", "--retry", "--key",
        "--cacert", "--trace", "--trace-ascii", "--stderr", "--libcurl", "--etag-save", "--hsts", "--alt-svc",
        "--unix-socket", "--interface", "--aws-sigv4", "--oauth2-bearer", "--netrc-file", "--quote"))
    method = (s.value("-X", "--request").value if s.value("-X", "--request") else "GET").upper()  # type: ignore[union-attr]
    sends = next((f for f in ("-d", "-F", "-T", "--data", "--data-raw", "--data-binary", "--data-urlencode",
                              "--data-ascii", "--form", "--form-string", "--upload-file", "--json") if f in s.flags), None)
    if sends is not None and method == "GET" and not s.has("-G", "--get"):
        method = "PUT" if sends in ("-T", "--upload-file") else "POST"
    urls = [w.value for w in s.operands] + [w.value for w in s.values.get("--url", [])]
    out = _method_finding("curl", method, urls, None)
    if s.value("-K", "--config") is not None:
        out = out.worst(Finding(CHANGE, "curl -K reads options from a file the gate has not seen"))
    if s.value("-Q", "--quote") is not None:
        out = out.worst(Finding(CHANGE, "curl -Q sends FTP commands"))
    return out.worst(_curl_writes(call, s))


def _curl_writes(call: Call, s: object) -> Finding:
    from vpsagent.safety.table import Scan

    assert isinstance(s, Scan)
    out = Finding(RO, "")
    for flag in ("-o", "--output", "-D", "--dump-header", "-c", "--cookie-jar", "--trace", "--trace-ascii",
                 "--stderr", "--libcurl", "--etag-save", "--hsts", "--alt-svc"):
        for w in s.values.get(flag, []):
            if flag in ("-o", "--output") and not w.dynamic:
                call.an.written[call.an.resolve(w.value)] = None
            found = call.write(w, f"curl {flag}")
            out = out.worst(Finding(CHANGE, found.reason) if found.risk is RO and w.value not in ("-", "/dev/null", "/dev/stdout", "/dev/stderr") else found)
    if s.has("-O", "--remote-name", "--remote-name-all", "-J", "--remote-header-name"):
        out = out.worst(Finding(CHANGE, "curl -O saves the download to a file"))
    return out


def wget(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "OoaPtTwQeUBiDIXlAR", opts(
        "--output-document", "--output-file", "--append-output", "--directory-prefix", "--post-data", "--post-file",
        "--method", "--body-data", "--body-file", "--header", "--user", "--password", "--tries", "--timeout",
        "--input-file", "--execute", "--level", "--accept", "--reject", "--user-agent", "--load-cookies",
        "--save-cookies", "--ca-certificate", "--certificate", "--private-key"))
    method = (s.value("--method").value.upper() if s.value("--method") else "GET")  # type: ignore[union-attr]
    sends = next((f for f in ("--post-data", "--post-file", "--body-data", "--body-file") if f in s.flags), None)
    if sends is not None and method == "GET":
        method = "POST"
    out = _method_finding("wget", method, [w.value for w in s.operands], None)
    if s.value("-e", "--execute") is not None:
        out = out.worst(Finding(CHANGE, "wget -e sets options (it may write files)"))
    return out.worst(_wget_writes(call, s))


def _wget_writes(call: Call, s: object) -> Finding:
    from vpsagent.safety.table import Scan

    assert isinstance(s, Scan)
    if s.has("--spider"):
        return Finding(RO, "wget --spider only checks")
    out = Finding(RO, "")
    for flag in ("-o", "--output-file", "-a", "--append-output", "--save-cookies"):
        for w in s.values.get(flag, []):
            out = out.worst(call.write(w, f"wget {flag}", append=flag in ("-a", "--append-output")))
    doc = s.value("-O", "--output-document")
    if doc is None:
        return out.worst(Finding(CHANGE, "wget saves the download to a file"))
    if doc.value in ("-", "/dev/null", "/dev/stdout"):
        return out
    if not doc.dynamic:
        call.an.written[call.an.resolve(doc.value)] = None
    found = call.write(doc, "wget -O")
    return out.worst(found if found.risk > RO else Finding(CHANGE, f"wget -O {doc.value} writes a file"))


def httpie(call: Call, spec: Program) -> Outcome:
    """http/https/xh: `http [METHOD] URL [items]`; a data item (`a=b`, `a:=1`, `@file`) makes it a POST."""
    s, _ = scan(call.args, "ova", opts("--output", "--auth", "--session", "--verify", "--cert", "--cert-key", "--proxy",
                                       "--timeout", "--print", "--pretty", "--style", "--auth-type", "--format-options"))
    words = [w.value for w in s.operands]
    method = "GET"
    if words and re.fullmatch(r"[A-Z]+", words[0]):
        method, words = words[0], words[1:]
    items = words[1:]
    if method == "GET" and any(re.search(r"(?<![:=])(=|:=|=@|:=@|@)", i) and not re.search(r"==", i) and ":" not in i.split("=")[0] for i in items):
        method = "POST"
    out = _method_finding(call.prog, method, words[:1], None)
    target = s.value("-o", "--output")
    if target is not None:
        out = out.worst(call.write(target, f"{call.prog} -o"))
    if s.has("-d", "--download"):
        out = out.worst(Finding(CHANGE, f"{call.prog} --download saves a file"))
    return out
