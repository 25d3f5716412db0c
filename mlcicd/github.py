"""GitHub's REST API, the few endpoints mlcicd uses: read a pull request, find, create and
update an issue comment, set a commit status.

Plain urllib (no HTTP dependency). The base URL comes from GITHUB_API_URL (GitHub Enterprise:
https://HOST/api/v3), as GitHub's own tooling reads it. The token is sent only to that base:
redirects are not followed and pagination links elsewhere are refused. Rate limiting is waited
out when GitHub says how long and that is short (retry-after, x-ratelimit-reset), 5xx answers
are retried a bounded number of times, and every other failure is its own error.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from mlcicd import __version__
from mlcicd.errors import MlcicdError

DEFAULT_API_URL = "https://api.github.com"
COMMENT_LIMIT = 65536  # characters GitHub accepts in an issue comment body
DESCRIPTION_LIMIT = 140  # characters of a commit status description
_TIMEOUT = 30
_MAX_WAIT = 60.0  # the longest rate-limit wait sat through; past it, a clear error instead
_RATE_RETRIES = 2
_SERVER_BACKOFF = (1.0, 3.0)  # waits before retrying a 5xx answer
_PER_PAGE = 100
_MAX_PAGES = 100  # 10,000 comments: a server repeating its "next" link cannot loop us forever
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_PERMISSIONS = ("a fine-grained token needs 'Pull requests: read and write' (or 'Issues') and 'Commit statuses: "
                "read and write' on the repository; a classic token needs the repo scope")


class GitHubError(MlcicdError):
    """A GitHub API call failed."""


class GitHubTokenMissing(GitHubError):
    def __init__(self) -> None:
        super().__init__("no GitHub token: GITHUB_TOKEN and GITHUB_TOKEN_SECRET_ARN are both unset",
                         hint="set GITHUB_TOKEN, or GITHUB_TOKEN_SECRET_ARN to a Secrets Manager secret holding it")


class GitHubUnauthorized(GitHubError):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"GitHub rejected the token when trying {what} (401: {message})",
                         hint="the token is expired, revoked or mistyped; give a valid one")


class GitHubForbidden(GitHubError):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"the token is not allowed {what} (403: {message})", hint=_PERMISSIONS)


class GitHubNotFound(GitHubError):
    def __init__(self, what: str, missing: str) -> None:
        super().__init__(f"{missing} (404 when trying {what})",
                         hint="check repository.name in mlcicd.yaml and the number; GitHub also answers 404 "
                              "when the token cannot see a private repository")


class GitHubRateLimited(GitHubError):
    def __init__(self, what: str, wait: float, until: float | None) -> None:
        self.wait = wait
        when = (f" until {datetime.fromtimestamp(until, UTC):%H:%M:%S} UTC" if until
                else f" for {wait:.0f} s")
        super().__init__(f"GitHub is rate limiting this token (when trying {what}): it asks to wait{when}",
                         hint=f"that is longer than the {_MAX_WAIT:.0f} s mlcicd waits; run the review again later")


class GitHubServerError(GitHubError):
    def __init__(self, what: str, status: int, attempts: int) -> None:
        super().__init__(f"GitHub answered {status} when trying {what} ({attempts} attempt(s))",
                         hint="GitHub is having trouble (https://www.githubstatus.com); run the review again later")


class GitHubUnreachable(GitHubError):
    def __init__(self, base: str, detail: str) -> None:
        super().__init__(f"cannot reach the GitHub API at {base}: {detail}",
                         hint="check the network and GITHUB_API_URL")


class GitHubRejected(GitHubError):
    """Any other refusal (422 validation, a redirect, ...): GitHub's message, as given."""

    def __init__(self, what: str, status: int, message: str) -> None:
        super().__init__(f"GitHub refused {what} ({status}: {message})")


def api_url(configured: str) -> str:
    """The REST API base: GITHUB_API_URL as given, else github.com's."""
    url = (configured or DEFAULT_API_URL).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise GitHubRejected("the API base URL", 0, f"GITHUB_API_URL={url!r} is not an http(s) URL")
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would resend the Authorization header to wherever a redirect points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """Calls to one GitHub API base with one token."""

    def __init__(self, base: str, token: str, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, max_wait: float = _MAX_WAIT,
                 backoff: tuple[float, ...] = _SERVER_BACKOFF) -> None:
        self.base = base.rstrip("/")
        self._token = token
        self._sleep, self._clock, self._max_wait, self._backoff = sleep, clock, max_wait, backoff
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"Client({self.base!r})"

    def call(self, method: str, path: str, body: Any = None, *, what: str, missing: str = "",
             retry_server: bool = True) -> tuple[Any, Mapping[str, str]]:
        """(JSON answer, headers). `what` reads after "while"/"to" in messages ("to list the
        comments of pull request #7"); `missing` is the message for a 404."""
        url = path if path.startswith(self.base + "/") else self.base + path
        waited, limited, failed = 0.0, 0, 0
        while True:
            status, headers, data = self._send(method, url, body)
            if status < 300:
                return data, headers
            message = str(data.get("message", "")) if isinstance(data, Mapping) else ""
            if status in (403, 429):
                wait, until = _rate_limit_wait(status, headers, message, self._clock())
                if wait is not None:
                    if limited < _RATE_RETRIES and waited + wait <= self._max_wait:
                        self._sleep(wait)
                        waited, limited = waited + wait, limited + 1
                        continue
                    raise GitHubRateLimited(what, wait, until)
            if status >= 500 and retry_server and failed < len(self._backoff):
                self._sleep(self._backoff[failed])
                failed += 1
                continue
            raise _error(status, what, missing, message, data, failed + 1)

    def pages(self, path: str, *, what: str, missing: str = "") -> Iterator[Any]:
        """Every item of a paginated list, following the Link header's rel="next" (for at most
        _MAX_PAGES pages)."""
        url: str | None = f"{self.base}{path}{'&' if '?' in path else '?'}per_page={_PER_PAGE}"
        for _ in range(_MAX_PAGES):
            if not url:
                return
            data, headers = self.call("GET", url, what=what, missing=missing)
            yield from data or ()
            found = _NEXT.search(headers.get("Link", "") or "")
            url = found[1] if found else None
            if url and not url.startswith(self.base + "/"):
                raise GitHubRejected(what, 0, f"a pagination link points outside {self.base}; not followed")

    def _send(self, method: str, url: str, body: Any) -> tuple[int, Mapping[str, str], Any]:
        headers = {"Accept": "application/vnd.github+json", "Authorization": f"Bearer {self._token}",
                   "X-GitHub-Api-Version": "2022-11-28", "User-Agent": f"mlcicd/{__version__}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=_TIMEOUT) as response:
                return response.status, response.headers, _json(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, _json(exc.read())
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise GitHubUnreachable(self.base, str(getattr(exc, "reason", exc))) from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _rate_limit_wait(status: int, headers: Mapping[str, str], message: str,
                     now: float) -> tuple[float | None, float | None]:
    """How long GitHub asks to wait, as its REST docs say to read it; (None, None) when the
    answer is not rate limiting (a 403 for a missing permission)."""
    retry_after = headers.get("retry-after")
    if retry_after and retry_after.strip().isdigit():
        return float(retry_after), None
    reset = headers.get("x-ratelimit-reset")
    if headers.get("x-ratelimit-remaining") == "0" and reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now) + 1.0, float(reset)
    if status == 429 or "rate limit" in message.lower():
        return 60.0, None  # a secondary limit without headers: the docs say wait at least a minute
    return None, None


def _error(status: int, what: str, missing: str, message: str, data: Any, attempts: int) -> GitHubError:
    if status == 401:
        return GitHubUnauthorized(what, message or "Bad credentials")
    if status == 403:
        return GitHubForbidden(what, message or "Forbidden")
    if status == 404:
        return GitHubNotFound(what, missing or "not found")
    if status >= 500:
        return GitHubServerError(what, status, attempts)
    errors = data.get("errors") if isinstance(data, Mapping) else None
    detail = message + (f" {json.dumps(errors)}" if errors else "")
    return GitHubRejected(what, status, detail or "no message")


# -- the endpoints -----------------------------------------------------------------------------


def pull_request(client: Client, repo: str, number: int) -> Mapping[str, Any]:
    """GET /repos/{owner}/{repo}/pulls/{number}."""
    data, _ = client.call("GET", f"/repos/{repo}/pulls/{number}", what=f"to read pull request #{number}",
                          missing=f"pull request #{number} does not exist in {repo}")
    return data


def upsert_comment(client: Client, repo: str, number: int, marker: str, body: str) -> tuple[str, bool]:
    """Update the comment holding `marker`, or create it: (its html_url, created?)."""
    where = f"pull request #{number}"
    found = None
    for comment in client.pages(f"/repos/{repo}/issues/{number}/comments", what=f"to list the comments of {where}",
                                missing=f"{where} does not exist in {repo}"):
        if marker in str(comment.get("body") or ""):
            found = comment["id"]
            break
    if found is not None:
        data, _ = client.call("PATCH", f"/repos/{repo}/issues/comments/{found}", {"body": body},
                              what=f"to update the review comment on {where}",
                              missing=f"the review comment on {where} was deleted meanwhile")
        return str(data.get("html_url", "")), False
    # Not retried on 5xx: the comment may have been created before the error.
    data, _ = client.call("POST", f"/repos/{repo}/issues/{number}/comments", {"body": body},
                          what=f"to comment on {where}", missing=f"{where} does not exist in {repo}",
                          retry_server=False)
    return str(data.get("html_url", "")), True


def set_status(client: Client, repo: str, sha: str, state: str, description: str, context: str,
               target_url: str = "") -> None:
    """POST /repos/{owner}/{repo}/statuses/{sha}."""
    body = {"state": state, "context": context, "description": shorten(description, DESCRIPTION_LIMIT)}
    if target_url:
        body["target_url"] = target_url
    client.call("POST", f"/repos/{repo}/statuses/{sha}", body, what=f"to set the commit status of {sha[:12]}",
                missing=f"commit {sha[:12]} does not exist in {repo}")


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
