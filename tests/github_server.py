"""A small GitHub REST API on 127.0.0.1 for tests: the endpoints mlcicd uses, answered as
GitHub documents them (status codes, JSON shapes, messages, Link pagination headers, rate
limit headers). Served under /api/v3, as GitHub Enterprise Server serves it."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v3"
REPO = "acme/ml-models"
REPO_ID = 1300192
DOCS = "https://docs.github.com/rest"


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class GitHubState:
    token: str
    read_only_tokens: set[str] = field(default_factory=set)
    pulls: dict[int, str] = field(default_factory=dict)  # number -> head sha
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    # Answers given before any normal handling, one per request: (status, headers, body).
    forced: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    next_id: int = 1000

    def comment(self, number: int, body: str, base: str) -> dict[str, Any]:
        self.next_id += 1
        cid = self.next_id
        return {"id": cid, "node_id": f"IC_{cid}", "body": body, "user": {"login": "mlcicd-bot", "id": 1},
                "url": f"{base}/repos/{REPO}/issues/comments/{cid}",
                "html_url": f"https://github.example/{REPO}/pull/{number}#issuecomment-{cid}",
                "issue_url": f"{base}/repos/{REPO}/issues/{number}",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}

    def marked(self, number: int, marker: str) -> list[dict[str, Any]]:
        return [c for c in self.comments.get(number, []) if marker in c["body"]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ratelimit-limit", "5000")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, **extra: Any) -> None:
        self._send(status, {"message": message, "documentation_url": DOCS, **extra})

    def _handle(self, method: str) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._error(400, "Problems parsing JSON")
            return
        auth = self.headers.get("Authorization", "")
        with self.server.lock:
            state.requests.append(Recorded(method, parts.path, auth, body))
            forced = state.forced.pop(0) if state.forced else None
        if forced is not None:
            status, headers, answer = forced
            self._send(status, answer, headers)
            return
        token = auth.removeprefix("Bearer ").removeprefix("token ")
        if not auth or token not in {state.token, *state.read_only_tokens}:
            self._error(401, "Bad credentials")
            return
        if not parts.path.startswith(PREFIX):
            self._error(404, "Not Found")
            return
        path = parts.path[len(PREFIX):]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.server.lock:
            self._route(method, path, query, body, token in state.read_only_tokens)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any, read_only: bool) -> None:
        state = self.server.state
        base = self.server.base
        repo = f"(?:repos/{re.escape(REPO)}|repositories/{REPO_ID})"
        if m := re.fullmatch(rf"/{repo}/pulls/(\d+)", path):
            number = int(m[1])
            if method != "GET" or number not in state.pulls:
                self._error(404, "Not Found")
                return
            self._send(200, {"number": number, "state": "open", "html_url": f"https://github.example/{REPO}/pull/{number}",
                             "head": {"ref": "feature", "sha": state.pulls[number]}, "base": {"ref": "main"}})
        elif m := re.fullmatch(rf"/{repo}/issues/(\d+)/comments", path):
            number = int(m[1])
            if number not in state.pulls:
                self._error(404, "Not Found")
            elif method == "GET":
                self._list(number, query)
            elif method == "POST":
                if read_only:
                    self._error(403, "Resource not accessible by personal access token")
                elif self._valid_body(body):
                    created = state.comment(number, body["body"], base)
                    state.comments.setdefault(number, []).append(created)
                    self._send(201, created, {"Location": created["url"]})
            else:
                self._error(404, "Not Found")
        elif m := re.fullmatch(rf"/{repo}/issues/comments/(\d+)", path):
            found = [c for cs in state.comments.values() for c in cs if c["id"] == int(m[1])]
            if method != "PATCH" or not found:
                self._error(404, "Not Found")
            elif read_only:
                self._error(403, "Resource not accessible by personal access token")
            elif self._valid_body(body):
                found[0]["body"] = body["body"]
                found[0]["updated_at"] = "2026-01-02T00:00:00Z"
                self._send(200, found[0])
        elif (m := re.fullmatch(rf"/{repo}/statuses/([0-9a-f]{{40}})", path)) and method == "POST":
            if read_only:
                self._error(403, "Resource not accessible by personal access token")
                return
            if not isinstance(body, dict) or body.get("state") not in ("error", "failure", "pending", "success"):
                self._error(422, "Validation Failed", errors=[{"resource": "Status", "field": "state",
                                                               "code": "custom"}])
                return
            if len(body.get("description") or "") > 140:
                too_long = "description is too long (maximum is 140 characters)"
                self._error(422, "Validation Failed", errors=[{"resource": "Status", "field": "description",
                                                               "code": "custom", "message": too_long}])
                return
            status = {"id": len(state.statuses) + 1, "sha": m[1], "state": body["state"],
                      "description": body.get("description"), "target_url": body.get("target_url"),
                      "context": body.get("context") or "default", "created_at": "2026-01-01T00:00:00Z"}
            state.statuses.append(status)
            self._send(201, status)
        else:
            self._error(404, "Not Found")

    def _valid_body(self, body: Any) -> bool:
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str):
            self._error(422, "Invalid request.\n\n\"body\" wasn't supplied.")
            return False
        if len(text) > 65536:
            too_long = "body is too long (maximum is 65536 characters)"
            self._error(422, "Validation Failed", errors=[{"resource": "IssueComment", "code": "custom",
                                                           "field": "body", "message": too_long}])
            return False
        return True

    def _list(self, number: int, query: dict[str, str]) -> None:
        items = self.server.state.comments.get(number, [])
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        links = []
        # GitHub's Link URLs name the repository by id.
        url = f"{self.server.base}/repositories/{REPO_ID}/issues/{number}/comments?per_page={per_page}"
        if page < last:
            links += [f'<{url}&page={page + 1}>; rel="next"', f'<{url}&page={last}>; rel="last"']
        if page > 1:
            links += [f'<{url}&page={page - 1}>; rel="prev"', f'<{url}&page=1>; rel="first"']
        headers = {"Link": ", ".join(links)} if links else {}
        self._send(200, items[(page - 1) * per_page: page * per_page], headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: GitHubState
    base: str
    lock: threading.Lock


class GitHubServer:
    def __init__(self, state: GitHubState) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.state = state
        self._httpd.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{PREFIX}"
        self._httpd.base = self.url
        self.state = state
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
