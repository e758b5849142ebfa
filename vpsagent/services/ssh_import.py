"""`servers import`: servers from an OpenSSH client config (~/.ssh/config).

paramiko parses the `Host` blocks; what it does not do is done here first, on the text:
`Include` is followed (globs; relative paths are in ~/.ssh, as OpenSSH reads a user's
config) and `Match` blocks are dropped with a warning (paramiko would evaluate them
against the local machine, and its host list then fails on them). A `ProxyJump` names a
Host of the config, a server of the inventory, or `[user@]host[:port]`: the jump host is
matched by address or created, and a chain `a,b` becomes target -> b -> a.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent.db.inventory import ServerRecord
from vpsagent.errors import AlreadyExists, InvalidInput, NotFound
from vpsagent.services.servers import (
    NAME_RE,
    ServerSpec,
    add_server,
    check_name,
    list_servers,
    read_key_file,
)
from vpsagent.userfiles import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from paramiko.config import SSHConfig, SSHConfigDict

    from vpsagent.services.context import Context

MAX_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
_KEYWORD = re.compile(r"^\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*$")
_HOP = re.compile(r"^(?:(?P<user>[^@]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")


@dataclass
class ImportResult:
    added: list[ServerRecord]
    skipped: list[dict[str, str]]  # {"name": ..., "reason": ...}: not imported
    warnings: list[dict[str, str]] = field(default_factory=list)  # imported, but with this caveat


# -- reading the config ---------------------------------------------------------------------

def _include_targets(value: str, config_path: Path) -> list[Path]:
    """The files one `Include` line names: globs, `~`, relative to ~/.ssh (then to the file's
    own directory, for a config read from elsewhere with --ssh-config)."""
    found: list[Path] = []
    for word in value.split():
        word = word.strip('"')
        pattern = Path(word).expanduser()
        if pattern.is_absolute():
            found += sorted(Path(p) for p in glob.glob(str(pattern)))
            continue
        for base in (Path("~/.ssh").expanduser(), config_path.parent):
            matches = sorted(Path(p) for p in glob.glob(str(base / pattern)))
            if matches:
                found += matches
                break
    return [p for p in found if p.is_file()]


def config_text(path: Path, warnings: list[dict[str, str]], _within: tuple[Path, ...] = (), *,
                max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The config with every Include inlined and every Match block left out (a file that
    includes itself, directly or not, is skipped there with a warning); each file is read
    only when it is a regular file within `max_bytes` (an Include of /dev/zero never ends)."""
    from vpsagent.userfiles import read_bounded

    try:
        lines = read_bounded(path, max_bytes).decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        raise InvalidInput(f"ssh config {path} does not exist") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read ssh config {path}: {exc.strerror}") from None
    out: list[str] = []
    in_match = False
    for number, line in enumerate(lines, 1):
        m = _KEYWORD.match(line)
        key = m.group(1).lower() if m else ""
        if key in ("host", "match"):
            in_match = key == "match"
            if in_match:
                warnings.append({"name": f"{path}:{number}",
                                 "reason": f"'{line.strip()}' skipped: Match blocks are not imported"})
                continue
        if in_match:
            continue
        if key == "include" and m is not None:
            out += _included(m.group(2), path, number, warnings, (*_within, path.resolve()), max_bytes)
            continue
        out.append(line)
    return "\n".join(out)


def _included(value: str, path: Path, number: int, warnings: list[dict[str, str]],
              within: tuple[Path, ...], max_bytes: int) -> list[str]:
    if len(within) > MAX_INCLUDE_DEPTH:
        raise InvalidInput(f"{path}:{number}: Include nested more than {MAX_INCLUDE_DEPTH} deep")
    texts = []
    for target in _include_targets(value, path):
        if target.resolve() in within:
            warnings.append({"name": f"{path}:{number}", "reason": f"Include {target} skipped: it includes itself"})
            continue
        texts.append(config_text(target, warnings, within, max_bytes=max_bytes))
    return texts


def load_ssh_config(path: Path, warnings: list[dict[str, str]], *, max_bytes: int = DEFAULT_MAX_BYTES) -> SSHConfig:
    import paramiko

    text = config_text(Path(path).expanduser(), warnings, max_bytes=max_bytes)
    try:
        return paramiko.SSHConfig.from_text(text)
    except Exception as exc:
        raise InvalidInput(f"cannot parse ssh config {path}: {exc}") from None


# -- importing ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hop:
    """One `[user@]host[:port]` of a ProxyJump line."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Hop:
        m = _HOP.match(spec.strip().removeprefix("ssh://"))
        if m is None:
            raise InvalidInput(f"ProxyJump {spec!r}: expected [user@]host[:port]")
        return cls(m.group("v6") or m.group("host"), m.group("user"), int(m.group("port")) if m.group("port") else None)


class _Importer:
    """One import: the config, the inventory as it grows, and what happened to each entry."""

    def __init__(self, ctx: Context, cfg: SSHConfig, result: ImportResult) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.result = result
        self.aliases = {h for h in cfg.get_hostnames() if not any(c in h for c in "*?!")}
        self.inventory: dict[str, ServerRecord] = {r.name: r for r in list_servers(ctx.engine)}
        self.busy: set[str] = set()  # aliases being imported (a ProxyJump loop stops here)

    def add(self, spec: ServerSpec) -> ServerRecord:
        rec = add_server(self.ctx, spec)
        self.inventory[rec.name] = rec
        self.result.added.append(rec)
        return rec

    def import_alias(self, alias: str) -> str:
        """Import one Host entry (its jump hosts first); returns its server name."""
        if alias in self.inventory:
            return alias
        if alias in self.busy:
            raise InvalidInput(f"ProxyJump loop through {alias!r}")
        self.busy.add(alias)
        try:
            o = self.cfg.lookup(alias)
            spec = self._spec(alias, o)
            spec.jump = self._jump_chain(alias, o.get("proxyjump"))
            return self.add(spec).name
        finally:
            self.busy.discard(alias)

    def _spec(self, alias: str, o: SSHConfigDict, *, user: str | None = None, port: int | None = None,
              host: str | None = None) -> ServerSpec:
        check_name(alias)
        spec = ServerSpec(name=alias, host=host or o.get("hostname", alias))
        if port is not None or "port" in o:
            spec.port = port if port is not None else int(o["port"])
        if user is not None or "user" in o:
            spec.user = user if user is not None else o["user"]
        _take_identity(alias, _identity_files(o), spec, self.result.warnings)
        return spec

    def _jump_chain(self, alias: str, value: str | None) -> str | None:
        """The server the target jumps through (the last hop), each hop through the one before."""
        if not value or value.lower() == "none":
            return None
        previous: str | None = None
        for spec in value.split(","):
            name = self._hop(alias, Hop.parse(spec), previous)
            if previous is not None and self.inventory[name].jump != previous:
                self.result.warnings.append({"name": name, "reason": f"jumps through "
                                             f"{self.inventory[name].jump or 'nothing'}, not {previous} "
                                             f"as the ProxyJump of {alias} says; left as it is"})
            previous = name
        return previous

    def _hop(self, alias: str, hop: Hop, previous: str | None) -> str:
        """A hop's server: a Host of the config or a server by name (when no user or port
        overrides it), a server with that address, or a new one (jumping through `previous`)."""
        plain = hop.user is None and hop.port is None
        if plain and hop.host in self.inventory:
            return hop.host
        if plain and hop.host in self.aliases:
            return self.import_alias(hop.host)
        o = self.cfg.lookup(hop.host)
        address = o.get("hostname", hop.host)
        port, user = hop.port or int(o.get("port", 22)), hop.user or o.get("user")
        for rec in self.inventory.values():
            if rec.host in (address, hop.host) and rec.port == port and (user is None or rec.user == user):
                return rec.name
        for other in sorted(self.aliases - self.busy):  # a Host of the config, not imported yet
            c = self.cfg.lookup(other)
            if (c.get("hostname", other) == address and int(c.get("port", 22)) == port
                    and (user is None or c.get("user") == user)):
                return self.import_alias(other)
        name = self._free_name(hop, address)
        spec = self._spec(name, o, user=user, port=port, host=address)
        spec.jump = previous
        rec = self.add(spec)
        self.result.warnings.append({"name": rec.name, "reason": f"created as the jump host of {alias} "
                                     f"(ProxyJump {hop.user + '@' if hop.user else ''}{hop.host}"
                                     f"{':' + str(hop.port) if hop.port else ''})"})
        return rec.name

    def _free_name(self, hop: Hop, address: str) -> str:
        base = re.sub(r"[^A-Za-z0-9._-]", "-", hop.host if NAME_RE.match(hop.host) else address).strip("-._")
        base = base or "jump"
        if hop.port and hop.port != 22:
            base = f"{base}-{hop.port}"
        name, n = base, 2
        while name in self.inventory or name in self.aliases:
            name, n = f"{base}-{n}", n + 1
        return name


def import_ssh_config(ctx: Context, path: Path, pattern: str | None = None) -> ImportResult:
    """Add every concrete Host of an OpenSSH config (wildcard entries only supply defaults)."""
    result = ImportResult(added=[], skipped=[])
    imp = _Importer(ctx, load_ssh_config(path, result.warnings, max_bytes=ctx.settings.max_file_bytes), result)
    names = sorted(imp.aliases)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    already = set(imp.inventory)
    for alias in names:
        if alias in already:
            result.skipped.append({"name": alias, "reason": "already in the inventory"})
            continue
        try:
            imp.import_alias(alias)
        except (InvalidInput, NotFound, AlreadyExists, ValueError) as exc:
            result.skipped.append({"name": alias, "reason": getattr(exc, "message", str(exc))})
    return result


def _identity_files(o: SSHConfigDict) -> list[str]:
    # a list at run time (IdentityFile may be repeated), though the paramiko stubs say str
    files: object = o.get("identityfile", [])
    return [str(f) for f in files] if isinstance(files, list) else []


def _take_identity(alias: str, identities: list[str], spec: ServerSpec, warnings: list[dict[str, str]]) -> None:
    """The first IdentityFile that exists becomes the stored key, if it is a usable key."""
    idents = [Path(i).expanduser() for i in identities]
    if idents and not any(p.exists() for p in idents):
        warnings.append({"name": alias, "reason": f"IdentityFile {idents[0]} does not exist; "
                        "the server uses ssh-agent / default keys"})
    for p in idents:
        if p.exists():
            try:
                read_key_file(p, None)
                spec.key_path = p
            except InvalidInput as exc:
                spec.key_path = None
                warnings.append({"name": alias, "reason": f"key {p} not stored ({exc.message}); "
                                "the server uses ssh-agent / default keys"})
            break
