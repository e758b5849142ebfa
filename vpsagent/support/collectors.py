"""What `vpsagent support` looks at: read-only POSIX `sh` snippets, written as data.

Each collector has a stable id, a test that says whether it applies on this server (a
binary present, systemd running), a time bound and an output bound. Nothing is installed
on the server: all collectors of one server run as ONE shell command over its one
connection, in parallel (a background job each), every line of output prefixed with the
collector's id, so the whole collection is one round trip and one audit row.

Snippets only read; results travel on stdout (no temporary files). Placeholders:
`{minutes}` (the `--since` window) and `{log_files}` (extra log files, shell-quoted).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

SYSTEMD = "[ -d /run/systemd/system ] && command -v systemctl"
LOG_PATTERN = "emerg|alert|crit|error|fatal|panic|segfault|fail(ed|ure)|denied|refused|oom"


@dataclass(frozen=True)
class Collector:
    id: str
    title: str
    script: str
    applies: str = "true"  # sh: exit 0 when this collector makes sense here
    timeout: float = 5.0
    max_bytes: int = 64 * 1024


COLLECTORS: tuple[Collector, ...] = (
    Collector("os", "operating system, kernel and clock",
              # the server's own time and offset: log lines are read against them, not ours
              "uname -srm; echo \"date $(date +%s) $(date +%z)\"; cat /etc/os-release 2>/dev/null | head -n 12"),
    Collector("uptime", "uptime and load",
              "cat /proc/uptime; cat /proc/loadavg; uptime"),
    Collector("cpu", "processors",
              "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; grep -m1 'model name' /proc/cpuinfo"),
    Collector("memory", "memory and swap", "head -n 20 /proc/meminfo"),
    Collector("disks", "disk space", "df -P -k 2>/dev/null"),
    Collector("inodes", "inodes", "df -P -i 2>/dev/null"),
    Collector("mounts", "mounted filesystems", "cat /proc/mounts"),
    Collector("failed_units", "failed and restarting services",
              f"if {SYSTEMD} >/dev/null; then "
              "systemctl --failed --no-legend --plain --no-pager; "
              "echo '-- restarting'; systemctl list-units --state=activating,auto-restart --no-legend --plain "
              "--no-pager; "
              "echo '-- enabled'; systemctl list-unit-files --state=enabled --type=service --no-legend "
              "--no-pager | head -n 200; "
              "else rc-status --crashed 2>/dev/null; fi",
              applies=f"{{ {SYSTEMD}; }} || command -v rc-status"),
    Collector("log_errors", "error lines in the logs",
              f"if {SYSTEMD} >/dev/null && command -v journalctl >/dev/null; then "
              "echo '==> journal <=='; journalctl -p err -q --no-pager -o short-iso --since -{minutes}min "
              "2>/dev/null | tail -n 400; fi; "
              "for f in /var/log/syslog /var/log/messages {log_files}; do "
              "[ -r \"$f\" ] && [ ! -d \"$f\" ] || continue; echo \"==> $f <==\"; "
              f"tail -n 5000 \"$f\" | grep -aiE '{LOG_PATTERN}' | tail -n 400; done",
              timeout=8.0),
    Collector("oom", "processes killed for lack of memory",
              "{ journalctl -k -q --no-pager -o short-iso --since -{minutes}min 2>/dev/null; "
              "tail -n 3000 /var/log/kern.log 2>/dev/null; } "
              "| grep -aiE 'out of memory|oom-kill|killed process' | tail -n 50"),
    Collector("top_processes", "busiest processes",
              "ps -eo pid,user,pcpu,pmem,rss,etime,comm --sort=-pcpu 2>/dev/null | head -n 12 || ps | head -n 15; "
              "echo '-- by memory'; ps -eo pid,user,pcpu,pmem,rss,comm --sort=-rss 2>/dev/null | head -n 12"),
    Collector("listening", "listening sockets",
              "ss -Hltnu 2>/dev/null || netstat -ltnu 2>/dev/null",
              applies="command -v ss || command -v netstat"),
    Collector("reboots", "recent reboots",
              "who -b 2>/dev/null; last -x -n 8 reboot shutdown 2>/dev/null | head -n 10"),
    Collector("time_sync", "clock synchronisation",
              "timedatectl show -p NTPSynchronized -p NTP 2>/dev/null; "
              "chronyc tracking 2>/dev/null | head -n 6; ntpq -pn 2>/dev/null | head -n 8",
              applies="command -v timedatectl || command -v chronyc || command -v ntpq"),
    Collector("updates", "pending updates and reboot required",
              "[ -e /var/run/reboot-required ] && { echo 'reboot-required'; "
              "cat /var/run/reboot-required.pkgs 2>/dev/null | head -n 20; }; "
              "if [ -r /var/lib/update-notifier/updates-available ]; then "
              "cat /var/lib/update-notifier/updates-available; "
              "elif command -v apt-get >/dev/null; then "
              "out=$(timeout 1.5 nice -n 10 apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null); "
              "if [ $? -eq 124 ]; then echo 'apt-upgradable unknown'; else "
              "printf 'apt-upgradable %s\\n' \"$(printf '%s\\n' \"$out\" | grep -c '^Inst')\"; fi; "
              "elif command -v dnf >/dev/null; then printf 'dnf-upgradable %s\\n' \"$(dnf -q -C check-update "
              "2>/dev/null | grep -c '\\.')\"; needs-restarting -r >/dev/null 2>&1 || "
              "{ [ $? -eq 1 ] && echo 'reboot-required'; }; "
              "elif command -v apk >/dev/null; then printf 'apk-upgradable %s\\n' \"$(apk version -l '<' "
              "2>/dev/null | grep -c '<')\"; fi",
              applies="command -v timeout", timeout=5.0),
    Collector("tls_certs", "certificates of listening services",
              "for p in $( (ss -Hltn 2>/dev/null || netstat -ltn 2>/dev/null) | awk '{print $4}' "
              "| sed 's/.*[:.]//' | sort -un | grep -vx 22 | head -n 128); do "
              "( c=$(echo | timeout {tls_probe} openssl s_client -connect 127.0.0.1:$p -servername localhost 2>/dev/null "
              "| openssl x509 -noout -enddate -subject 2>/dev/null | tr '\\n' ' '); "
              "[ -n \"$c\" ] && echo \"port $p $c\" ) & done; wait",
              applies="command -v openssl && command -v timeout", timeout=5.0),
    Collector("nginx", "nginx configuration and errors",
              "nginx -t 2>&1; echo '-- error log'; tail -n 40 /var/log/nginx/error.log 2>/dev/null",
              applies="command -v nginx"),
    Collector("apache", "apache configuration and errors",
              "(apache2ctl configtest || apachectl configtest || httpd -t) 2>&1; echo '-- error log'; "
              "tail -n 40 /var/log/apache2/error.log /var/log/httpd/error_log 2>/dev/null",
              applies="command -v apache2ctl || command -v apachectl || command -v httpd"),
    Collector("docker", "containers",
              "docker ps -a --format '{{.Names}}\\t{{.Status}}\\t{{.Image}}' 2>&1 | head -n 60",
              applies="command -v docker"),
    Collector("postgresql", "PostgreSQL reachability", "pg_isready 2>&1", applies="command -v pg_isready"),
    Collector("mysql", "MySQL reachability", "mysqladmin ping 2>&1", applies="command -v mysqladmin"),
)

BY_ID = {c.id: c for c in COLLECTORS}
# One TLS handshake probe (`tls_probe_timeout`): 2 s finds a certificate on a loaded 2-core box
# (1 s missed one); a slow link or a heavily loaded server may need more.
TLS_PROBE_S = 2.0
MARK = "@@vpsagent"  # control lines: `ID|@@vpsagent rc=N` and `ID|@@vpsagent skipped`


def _job(c: Collector, minutes: int, log_files: Sequence[str], timeout: float | None, tls_probe: float) -> str:
    script = c.script.replace("{minutes}", str(max(1, minutes))).replace(
        "{log_files}", " ".join(shlex.quote(f) for f in log_files)).replace("{tls_probe}", f"{tls_probe:g}")
    t = timeout if timeout is not None else own_bound(c, tls_probe)
    run = (f"if command -v timeout >/dev/null 2>&1; then timeout -k 1 {t:g} sh -c {shlex.quote(script)}; "
           f"else sh -c {shlex.quote(script)}; fi")
    tag = shlex.quote(f"{c.id}|")
    # The exit status leaves the bounded pipeline on fd 3 (head would cut it off), into `rc`:
    # the command substitution ends only when head has written everything (to fd 4), so the
    # marker line comes after the output. Written straight into the stream, it raced head
    # under load and landed mid-line ("Mem: 12@@vpsagent rc=0"), losing the exit status.
    # awk writes each prefixed line at once (fflush): sed wrote 4 KiB blocks that split lines,
    # and the collectors running beside it could write into the gap.
    return (f"( if {{ {c.applies}; }} >/dev/null 2>&1; then "
            f"{{ rc=$( {{ {{ {{ {run}; }} 2>&1; echo $? >&3; }} | head -c {c.max_bytes} >&4; }} 3>&1 ); "
            f"echo; echo \"{MARK} rc=$rc\"; }} 4>&1 "
            f"| awk '{{ print \"{c.id}|\" $0; fflush() }}'; "
            f"else echo {tag}'{MARK} skipped'; fi ) &")


def own_bound(c: Collector, tls_probe: float = TLS_PROBE_S) -> float:
    """A collector's time bound; the certificate probes' grows with their own bound."""
    return max(c.timeout, tls_probe + 3) if "{tls_probe}" in c.script else c.timeout


def collection_script(collectors: Sequence[Collector], *, minutes: int, log_files: Sequence[str] = (),
                      timeout: float | None = None, tls_probe: float = TLS_PROBE_S) -> str:
    """One POSIX sh command running every collector in parallel; see `parse_output`."""
    jobs = [_job(c, minutes, log_files, timeout, tls_probe) for c in collectors]
    return "LC_ALL=C; export LC_ALL; " + " ".join(jobs) + " wait"


@dataclass
class Collected:
    """One collector's result on one server."""

    id: str
    output: str = ""
    exit_code: int | None = None  # None: did not finish (the whole collection was cut off)
    skipped: bool = False  # does not apply here
    bytes: int = 0
    truncated: bool = False
    timed_out: bool = False


def parse_output(text: str, collectors: Sequence[Collector]) -> dict[str, Collected]:
    """Split the collection's stdout back into one result per collector."""
    found = {c.id: Collected(c.id) for c in collectors}
    bounds = {c.id: c.max_bytes for c in collectors}
    lines: dict[str, list[str]] = {c.id: [] for c in collectors}
    for raw in text.splitlines():
        cid, sep, rest = raw.partition("|")
        if not sep or cid not in found:
            continue
        if rest.startswith(MARK):
            word = rest[len(MARK):].strip()
            if word == "skipped":
                found[cid].skipped = True
            elif word.startswith("rc="):
                found[cid].exit_code = int(word[3:]) if word[3:].isdigit() else None
            continue
        lines[cid].append(rest)
    for cid, got in found.items():
        body = "\n".join(lines[cid]).rstrip("\n")
        got.output = body
        got.bytes = len(body.encode())
        got.truncated = got.bytes >= bounds[cid] - 1
        got.timed_out = got.exit_code in (124, 137)  # timeout(1): TERM / KILL after the bound
    return found
