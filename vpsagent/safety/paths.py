"""What the gate knows about paths: system trees, critical files, credentials, persistence.

Paths are compared after normalisation (`//etc`, `/./etc`, `/proc/self/root/etc` all name
`/etc`), and brace patterns are expanded, so a spelling cannot dodge a check.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

from vpsagent.safety.parse import expand_braces

SAFE_SINKS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/1", "/dev/fd/2", "-",
                        "/dev/zero", "/dev/full"})
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/usr/bin",
    "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/local", "/usr/share", "/usr/include",
    "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/var/lib", "/var/log", "/var/www",
    "/var/backups", "/var/spool", "/var/mail", "/var/cache", "/etc/ssh", "/etc/systemd",
    "/etc/default", "/etc/init.d", "/var/lib/mysql", "/var/lib/postgresql", "/var/lib/docker",
    "~", "$HOME", "${HOME}",
})
CRITICAL_FILES = frozenset({
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/fstab",
    "/etc/crypttab", "/etc/ld.so.preload", "/etc/pam.conf", "/etc/inittab", "/etc/securetty",
    "/etc/login.defs", "/etc/nsswitch.conf", "/proc/sysrq-trigger", "/dev/mem", "/dev/kmem",
    "/dev/port", "/vmlinuz", "/initrd.img",
})
CRITICAL_PREFIXES = (
    "/boot/", "/etc/sudoers.d/", "/etc/pam.d/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/",
    "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib64/", "/dev/disk/", "/dev/mapper/",
)
_BLOCK_DEVICE = re.compile(
    r"^/dev/(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme\d|mmcblk\d|md\d|dm-\d|loop\d|nbd\d|sr\d|"
    r"disk/|mapper/|root$|(?!(tcp|udp|fd|pts|shm|mqueue|hugepages|net|input|snd|dri|bus|char|block|cpu|usb)/)[a-z][\w-]*/)"
)
_PROC_ROOT = re.compile(r"^/proc/(self|thread-self|\d+)/(root|cwd)(/|$)")
_HOME = re.compile(r"^(~[A-Za-z0-9_.-]*|\$HOME|\$\{HOME\})(?=/|$)")


def norm(p: str) -> str:
    """A path as the kernel would resolve its spelling: `~/x` is /root/x, `//etc` is /etc."""
    if p in ("~", "$HOME", "${HOME}"):
        return p
    m = _HOME.match(p)
    if m:
        user = m.group(1)[1:] if m.group(1).startswith("~") else ""
        p = ("/root" if not user or user == "root" else f"/home/{user}") + p[m.end():]
    if not p.startswith("/"):
        return p
    out = posixpath.normpath("/" + p.lstrip("/"))
    out = _PROC_ROOT.sub("/", out, count=1)
    return posixpath.normpath(out) if out != "/" else out


def is_block_device(path: str) -> bool:
    return bool(_BLOCK_DEVICE.match(norm(path)))


def is_sink(path: str) -> bool:
    return norm(path) in SAFE_SINKS


def is_critical_file(path: str) -> bool:
    """Writing or deleting this can make the machine unbootable or lock everyone out."""
    return any(_critical(p) for p in expand_braces(path))


def _critical(path: str) -> bool:
    p = norm(path)
    if p in CRITICAL_FILES or p.startswith(CRITICAL_PREFIXES) or p == "/boot":
        return True
    if re.search(r"(^|/)\.ssh/authorized_keys2?$", p):
        return True
    if _glob_over(p, CRITICAL_FILES):
        return True
    return is_block_device(p)


def _glob_over(pattern: str, names: frozenset[str]) -> bool:
    """A glob such as `/etc/pass*` that the shell would expand to one of `names`."""
    if not re.search(r"[*?\[]", pattern):
        return False
    return any(fnmatch.fnmatchcase(n, pattern) for n in names)


def glob_base(p: str) -> str:
    """For `/etc/*.conf` the directory the glob walks: `/etc`."""
    m = re.search(r"[*?\[]", p)
    if not m:
        return p
    head = p[: m.start()]
    return (head.rsplit("/", 1)[0] or "/") if "/" in head else "."


# Trees whose ownership or modes the OS does not depend on (`chown -R www-data /var/www` is routine).
APP_DIRS = frozenset({"/srv", "/opt", "/var/www", "/mnt", "/media"})


def is_permission_root(path: str) -> bool:
    return any(norm(p) not in APP_DIRS and _system(p) for p in expand_braces(path))


def is_system_path(path: str) -> bool:
    """A top-level system directory, a home, a critical file, or a glob over one of them."""
    return any(_system(p) for p in expand_braces(path))


def _system(path: str) -> bool:
    p = norm(path)
    if p in SYSTEM_DIRS or is_critical_file(p):
        return True
    if re.fullmatch(r"/home/[^/]+/?|/root/?", p):
        return True
    if re.search(r"[*?\[]", p):
        base = norm(glob_base(p))
        if base in SYSTEM_DIRS or re.fullmatch(r"/home/[^/]+|/root", base):
            return True
    return False


# Scratch space: emptying or deleting files here loses nothing anyone keeps.
SCRATCH = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/")


def is_scratch(path: str) -> bool:
    p = norm(path)
    return p.startswith(SCRATCH) and ".." not in p


# ---------------------------------------------------------------- credentials

# Files whose contents are credentials: reading them is not a change, but what is read
# goes to the model, so it needs approval (redaction cannot know every format).
_CREDENTIAL_FILE = re.compile(
    r"(^|/)(shadow|gshadow|shadow-|gshadow-|\.pgpass|\.netrc|\.my\.cnf|\.git-credentials|"
    r"master\.key|secret\.key|vpsagent\.db(-wal|-shm)?|environ)$"
    r"|/\.ssh/id_[^/]*(?<!\.pub)$|ssh_host_[a-z0-9]+_key$|^/etc/ssl/private/|"
    r"/\.(aws|docker|kube)/(credentials|config\.json|config)$|\.(key|p12|pfx|keystore)$"
)
_CREDENTIAL_PATHS = (
    "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-",
    *(f"/etc/ssh/ssh_host_{t}_key" for t in ("rsa", "ecdsa", "ed25519", "dsa")),
    *(f"{h}/.ssh/id_{t}" for h in ("/root", "~", "$HOME") for t in ("rsa", "ecdsa", "ed25519", "dsa")),
    *(f"{h}/{f}" for h in ("/root", "~", "$HOME")
      for f in (".pgpass", ".netrc", ".my.cnf", ".git-credentials", ".aws/credentials",
                ".docker/config.json", ".kube/config")),
    *(f"{h}/{f}" for h in ("/root", "~", "$HOME")
      for f in (".config/vpsagent/secret.key", ".local/share/vpsagent/vpsagent.db")),
    "/proc/self/environ",
)


def _glob_segment(name: str, pattern: str) -> bool:
    # the shell's rules, not fnmatch's: `*` never matches a leading dot
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def names_credential(word: str) -> bool:
    p = norm(word.strip("'\""))
    if _CREDENTIAL_FILE.search(p):
        return True
    if not re.search(r"[*?\[]", p):
        return False
    pattern = p.split("/")
    for path in _CREDENTIAL_PATHS:
        parts = norm(path).split("/")
        if len(parts) == len(pattern) and all(_glob_segment(n, q) for n, q in zip(parts, pattern, strict=True)):
            return True
    return False


# ---------------------------------------------------------------- persistence

# Files that run later, by themselves: writing them schedules code (cron, units, profiles,
# init scripts). What is written there is judged as code, and the write is at least unknown.
_PERSIST = (
    ("crontab", re.compile(r"^/etc/crontab$|^/etc/cron\.d/[^/]+$|^/etc/anacrontab$")),
    ("user-crontab", re.compile(r"^/var/spool/cron/(crontabs/)?[^/]+$")),
    ("unit", re.compile(r"^/(etc|lib|usr/lib|run)/systemd/(system|user)/.+|^/home/[^/]+/\.config/systemd/.+"
                        r"|^/root/\.config/systemd/.+")),
    ("shell", re.compile(
        r"^/etc/cron\.(hourly|daily|weekly|monthly)/[^/]+$|^/etc/profile$|^/etc/profile\.d/.+|^/etc/bash\.bashrc$"
        r"|^/etc/bashrc$|^/etc/zsh/.+|^/etc/environment$|^/etc/rc\.local$|^/etc/init\.d/.+|^/etc/rc\d?\.d/.+"
        r"|^/etc/init/.+|^/etc/update-motd\.d/.+|^/etc/network/if-[a-z-]+\.d/.+|^/etc/ssh/sshrc$"
        r"|(^|/)\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|kshrc|mkshrc)$"
        r"|(^|/)\.ssh/rc$|(^|/)\.config/fish/.+|(^|/)\.git/hooks/[^/]+$|(^|/)\.config/autostart/.+"
        r"|^/etc/xdg/autostart/.+")),
    ("config-code", re.compile(
        r"^/etc/udev/rules\.d/.+|^/etc/logrotate\.d/.+|^/etc/logrotate\.conf$|^/etc/apt/apt\.conf\.d/.+"
        r"|^/etc/ld\.so\.conf(\.d/.+)?$|^/etc/modprobe\.d/.+|^/etc/sudoers.*|^/etc/systemd/.+"
        r"|^/etc/security/.+|^/etc/pam\.d/.+|^/etc/environment\.d/.+|(^|/)\.pam_environment$"
        r"|^/etc/NetworkManager/dispatcher\.d/.+|^/etc/dhcp/dhclient-(enter|exit)-hooks\.d/.+")),
)


def persistence_kind(path: str) -> str | None:
    """How a file in a persistence path is run: crontab | user-crontab | unit | shell | config-code."""
    p = norm(path)
    for kind, pattern in _PERSIST:
        if pattern.search(p):
            return kind
    return None


# Where data that someone keeps lives: overwriting, emptying or deleting these is a loss.
_DATA = re.compile(
    r"^/var/lib/|^/var/backups/|^/var/mail/|^/var/spool/|/data/|/backups?/"
    r"|\.(db|sqlite3?|sql|dump|bak|backup|tar|tgz|gz|bz2|xz|zst|zip|7z|ibd|frm|myd|wal|rdb|aof|mdb|kdbx|dat)$"
)


def is_data_path(path: str) -> bool:
    return bool(_DATA.search(norm(path)))


# Live database files: overwriting one with a copy loses what it held.
_DATABASE = re.compile(r"^/var/lib/(mysql|postgresql|pgsql|redis|mongodb|influxdb|etcd|elasticsearch|clickhouse|"
                       r"rabbitmq|docker/volumes)/|\.(db|sqlite3?|ibd|frm|myd|rdb|aof|mdb|kdbx|wal)$")


def is_database_file(path: str) -> bool:
    return bool(_DATABASE.search(norm(path)))


# The configuration that decides who can log in: replacing or deleting it can lock everyone out.
_ACCESS = re.compile(r"^/etc/ssh/sshd_config$|^/etc/ssh/sshd_config\.d/.+|^/etc/ssh/ssh_host_\w+_key(\.pub)?$"
                     r"|^/etc/hosts\.deny$")
_LOCKOUT = re.compile(
    r"^\s*(DenyUsers|DenyGroups|AllowUsers|AllowGroups|AuthenticationMethods|ForceCommand|AuthorizedKeysFile|"
    r"ChrootDirectory)\b|^\s*PubkeyAuthentication\s+no\b|^\s*UsePAM\s+no\b.*|^\s*MaxStartups\s+0\b"
    r"|^\s*ListenAddress\s+127\.|^\s*(ALL|sshd)\s*:", re.I | re.M)


def is_access_config(path: str) -> bool:
    return bool(_ACCESS.search(norm(path)))


def lockout_directive(text: str) -> str | None:
    """The sshd_config line in `text` that can lock people out (DenyUsers, PubkeyAuthentication no…)."""
    m = _LOCKOUT.search(text)
    return m.group(0).strip() if m is not None else None


# Standard program directories: `/usr/bin/rm` is rm, not a script of the user's.
_BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin",
                       "/usr/libexec", "/snap/bin"})


def is_bin_path(path: str) -> bool:
    return posixpath.dirname(norm(path)) in _BIN_DIRS
