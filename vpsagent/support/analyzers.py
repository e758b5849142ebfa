"""Deterministic rules over what the collectors saw: findings with a severity, a title in
everyday words and the evidence lines they rest on. No AI here: the same output always
gives the same findings, and `--no-ai` is complete without a model.

Thresholds are settings (`[support]` in the config file) and `--set name=value`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta

from vpsagent.errors import InvalidInput
from vpsagent.support.collectors import Collected


@dataclass(frozen=True)
class Thresholds:
    disk_percent: float = 90.0  # a filesystem this full is a finding
    inode_percent: float = 90.0
    tmp_percent: float = 90.0
    mem_percent: float = 90.0  # memory in use (not available) above this
    load_per_cpu: float = 2.0  # 1-minute load per processor
    cert_days: float = 14.0  # certificates expiring sooner
    error_burst: float = 50.0  # error lines within the window, per log
    collector_timeout: float = 0.0  # 0: each collector's own bound
    tls_probe_timeout: float = 2.0  # one certificate probe (TLS handshake) per listening port
    log_files: tuple[str, ...] = ()  # more logs to scan for errors

    def with_settings(self, values: Mapping[str, str]) -> Thresholds:
        """These thresholds with `name=value` settings applied; unknown names and bad numbers are errors."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, object] = {}
        for name, raw in values.items():
            key = name.strip().replace("-", "_")
            if key not in known:
                raise InvalidInput(f"unknown support setting {name!r}", hint="known: " + ", ".join(sorted(known)))
            if key == "log_files":
                changes[key] = tuple(p for p in (x.strip() for x in raw.split(",")) if p)
                continue
            try:
                number = float(raw)
            except ValueError:
                raise InvalidInput(f"--set {name}={raw!r}: expected a number") from None
            if not 0 <= number < 1e9:
                raise InvalidInput(f"--set {name}={raw!r}: out of range")
            changes[key] = number
        return replace(self, **changes)  # type: ignore[arg-type]  # values checked against the fields above


@dataclass
class Finding:
    server: str
    id: str
    severity: str  # critical | warning | info
    title: str
    evidence: list[str]
    collector: str
    peers: str | None = None  # "only web3 has this" on a fleet


@dataclass(frozen=True)
class Context:
    """What an analyzer may use: the outputs of one server, the thresholds, the window."""

    out: Mapping[str, Collected]
    limits: Thresholds
    since: timedelta
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def text(self, cid: str) -> str:
        got = self.out.get(cid)
        return got.output if got is not None and not got.skipped else ""


Issue = tuple[str, str, str, list[str], str]  # (id, severity, title, evidence, collector)
Analyzer = Callable[[Context], list[Issue]]


# --------------------------------------------------------------------------- parsing helpers


def _df_rows(text: str) -> list[tuple[str, float, str, str]]:
    """(filesystem, percent used, mount point, the line) from `df -P`."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[4].endswith("%") and parts[4][:-1].isdigit():
            rows.append((parts[0], float(parts[4][:-1]), " ".join(parts[5:]), line))
    return rows


PSEUDO_FS = ("tmpfs", "devtmpfs", "udev", "none", "shm", "overlay-tmp", "cgroup", "proc", "sysfs", "squashfs")


def _real(fs: str, mount: str) -> bool:
    if mount.startswith(("/dev", "/sys", "/proc", "/run", "/snap/")):
        return False
    return fs not in PSEUDO_FS


def _header(text: str) -> list[str]:
    return text.splitlines()[:1]


def _meminfo(text: str) -> dict[str, int]:
    found = {}
    for line in text.splitlines():
        m = re.match(r"(\w+):\s+(\d+)", line)
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


_SYSLOG = re.compile(r"^(?:[^|]*\|)?\s*([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d\d):(\d\d):(\d\d)")
_ISO = re.compile(r"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?")
_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}


def _tz(text: str | None) -> timedelta:
    if not text or text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))


def line_time(line: str, now: datetime, local_offset: timedelta) -> datetime | None:
    """When a log line was written (ISO, journal short-iso, nginx, or syslog's `Mon dd hh:mm:ss`)."""
    m = _ISO.search(line[:64])
    if m:
        y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
        offset = _tz(m.group(7)) if m.group(7) else local_offset
        try:
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC) - offset
        except ValueError:
            return None
    m = _SYSLOG.match(line)
    if m and m.group(1) in _MONTHS:
        try:
            when = datetime(now.year, _MONTHS[m.group(1)], int(m.group(2)), int(m.group(3)), int(m.group(4)),
                            int(m.group(5)), tzinfo=UTC) - local_offset
        except ValueError:
            return None
        # syslog has no year: a date in the future is last year's
        return when.replace(year=when.year - 1) if when > now + timedelta(days=1) else when
    return None


def _server_clock(ctx: Context) -> tuple[datetime, timedelta]:
    """The server's now and UTC offset, from the `os` collector's `date` line."""
    for line in ctx.text("os").splitlines():
        m = re.match(r"^date (\d+) ([+-]\d{4})$", line.strip())
        if m:
            return datetime.fromtimestamp(int(m.group(1)), UTC), _tz(m.group(2))
    return ctx.now, timedelta(0)


# --------------------------------------------------------------------------- the rules


def disk_full(ctx: Context) -> list[Issue]:
    found: list[Issue] = []
    text = ctx.text("disks")
    for fs, pct, mount, line in _df_rows(text):
        if mount == "/tmp" or not _real(fs, mount) or pct < ctx.limits.disk_percent:
            continue
        severity = "critical" if pct >= 98 else "warning"
        found.append(("disk_full", severity, f"disk almost full: {mount} is {pct:g}% used", _header(text) + [line],
                      "disks"))
    return found


def tmp_full(ctx: Context) -> list[Issue]:
    text = ctx.text("disks")
    for _fs, pct, mount, line in _df_rows(text):
        if mount == "/tmp" and pct >= ctx.limits.tmp_percent:
            return [("tmp_full", "warning", f"/tmp is {pct:g}% full: programs may fail to write temporary files",
                     _header(text) + [line], "disks")]
    return []


def inodes_full(ctx: Context) -> list[Issue]:
    found: list[Issue] = []
    text = ctx.text("inodes")
    for fs, pct, mount, line in _df_rows(text):
        if _real(fs, mount) and pct >= ctx.limits.inode_percent:
            found.append(("inodes_full", "critical" if pct >= 98 else "warning",
                          f"too many files on {mount}: {pct:g}% of its inodes are used (no new files soon)",
                          _header(text) + [line], "inodes"))
    return found


def memory_pressure(ctx: Context) -> list[Issue]:
    mem = _meminfo(ctx.text("memory"))
    total, avail = mem.get("MemTotal", 0), mem.get("MemAvailable")
    if not total or avail is None:
        return []
    used = 100.0 * (total - avail) / total
    if used < ctx.limits.mem_percent:
        return []
    evidence = [f"MemTotal: {total} kB", f"MemAvailable: {avail} kB"]
    if mem.get("SwapTotal"):
        evidence.append(f"SwapFree: {mem.get('SwapFree', 0)} of {mem['SwapTotal']} kB")
    return [("memory_pressure", "critical" if used >= 97 else "warning",
             f"memory is nearly used up ({used:.0f}% in use)", evidence, "memory")]


def oom_kills(ctx: Context) -> list[Issue]:
    lines = [ln for ln in ctx.text("oom").splitlines() if ln.strip()]
    if not lines:
        return []
    return [("oom_kills", "critical", f"the system ran out of memory and killed processes ({len(lines)} times)",
             lines[-5:], "oom")]


def high_load(ctx: Context) -> list[Issue]:
    load_line = next((ln for ln in ctx.text("uptime").splitlines() if re.match(r"^\d+\.\d+ \d+\.\d+ \d+\.\d+ ", ln)),
                     None)
    cpus = next((int(ln) for ln in ctx.text("cpu").splitlines() if ln.strip().isdigit()), 0)
    if load_line is None or not cpus:
        return []
    load1 = float(load_line.split()[0])
    if load1 / cpus < ctx.limits.load_per_cpu:
        return []
    return [("high_load", "warning", f"the server is overloaded: load {load1:g} on {cpus} CPUs",
             [f"loadavg: {load_line}", f"CPUs: {cpus}"], "uptime")]


def _sections(text: str) -> dict[str, list[str]]:
    """Lines of a collector's output by its `-- name` sections ('' before the first)."""
    parts: dict[str, list[str]] = {"": []}
    name = ""
    for line in text.splitlines():
        if line.startswith("-- "):
            name = line[3:].strip()
            parts[name] = []
        elif line.strip():
            parts[name].append(line)
    return parts


def failed_units(ctx: Context) -> list[Issue]:
    parts = _sections(ctx.text("failed_units"))
    found: list[Issue] = []
    failed = [ln for ln in parts.get("", []) if ln.strip()]
    if failed:
        names = ", ".join(ln.split()[0] for ln in failed[:5])
        found.append(("failed_units", "critical", f"services have failed: {names}", failed[:10], "failed_units"))
    looping = [ln for ln in parts.get("restarting", []) if "auto-restart" in ln or "activating" in ln]
    if looping:
        names = ", ".join(ln.split()[0] for ln in looping[:5])
        found.append(("failed_units", "critical", f"services keep crashing and restarting: {names}", looping[:10],
                      "failed_units"))
    return found


def error_burst(ctx: Context) -> list[Issue]:
    now, offset = _server_clock(ctx)
    start = now - ctx.since
    found: list[Issue] = []
    source, counted = "", list[str]()
    chunks: list[tuple[str, list[str]]] = []
    for line in ctx.text("log_errors").splitlines():
        m = re.match(r"^==> (.*) <==$", line)
        if m:
            if source:
                chunks.append((source, counted))
            source, counted = m.group(1), []
            continue
        when = line_time(line, now, offset)
        if when is not None and start <= when <= now + timedelta(minutes=5):
            counted.append(line)
    if source:
        chunks.append((source, counted))
    for where, lines in chunks:
        if len(lines) >= ctx.limits.error_burst:
            found.append(("error_burst", "warning", f"a burst of errors in {where}: {len(lines)} error lines "
                          f"in the last {_say(ctx.since)}", lines[-5:], "log_errors"))
    return found


def _say(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes >= 120 and minutes % 60 == 0 else f"{minutes} min"


def clock_unsynced(ctx: Context) -> list[Issue]:
    text = ctx.text("time_sync")
    bad = [ln for ln in text.splitlines() if ln.strip() in ("NTPSynchronized=no",) or
           "Not synchronised" in ln or "Leap status     : Not synchronised" in ln]
    if not bad:
        return []
    return [("clock_unsynced", "warning", "the clock is not synchronised (times in logs and TLS checks may be off)",
             bad, "time_sync")]


def cert_expiring(ctx: Context) -> list[Issue]:
    found: list[Issue] = []
    now, _offset = _server_clock(ctx)
    for line in ctx.text("tls_certs").splitlines():
        m = re.search(r"^port (\d+) .*notAfter=(\w{3}\s+\d+ \d\d:\d\d:\d\d \d{4}) GMT", line)
        if not m:
            continue
        try:
            until = datetime.strptime(m.group(2), "%b %d %H:%M:%S %Y").replace(tzinfo=UTC)
        except ValueError:
            continue
        days = (until - now).total_seconds() / 86400
        if days >= ctx.limits.cert_days:
            continue
        if days < 0:
            title = f"the certificate on port {m.group(1)} has expired"
        else:
            title = f"the certificate on port {m.group(1)} expires in {max(0, int(days))} days"
        found.append(("cert_expiring", "critical" if days < 3 else "warning", title, [line], "tls_certs"))
    return found


SERVICE_PORTS = {"nginx": (80, 443), "apache2": (80, 443), "httpd": (80, 443), "postgresql": (5432,),
                 "mysql": (3306,), "mariadb": (3306,), "redis-server": (6379,), "ssh": (22,), "sshd": (22,)}


def not_listening(ctx: Context) -> list[Issue]:
    enabled = {ln.split()[0].removesuffix(".service") for ln in _sections(ctx.text("failed_units")).get("enabled", [])}
    listening = ctx.text("listening")
    if not enabled or not listening:
        return []
    ports = {int(p) for p in re.findall(r"[:.](\d+)\s", listening)}
    found: list[Issue] = []
    for svc, wanted in SERVICE_PORTS.items():
        if svc in enabled and not ports & set(wanted):
            found.append(("not_listening", "warning",
                          f"{svc} is enabled but nothing listens on port {'/'.join(map(str, wanted))}",
                          [f"{svc}.service enabled", "listening ports: " + ", ".join(map(str, sorted(ports)))],
                          "listening"))
    return found


REAL_FS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "jfs", "reiserfs", "f2fs", "vfat", "ntfs"}


def readonly_fs(ctx: Context) -> list[Issue]:
    found: list[Issue] = []
    for line in ctx.text("mounts").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in REAL_FS and parts[3].split(",")[0] == "ro":
            found.append(("readonly_fs", "critical", f"the filesystem on {parts[1]} is read-only "
                          "(often after disk errors)", [line], "mounts"))
    return found


def reboot_required(ctx: Context) -> list[Issue]:
    text = ctx.text("updates")
    found: list[Issue] = []
    if "reboot-required" in text:
        found.append(("reboot_required", "info", "a reboot is pending: updated packages need it",
                      [ln for ln in text.splitlines() if ln.strip()][:6], "updates"))
    m = re.search(r"(\d+) updates? can be applied|(?:apt|dnf|apk)-upgradable (\d+)", text)
    count = int(m.group(1) or m.group(2)) if m else 0
    if count:
        found.append(("updates_pending", "info", f"{count} package updates are waiting", [m.group(0)] if m else [],
                      "updates"))
    return found


def services_broken(ctx: Context) -> list[Issue]:
    """What the application collectors say outright: a bad config, a down database, a sick container."""
    found: list[Issue] = []
    for cid, bad, title in (("nginx", "test failed", "nginx's configuration has errors (a reload would fail)"),
                            ("apache", "Syntax error", "apache's configuration has errors"),
                            ("postgresql", "no response", "PostgreSQL does not accept connections"),
                            ("mysql", "error", "MySQL does not answer")):
        lines = [ln for ln in ctx.text(cid).splitlines() if bad.lower() in ln.lower()]
        if lines:
            found.append(("service_broken", "critical", title, lines[:5], cid))
    sick = [ln for ln in ctx.text("docker").splitlines() if "Restarting" in ln or "unhealthy" in ln]
    if sick:
        names = ", ".join(ln.split("\t")[0] for ln in sick[:5])
        found.append(("container_unhealthy", "warning", f"containers are restarting or unhealthy: {names}", sick[:8],
                      "docker"))
    return found


ANALYZERS: tuple[Analyzer, ...] = (
    disk_full, tmp_full, inodes_full, memory_pressure, oom_kills, high_load, failed_units, error_burst,
    clock_unsynced, cert_expiring, not_listening, readonly_fs, reboot_required, services_broken,
)
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def analyze(server: str, out: Mapping[str, Collected], limits: Thresholds, since: timedelta,
            now: datetime | None = None) -> list[Finding]:
    ctx = Context(out=out, limits=limits, since=since, now=now or datetime.now(UTC))
    found = [Finding(server, *issue) for rule in ANALYZERS for issue in rule(ctx)]
    return sorted(found, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))


def compare_peers(findings: Sequence[Finding], servers: Sequence[str]) -> None:
    """On a fleet, mark findings only some servers have ("only web3 has …")."""
    if len(servers) < 2:
        return
    by_id: dict[str, set[str]] = {}
    for f in findings:
        by_id.setdefault(f.id, set()).add(f.server)
    for f in findings:
        having = by_id[f.id]
        if len(having) < len(servers):
            f.peers = f"only {', '.join(sorted(having))} {'has' if len(having) == 1 else 'have'} this"
