"""The GitHub side of a deploy, through PyGithub: resolve a ref, read the deploy config at a
commit, download the archive, and report a Deployment and its statuses.

`GITHUB_API_URL` points it at GitHub Enterprise (and the tests at a local server). PyGithub
retries server errors a few times with short backoffs; after that, and on a bad token,
the failure is one clear line and nothing has been deployed.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.secret import Secret

if TYPE_CHECKING:
    from github.Repository import Repository

ARCHIVE_LIMIT = 2 * 1024**3  # a repository archive larger than this is refused
DESCRIPTION_MAX = 140  # GitHub refuses longer deployment status descriptions


def _fail(exc: Exception, what: str) -> errors.VpsAgentError:
    from github import BadCredentialsException, GithubException, UnknownObjectException

    if isinstance(exc, BadCredentialsException):
        return errors.NotAllowed(f"GitHub refused the token while trying to {what}",
                                 hint="check GITHUB_TOKEN or `vpsagent github connect OWNER/REPO --token-stdin`")
    if isinstance(exc, UnknownObjectException):
        return errors.NotFound(f"GitHub has no such thing while trying to {what} (or the token cannot see it)")
    if isinstance(exc, GithubException):
        return errors.Failure(f"GitHub answered {exc.status} while trying to {what}; nothing was deployed",
                              hint="try again later")
    return errors.Failure(f"cannot reach GitHub while trying to {what}: {type(exc).__name__}")


@dataclass
class GitHub:
    """One repository on one GitHub (or GitHub Enterprise) API."""

    repo_name: str  # owner/name
    token: Secret
    api_url: str
    _repo: Repository | None = None

    def _api(self) -> Repository:
        if self._repo is None:
            from github import Auth, Github, GithubRetry

            retry = GithubRetry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])
            client = Github(base_url=self.api_url.rstrip("/"), auth=Auth.Token(self.token.reveal_str()),
                            retry=retry, timeout=30)
            try:
                self._repo = client.get_repo(self.repo_name)
            except Exception as exc:  # noqa: BLE001 - every failure is one line (see _fail)
                raise _fail(exc, f"open {self.repo_name}") from None
        return self._repo

    def check(self) -> None:
        """The token can read the repository (a connection is refused otherwise)."""
        self._api()

    def default_branch(self) -> str:
        return str(self._api().default_branch)

    def resolve(self, ref: str) -> str:
        try:
            return str(self._api().get_commit(ref).sha)
        except errors.VpsAgentError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(exc, f"resolve {ref!r}") from None

    def file_at(self, path: str, sha: str) -> bytes | None:
        from github import UnknownObjectException

        try:
            found = self._api().get_contents(path, ref=sha)
        except UnknownObjectException:
            return None
        except errors.VpsAgentError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(exc, f"read {path}") from None
        if isinstance(found, list):
            return None
        return bytes(found.decoded_content)

    def archive(self, sha: str) -> bytes:
        """The repository at `sha` as a .tar.gz, downloaded here (the servers need no GitHub access)."""
        try:
            link = self._api().get_archive_link("tarball", sha)
        except errors.VpsAgentError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(exc, f"find the archive of {sha[:7]}") from None
        req = urllib.request.Request(link, headers={"Authorization": f"token {self.token.reveal_str()}"}
                                     if link.startswith(self.api_url) else {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the API gave this https/http link
                data: bytes = resp.read(ARCHIVE_LIMIT + 1)
        except OSError as exc:
            raise errors.Failure(f"cannot download the archive of {sha[:7]}: {exc}") from None
        if len(data) > ARCHIVE_LIMIT:
            raise errors.Failure(f"the archive of {sha[:7]} is larger than {ARCHIVE_LIMIT // 1024**3} GiB")
        return data

    def start_deployment(self, sha: str, ref: str, environment: str, description: str) -> int:
        try:
            dep = self._api().create_deployment(sha, environment=environment, auto_merge=False, required_contexts=[],
                                                description=description[:DESCRIPTION_MAX],
                                                payload={"ref": ref, "by": "vpsagent"})
        except errors.VpsAgentError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(exc, "create the GitHub deployment") from None
        return int(dep.id)

    def set_status(self, deployment_id: int, state: str, description: str, environment_url: str | None = None) -> None:
        """Report a state (in_progress, success, failure); best effort: a deploy never fails for it."""
        try:
            dep = self._api().get_deployment(deployment_id)
            if environment_url:
                dep.create_status(state, description=description[:DESCRIPTION_MAX], environment_url=environment_url)
            else:
                dep.create_status(state, description=description[:DESCRIPTION_MAX])
        except Exception:  # noqa: BLE001 - the deploy's outcome stands; the status is a report of it
            pass


def short(text: str, limit: int = DESCRIPTION_MAX) -> str:
    """One line of at most `limit` characters (GitHub's limit for a status description)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
