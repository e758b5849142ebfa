"""A local HTTP server that answers the part of the GitHub REST API vpsagent uses, for the
real PyGithub client (pointed at it with GITHUB_API_URL), backed by real git repositories.

    api.add_repo("acme/shop", repo_dir)     # a git repository made by the test
    api.deployments                          # [{id, ref, sha, environment, ...}]
    api.statuses(deployment_id)              # [{state, description, environment_url}]
    api.fail_next(502, count=2)              # the next two requests answer 502

Answers: the repository, a commit by ref or sha, a tarball of a ref (a 302 to an archive
made by `git archive`), a file's contents at a ref, deployments and their statuses. Any
token but `.token` gets 401, as GitHub answers a bad token.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.split(" ", 1)[-1] == self.server.api.token

    def _route(self, method: str) -> None:
        api = self.server.api
        parts = urlsplit(self.path)
        with api.lock:
            api.requests.append((method, parts.path))
            failing = api.failures.pop(0) if api.failures else None
        if failing is not None:
            self._send(failing, {"message": f"injected {failing}"})
            return
        if parts.path.startswith("/_archive/"):
            self._archive(parts.path)
            return
        if not self._authorized():
            self._send(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        status, answer, headers = api.answer(method, parts.path, parse_qs(parts.query), body)
        self._send(status, answer, headers)

    def _archive(self, path: str) -> None:
        m = re.fullmatch(r"/_archive/([^/]+/[^/]+)/([0-9a-f]{40})\.tar\.gz", path)
        repo = self.server.api.repos.get(m.group(1)) if m else None
        if m is None or repo is None:
            self._send(404, {"message": "Not Found"})
            return
        name = m.group(1).replace("/", "-")
        data = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar.gz",
                               f"--prefix={name}-{m.group(2)[:7]}/", m.group(2)],
                              capture_output=True, check=True).stdout
        self._send(200, raw=data)

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeGitHubAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer is not the test's business


class FakeGitHubAPI:
    def __init__(self) -> None:
        self.token = "ghp_" + secrets.token_hex(18)
        self.repos: dict[str, Path] = {}
        self.deployments: list[dict[str, Any]] = []
        self._statuses: dict[int, list[dict[str, Any]]] = {}
        self.failures: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-github")
        self._thread.start()

    def add_repo(self, full_name: str, path: Path | str) -> None:
        self.repos[full_name] = Path(path)

    def statuses(self, deployment_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._statuses.get(int(deployment_id), []))

    def fail_next(self, status: int, count: int = 1) -> None:
        with self.lock:
            self.failures += [status] * count

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answers -----------------------------------------------------------------------
    def _repo_json(self, name: str) -> dict[str, Any]:
        owner, short = name.split("/")
        return {"id": abs(hash(name)) % 10**6, "name": short, "full_name": name, "private": True,
                "owner": {"login": owner, "id": 1, "type": "Organization"}, "default_branch": "main",
                "url": f"{self.url}/repos/{name}", "html_url": f"https://github.example/{name}"}

    def _resolve(self, name: str, ref: str) -> str | None:
        p = subprocess.run(["git", "-C", str(self.repos[name]), "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"],
                           capture_output=True, text=True)
        return p.stdout.strip() or None

    def answer(self, method: str, path: str, query: dict[str, list[str]],
               body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        m = re.match(r"^/repos/([^/]+/[^/]+)(/.*)?$", path)
        if m is None or m.group(1) not in self.repos:
            return 404, {"message": "Not Found"}, {}
        name, rest = m.group(1), unquote(m.group(2) or "")
        if method == "GET" and rest == "":
            return 200, self._repo_json(name), {}
        for pattern, handler in self._routes():
            found = re.fullmatch(pattern, f"{method} {rest}")
            if found:
                return handler(name, found, query, body)
        return 404, {"message": "Not Found"}, {}

    def _routes(self) -> list[tuple[str, Any]]:
        return [
            (r"GET /commits/(.+)", self._commit),
            (r"GET /tarball/?(.*)", self._tarball),
            (r"GET /contents/(.+)", self._contents),
            (r"POST /deployments", self._create_deployment),
            (r"GET /deployments/(\d+)", self._get_deployment),
            (r"POST /deployments/(\d+)/statuses", self._create_status),
            (r"GET /deployments/(\d+)/statuses", self._list_statuses),
        ]

    def _commit(self, name: str, m: re.Match[str], q: Any, b: Any) -> tuple[int, Any, dict[str, str]]:
        sha = self._resolve(name, m.group(1))
        if sha is None:
            return 422, {"message": f"No commit found for SHA: {m.group(1)}"}, {}
        return 200, {"sha": sha, "url": f"{self.url}/repos/{name}/commits/{sha}",
                     "commit": {"message": "commit", "author": {"name": "t", "email": "t@t"}}}, {}

    def _tarball(self, name: str, m: re.Match[str], q: Any, b: Any) -> tuple[int, Any, dict[str, str]]:
        sha = self._resolve(name, m.group(1) or "HEAD")
        if sha is None:
            return 404, {"message": "Not Found"}, {}
        return 302, {}, {"Location": f"{self.url}/_archive/{name}/{sha}.tar.gz"}

    def _contents(self, name: str, m: re.Match[str], q: dict[str, list[str]], b: Any) -> tuple[int, Any, dict[str, str]]:
        ref = (q.get("ref") or ["HEAD"])[0]
        p = subprocess.run(["git", "-C", str(self.repos[name]), "show", f"{ref}:{m.group(1)}"], capture_output=True)
        if p.returncode != 0:
            return 404, {"message": "Not Found"}, {}
        return 200, {"type": "file", "encoding": "base64", "size": len(p.stdout), "name": m.group(1).split("/")[-1],
                     "path": m.group(1), "sha": "0" * 40, "content": base64.b64encode(p.stdout).decode(),
                     "url": f"{self.url}/repos/{name}/contents/{m.group(1)}"}, {}

    def _deployment_json(self, name: str, d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "url": f"{self.url}/repos/{name}/deployments/{d['id']}",
                "statuses_url": f"{self.url}/repos/{name}/deployments/{d['id']}/statuses",
                "repository_url": f"{self.url}/repos/{name}"}

    def _create_deployment(self, name: str, m: re.Match[str], q: Any,
                           body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        sha = self._resolve(name, str(body.get("ref", "")))
        if sha is None:
            return 422, {"message": "No ref found"}, {}
        with self.lock:
            d = {"id": len(self.deployments) + 1, "ref": body.get("ref"), "sha": sha,
                 "environment": body.get("environment", "production"), "task": body.get("task", "deploy"),
                 "description": body.get("description"), "payload": body.get("payload") or {}}
            self.deployments.append(d)
            self._statuses[d["id"]] = []
        return 201, self._deployment_json(name, d), {}

    def _get_deployment(self, name: str, m: re.Match[str], q: Any, b: Any) -> tuple[int, Any, dict[str, str]]:
        found = [d for d in self.deployments if d["id"] == int(m.group(1))]
        return (200, self._deployment_json(name, found[0]), {}) if found else (404, {"message": "Not Found"}, {})

    def _create_status(self, name: str, m: re.Match[str], q: Any,
                       body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        dep = int(m.group(1))
        if dep not in self._statuses:
            return 404, {"message": "Not Found"}, {}
        desc = body.get("description")
        if desc is not None and len(desc) > 140:
            return 422, {"message": "description is too long (maximum is 140 characters)"}, {}
        with self.lock:
            s = {"id": len(self._statuses[dep]) + 1, "state": body.get("state"), "description": desc,
                 "environment_url": body.get("environment_url"), "log_url": body.get("log_url")}
            self._statuses[dep].append(s)
        return 201, {**s, "url": f"{self.url}/repos/{name}/deployments/{dep}/statuses/{s['id']}"}, {}

    def _list_statuses(self, name: str, m: re.Match[str], q: Any, b: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, self.statuses(int(m.group(1))), {}


@pytest.fixture
def github_api() -> Iterator[FakeGitHubAPI]:
    api = FakeGitHubAPI()
    yield api
    api.stop()
