"""What a deploy does on a server, as POSIX `sh` commands: the release layout of Capistrano
and Deployer, with the switch done atomically.

    PATH/releases/<UTC time>-<short sha>/   one directory per release, kept for rollback
    PATH/shared/                              files and directories every release links to
    PATH/current -> releases/...              the live release (`ln -s` then `mv -T`)
    PATH/.deploy-lock/                        the server side of the deploy lock (mkdir is atomic)
    PATH/releases/<name>/.vpsagent.env        `env:` and secrets, 0600, sourced by every command

Every command here is built from quoted values (`shlex.quote`), never from unquoted input.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

RELEASE_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{7,40}$")
LOCK_DIR = ".deploy-lock"
ENV_FILE = ".vpsagent.env"


def q(text: str) -> str:
    return shlex.quote(text)


def spell(path: str) -> str:
    """`path` for the shell: quoted, with a leading `~/` as the login's home."""
    return f'"$HOME"/{q(path[2:])}' if path.startswith("~/") else q(path)


def open_app(path: str, holder: str) -> str:
    """Create PATH (releases/, shared/), take the server's deploy lock, and print PATH's
    absolute form and the release `current` points to (empty on a first deploy).
    Exit 75 with who holds the lock when another deploy has it."""
    lock = LOCK_DIR
    return (f"mkdir -p {spell(path)}/releases {spell(path)}/shared && cd {spell(path)} && "
            f"if mkdir {lock} 2>/dev/null; then printf '%s\\n' {q(holder)} > {lock}/holder; "
            f"else echo \"held by: $(cat {lock}/holder 2>/dev/null || echo unknown)\" >&2; exit 75; fi; "
            f"pwd -P; readlink current 2>/dev/null || true")


def release_lock(path: str) -> str:
    return f"rm -f {spell(path)}/{LOCK_DIR}/holder; rmdir {spell(path)}/{LOCK_DIR} 2>/dev/null; true"


def current_release(base: str) -> str:
    """Print the release `current` points to (nothing on a first deploy)."""
    return f"readlink {q(base)}/current 2>/dev/null || true"


def unpack(base: str, release: str, archive: str) -> str:
    r = f"{base}/releases/{release}"
    return (f"mkdir {q(r)} && tar -xzf {q(archive)} -C {q(r)} --strip-components=1 && rm -f {q(archive)}")


def clone(base: str, release: str, git_url: str, sha: str) -> str:
    r = f"{base}/releases/{release}"
    return f"git clone -q {q(git_url)} {q(r)} && git -C {q(r)} -c advice.detachedHead=false checkout -q {q(sha)}"


def link_shared(base: str, release: str, files: Sequence[str], dirs: Sequence[str]) -> str | None:
    """Every shared directory and file, linked into the release from PATH/shared/ (created empty
    the first time, so a release never ships its own copy of what must persist)."""
    r, s = f"{base}/releases/{release}", f"{base}/shared"
    parts = []
    for d in dirs:
        parts.append(f"mkdir -p {q(f'{s}/{d}')} && rm -rf {q(f'{r}/{d}')} && mkdir -p \"$(dirname {q(f'{r}/{d}')})\" "
                     f"&& ln -s {q(f'{s}/{d}')} {q(f'{r}/{d}')}")
    for f in files:
        parts.append(f"mkdir -p \"$(dirname {q(f'{s}/{f}')})\" && touch {q(f'{s}/{f}')} && rm -f {q(f'{r}/{f}')} "
                     f"&& mkdir -p \"$(dirname {q(f'{r}/{f}')})\" && ln -s {q(f'{s}/{f}')} {q(f'{r}/{f}')}")
    return " && ".join(parts) if parts else None


def env_file(values: Mapping[str, str]) -> bytes:
    """The variables every deploy command sees, as a file the commands source (written 0600
    into the release; the app may source it too)."""
    return "".join(f"export {k}={q(v)}\n" for k, v in sorted(values.items())).encode()


def in_release(where: str, command: str, variables: Mapping[str, str]) -> str:
    """`command` in the directory `where` with the deploy variables and the release's env file
    (each release has its own, so a rollback also brings back the values it was built with)."""
    exports = " ".join(f"{k}={q(v)}" for k, v in sorted(variables.items()))
    return (f"export {exports}; cd {q(where)} && if [ -f {ENV_FILE} ]; then set -a; . ./{ENV_FILE}; set +a; fi "
            f"&& {command}")


def switch(base: str, release: str) -> str:
    """Point `current` at the release atomically: a new link renamed over the old one."""
    tmp = f"{base}/.current.{release}"
    return f"ln -sfn {q(f'{base}/releases/{release}')} {q(tmp)} && mv -T {q(tmp)} {q(base)}/current"


def list_releases(base: str) -> str:
    return f"ls -1 {spell(base)}/releases 2>/dev/null; echo '--'; readlink {spell(base)}/current 2>/dev/null || true"


def parse_releases(stdout: str) -> tuple[list[str], str | None]:
    """(release names oldest first, the current one's name)."""
    names, _sep, cur = stdout.partition("--")
    releases = sorted(n for n in names.split() if RELEASE_RE.match(n))
    current = cur.strip().rstrip("/").rsplit("/", 1)[-1] if cur.strip() else None
    return releases, current


def remove_releases(base: str, names: Sequence[str]) -> str | None:
    """Remove old releases by name — only names of the release pattern, only under releases/."""
    safe = [n for n in names if RELEASE_RE.match(n)]
    if not safe:
        return None
    return "cd " + q(f"{base}/releases") + " && rm -rf -- " + " ".join(q(n) for n in safe)


def unlink_current(base: str) -> str:
    """No live release any more (a first deploy that failed after its switch)."""
    return f"rm -f {q(base)}/current"
