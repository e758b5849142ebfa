"""Small special cases: readers with one option or operand that changes things (date -s,
hostname NAME, sysctl -w, journalctl --vacuum-size, getent shadow…), and tools whose
flags decide between checking and acting (nginx -t, sshd -t, hdparm, smartctl…)."""

from __future__ import annotations

import re

from vpsagent.outcomes import Risk
from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.table import Program, opts, scan


def getent(call: Call, spec: Program) -> Outcome:
    vals = [w.value for w in call.args if not w.value.startswith("-")]
    if vals[:1] in (["shadow"], ["gshadow"]):
        return Finding(CHANGE, f"getent {vals[0]} reads password hashes (they would reach the model)")
    return Finding(RO, "getent only reads")


def date(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "dfrsI", opts("--date", "--file", "--reference", "--set", "--iso-8601", "--rfc-3339"))
    if s.value("-s", "--set") is not None or any(re.fullmatch(r"\d{8,12}(\.\d\d)?", w.value) for w in s.operands):
        return Finding(CHANGE, "date sets the system clock")
    return Finding(RO, "date only reads")


def hostname(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "F", opts("--file"))
    if s.operands or s.has("-F", "--file", "-b", "--boot"):
        return Finding(CHANGE, "hostname sets the host name")
    return Finding(RO, "hostname only reads")


def sysctl(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "p", opts("--load"))
    if s.has("-w", "--write", "-p", "--load", "--system") or any("=" in w.value for w in s.operands):
        return Finding(CHANGE, "sysctl changes kernel settings")
    return Finding(RO, "sysctl only reads")


def dmesg(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "fFlnsS", opts("--facility", "--level", "--console-level", "--buffer-size", "--file",
                                       "--time-format", "--since", "--until"))
    if s.has("-c", "-C", "--clear", "--read-clear", "-n", "--console-level", "-D", "-E", "--console-off", "--console-on"):
        return Finding(CHANGE, "dmesg clears or reconfigures the kernel log")
    return Finding(RO, "dmesg only reads")


_JOURNAL_CHANGES = frozenset({"--vacuum-size", "--vacuum-time", "--vacuum-files", "--rotate", "--flush", "--sync",
                              "--relinquish-var", "--smart-relinquish-var", "--setup-keys", "--update-catalog"})


def journalctl(call: Call, spec: Program) -> Outcome:
    for w in call.args:
        name = w.value.split("=", 1)[0]
        if name in _JOURNAL_CHANGES:
            return Finding(CHANGE, f"journalctl {name} changes the journal (old entries are deleted)")
    return Finding(RO, "journalctl only reads logs")


_OPENSSL_READ = frozenset({"x509", "s_client", "version", "verify", "crl", "asn1parse", "ciphers", "list", "req", "rsa",
                           "ec", "pkey", "dgst", "sha256", "sha1", "md5", "speed", "errstr", "pkcs7", "pkcs12", "sess_id",
                           "ocsp", "storeutl", "base64", "enc", "rand", "prime", "s_time", "help", "crl2pkcs7", "pkeyutl",
                           "dhparam", "ecparam", "info", "-help", "--help", "-version", "nseq", "spkac", "smime", "cms"})


def openssl(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if not vals:
        return Finding(UNKNOWN, "openssl opens an interactive prompt")
    sub = vals[0]
    writes = [call.args[i + 1] for i, v in enumerate(vals[:-1]) if v in ("-out", "-keyout")]
    generates = any(v in ("-new", "-newkey", "-signkey", "-x509") for v in vals) and sub == "req"
    if sub in ("genrsa", "genpkey", "gendsa", "ca", "srp", "passwd") or generates or writes:
        out = Finding(CHANGE, f"openssl {sub} writes keys or files")
        for w in writes:
            out = out.worst(call.write(w, f"openssl {sub} -out"))
        return out
    if sub in _OPENSSL_READ:
        if sub in ("rsa", "pkey", "ec", "pkcs12") and not any(v in ("-pubout", "-noout", "-check", "-pubin") for v in vals):
            return Finding(CHANGE, f"openssl {sub} prints a private key (it would reach the model)")
        return Finding(RO, f"openssl {sub} only reads")
    return Finding(UNKNOWN, f"openssl {sub} is not a subcommand the gate knows")


def nginx(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "scpeg")
    if s.value("-s") is not None:
        sig = s.value("-s").value  # type: ignore[union-attr]
        return Finding(CHANGE, f"{call.prog} -s {sig} signals the running server")
    if s.has("-t", "-T", "-v", "-V", "-h", "-?"):
        return Finding(RO, f"{call.prog} -t only tests the configuration")
    if s.value("-g") is not None or s.value("-c") is not None:
        return Finding(CHANGE, f"{call.prog} starts a server with another configuration")
    return Finding(CHANGE, f"{call.prog} starts the server")


def apachectl(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if vals and vals[0] in ("configtest", "-t", "-S", "-M", "-v", "-V", "status", "fullstatus", "-l", "-L", "-D", "-h",
                            "-t -D", "-T"):
        return Finding(RO, f"{call.prog} {vals[0]} only reads")
    if vals and vals[0] in ("stop", "graceful-stop", "-k") and "stop" in " ".join(vals):
        return Finding(CHANGE, f"{call.prog} stops the web server")
    return Finding(CHANGE, f"{call.prog} {' '.join(vals)} changes the web server".strip())


def check_flags(read: frozenset[str], what: str, otherwise: Risk = CHANGE) -> object:
    """A server binary: with one of `read` flags it only checks its configuration."""

    def handler(call: Call, spec: Program) -> Outcome:
        flags = {w.value for w in call.args if w.value.startswith("-")}
        if flags & read:
            return Finding(RO, f"{call.prog} {sorted(flags & read)[0]} only checks or prints")
        return Finding(otherwise, f"{call.prog} {what}")

    return handler


def keytool(call: Call, spec: Program) -> Outcome:
    cmd = next((w.value for w in call.args if w.value.startswith("-")), "")
    if cmd in ("-list", "-printcert", "-printcertreq", "-printcrl", "-help", "--help"):
        return Finding(RO, f"keytool {cmd} only reads")
    if cmd == "-delete":
        return Finding(DES, "keytool -delete removes a key from the keystore")
    return Finding(CHANGE, f"keytool {cmd} changes a keystore")


def hdparm(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if any(v.startswith(("--security-erase", "--trim-sector", "--write-sector", "--fwdownload", "--make-bad-sector",
                         "--dco-restore", "--security-set-pass")) for v in vals):
        return Finding(DES, "hdparm security-erase/write destroys data")
    if all(v in ("-I", "-i", "-t", "-T", "-g", "-C", "-tT", "-H", "-r", "-W") or v.startswith("/dev/") for v in vals):
        return Finding(RO, "hdparm -I only reads")
    return Finding(CHANGE, "hdparm changes drive settings")


def smartctl(call: Call, spec: Program) -> Outcome:
    if any(w.value.startswith(("-t", "--test", "-s", "--smart", "-o", "--offlineauto", "-S", "--saveauto", "-X", "--abort"))
           for w in call.args):
        return Finding(CHANGE, "smartctl -t/-s starts a self test or changes settings")
    return Finding(RO, "smartctl only reads")


def ssh_keygen(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "fEFtbCNRrwZaDIJjKmnOPSVWz", opts())
    if s.has("-R"):
        return Finding(CHANGE, "ssh-keygen -R removes a key from known_hosts")
    if s.has("-l", "-L", "-y", "-F", "-H", "-B", "-Q", "-e", "-i") and not s.has("-H") or s.has("-l", "-F"):
        return Finding(RO, "ssh-keygen -l/-y/-F only reads")
    target = s.value("-f")
    if target is not None:
        return Finding(CHANGE, "ssh-keygen writes a key").worst(call.write(target, "ssh-keygen -f"))
    return Finding(CHANGE, "ssh-keygen writes keys or known_hosts")


def visudo(call: Call, spec: Program) -> Outcome:
    if any(w.value in ("-c", "--check") for w in call.args):
        return Finding(RO, "visudo -c only checks")
    return Finding(UNKNOWN, "visudo opens an interactive editor on sudoers")


def postqueue(call: Call, spec: Program) -> Outcome:
    if any(w.value in ("-p", "-j") for w in call.args):
        return Finding(RO, "postqueue -p only lists the queue")
    return Finding(CHANGE, "postqueue -f/-i flushes the mail queue")


def postsuper(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if any(v in ("-d", "-D") for v in vals) and "ALL" in vals:
        return Finding(DES, "postsuper -d ALL deletes every queued message")
    if any(v in ("-d",) for v in vals):
        return Finding(DES, "postsuper -d deletes queued mail")
    return Finding(CHANGE, "postsuper changes the mail queue")


def exim(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if vals and vals[0] in ("-bp", "-bpc", "-bV", "-bP", "-bt", "-bpr", "-bpu"):
        return Finding(RO, "exim -bp only lists")
    if any(v in ("-Mrm", "-Mrm") for v in vals):
        return Finding(DES, "exim -Mrm deletes queued messages")
    return Finding(CHANGE, "exim changes the mail system")


def nc(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "epscIiOPqTVwWxX", opts())
    if s.value("-e", "-c") is not None:
        return Finding(DES, f"{call.prog} -e/-c serves a program to the network (a backdoor)")
    if any(re.fullmatch(r"-\w*z\w*", w.value) for w in call.args):
        return Finding(RO, f"{call.prog} -z only probes ports")
    if any(re.fullmatch(r"-\w*l\w*", w.value) for w in call.args):
        return Finding(CHANGE, f"{call.prog} -l listens on a port")
    return Finding(CHANGE, f"{call.prog} sends data to a network service")


def conntrack(call: Call, spec: Program) -> Outcome:
    if any(w.value in ("-D", "--delete", "-F", "--flush", "-I", "-U", "--create", "--update") for w in call.args):
        return Finding(CHANGE, "conntrack -D/-F deletes connection tracking entries")
    return Finding(RO, "conntrack listing only reads")


def yq(call: Call, spec: Program) -> Outcome:
    if any(re.fullmatch(r"-\w*i\w*|--inplace", w.value) for w in call.args):
        return Finding(CHANGE, "yq -i edits files in place")
    return Finding(RO, "yq only prints")


def sshd(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if any(v in ("-t", "-T", "-V", "-G") for v in vals):
        return Finding(RO, "sshd -t/-T only tests the configuration")
    return Finding(CHANGE, "sshd starts an SSH server")


def less(call: Call, spec: Program) -> Outcome:
    """less/more: `+cmd` runs a less command at start (`+!cmd` a shell); -o/-O writes a log file."""
    out = Finding(RO, f"{call.prog} only reads")
    for i, w in enumerate(call.args):
        if w.value.startswith("+") and "!" in w.value:
            out = out.worst(call.shell(w.value.split("!", 1)[1], f"{call.prog} {w.value[:1]}!"))
        elif w.value in ("-o", "-O", "--log-file", "--LOG-FILE") and i + 1 < len(call.args):
            out = out.worst(call.write(call.args[i + 1], f"{call.prog} -o"))
        elif re.fullmatch(r"-[oO].+", w.value):
            out = out.worst(call.write(w.with_value(w.value[2:]), f"{call.prog} -o"))
    return out


def nmap(call: Call, spec: Program) -> Outcome:
    out = Finding(RO, "nmap only probes")
    for i, w in enumerate(call.args):
        if w.value in ("-oN", "-oX", "-oG", "-oA", "-oS", "-oM") and i + 1 < len(call.args):
            out = out.worst(call.write(call.args[i + 1], f"nmap {w.value}"))
        elif w.value.startswith("--script") or w.value in ("-sC", "-A"):
            out = out.worst(Finding(UNKNOWN, "nmap --script runs NSE scripts"))
    return out


def ipmitool(call: Call, spec: Program) -> Outcome:
    words = [w.value for w in call.args if not w.value.startswith("-")]
    text = " ".join(words)
    if re.search(r"\b(chassis power (off|reset|cycle|soft)|power (off|reset|cycle)|mc reset|raw)\b", text):
        return Finding(DES, f"ipmitool {text[:30]} powers the machine off or resets its controller")
    if re.search(r"\b(sel clear|user set|lan set|chassis bootdev|chassis policy|sol activate)\b", text):
        return Finding(CHANGE, f"ipmitool {text[:30]} changes the controller")
    if re.search(r"\b(sensor|sdr|fru|sel (list|elist|info)|lan print|chassis status|mc info|user list|dcmi|"
                 r"power status|chassis power status)\b", text) or not words:
        return Finding(RO, f"ipmitool {text[:30]} only reads")
    return Finding(UNKNOWN, f"ipmitool {text[:30]} is not an ipmitool command the gate knows")


def needrestart(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "rlc", opts())
    mode = s.value("-r")
    if mode is not None and mode.value != "l" or s.has("-k") and mode is not None and mode.value != "l":
        return Finding(CHANGE, f"needrestart -r {mode.value if mode else ''} restarts services")
    return Finding(RO, "needrestart only lists what needs a restart")


def make(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "CfIjlowW", opts("--directory", "--file", "--makefile", "--include-dir", "--jobs",
                                          "--load-average", "--old-file", "--what-if", "--assume-new", "--eval"))
    if s.has("--version", "-v", "--help", "-h") and not s.operands:
        return Finding(RO, "make --version only prints")
    # even -n runs `+` lines, recursive makes and $(shell …) of a Makefile the gate has not read
    return Finding(UNKNOWN, "make runs the recipes of a Makefile the gate has not read")


def modprobe(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if any(v in ("-n", "--dry-run", "--show-depends", "-c", "--showconfig", "-V", "--version", "--help") for v in vals):
        return Finding(RO, "modprobe -n only shows what it would do")
    if any(v in ("-r", "--remove", "-rf") for v in vals):
        return Finding(CHANGE, "modprobe -r unloads kernel modules")
    return Finding(CHANGE, "modprobe loads kernel modules")


def zfs(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if vals[:1] in (["destroy"], ["rollback"]):
        return Finding(DES, f"{call.prog} {vals[0]} deletes datasets or snapshots")
    if call.prog == "zpool" and vals[:1] in (["destroy"], ["labelclear"]):
        return Finding(DES, f"zpool {vals[0]} destroys a pool")
    if not vals or vals[0] in ("list", "get", "diff", "holds", "status", "iostat", "history", "events", "version", "help"):
        return Finding(RO, f"{call.prog} {vals[0] if vals else ''} only reads".replace("  ", " "))
    if vals[0] in ("-n", "-d") or "-n" in vals and vals[0] in ("create", "send", "destroy"):
        return Finding(RO, f"{call.prog} -n changes nothing")
    return Finding(CHANGE, f"{call.prog} {vals[0]} changes pools or datasets")


def btrfs(call: Call, spec: Program) -> Outcome:
    vals = [v for v in call.values if not v.startswith("-")]
    if len(vals) > 1 and vals[1] in ("delete", "del"):
        return Finding(DES, "btrfs subvolume delete deletes data")
    if len(vals) > 1 and vals[1] in ("show", "list", "df", "usage", "stats", "status", "get", "find-new"):
        return Finding(RO, "btrfs show only reads")
    if vals[:2] in (["check"],) and "--repair" not in call.values:
        return Finding(RO, "btrfs check only reads")
    return Finding(CHANGE, "btrfs changes filesystems")


def cryptsetup(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if any(v in ("erase", "luksErase", "luksFormat", "luksKillSlot", "luksRemoveKey", "reencrypt") for v in vals):
        return Finding(DES, "cryptsetup erase/luksFormat destroys encryption keys or data")
    if vals and vals[0] in ("status", "luksDump", "isLuks", "--version", "luksUUID", "tcryptDump", "--help"):
        return Finding(RO, "cryptsetup status only reads")
    return Finding(CHANGE, "cryptsetup changes encrypted volumes")


def mdadm(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if any(v in ("--zero-superblock", "--create", "-C", "--fail", "-f", "--remove", "-r", "--stop", "-S") for v in vals):
        return Finding(DES, "mdadm --zero-superblock/--create/--stop destroys or stops an array")
    if any(v in ("--detail", "-D", "--examine", "-E", "--query", "-Q", "--version", "-V", "--detail-platform") for v in vals):
        return Finding(RO, "mdadm --detail only reads")
    return Finding(CHANGE, "mdadm changes arrays")


def virsh(call: Call, spec: Program) -> Outcome:
    vals = [v for v in call.values if not v.startswith("-")]
    sub = vals[0] if vals else ""
    if sub in ("destroy", "undefine", "vol-delete", "pool-delete", "vol-wipe", "snapshot-delete", "pool-destroy",
               "net-destroy", "net-undefine"):
        return Finding(DES, f"virsh {sub} powers off or deletes a virtual machine or its storage")
    if not sub or re.fullmatch(r"list|dom\w*info|domstate|dumpxml|net-list|net-info|pool-list|pool-info|vol-list|"
                               r"vol-info|nodeinfo|version|capabilities|hostname|uri|dominfo|domblklist|domiflist|"
                               r"snapshot-list|net-dumpxml|pool-dumpxml|domstats|domblkstat|domifstat|vcpuinfo|"
                               r"help|sysinfo|nodememstats|nodecpustats|freecell", sub):
        return Finding(RO, "virsh query only reads")
    return Finding(CHANGE, f"virsh {sub} changes virtual machines")


def proxmox(call: Call, spec: Program) -> Outcome:
    vals = [v for v in call.values if not v.startswith("-")]
    sub = vals[0] if vals else ""
    if sub in ("destroy", "delsnapshot", "rollback", "unlink"):
        return Finding(DES, f"{call.prog} {sub} deletes a virtual machine, container or its data")
    if sub in ("list", "config", "status", "pending", "listsnapshot", "showcmd", "help", "df", "cloudinit"):
        return Finding(RO, f"{call.prog} {sub} only reads")
    if sub in ("stop",) and "--skiplock" in call.values:
        return Finding(CHANGE, f"{call.prog} stop powers a guest off")
    return Finding(CHANGE, f"{call.prog} {sub} changes guests")


def service_tool(read: frozenset[str], destroy: frozenset[str], what: str) -> object:
    """A service's own CLI (etcdctl, consul, vault, rabbitmqctl, restic, borg…): reading
    subcommands read, deleting ones destroy, anything else known changes it."""

    def handler(call: Call, spec: Program) -> Outcome:
        # the words that are not options (an option's value may be among them: `restic -r /repo forget`)
        words = [w for w in call.values if not w.startswith("-")]
        pairs = {" ".join(words[i:i + 2]) for i in range(min(len(words), 3))} | \
            {" ".join(words[i:i + 3]) for i in range(min(len(words), 3))}
        if any(w in ("--dry-run", "-n", "--dryrun", "--dry") for w in call.values):
            return Finding(RO, f"{call.prog} --dry-run changes nothing")
        if pairs & destroy or set(words[:3]) & destroy:
            return Finding(DES, f"{call.prog} {' '.join(words[:2])} deletes {what}")
        if not words or set(words[:3]) & read or pairs & read:
            return Finding(RO, f"{call.prog} {' '.join(words[:2])} only reads".replace("  ", " "))
        return Finding(CHANGE, f"{call.prog} {' '.join(words[:2])} changes {what}")

    return handler


def aws(call: Call, spec: Program) -> Outcome:
    words = [w.value for w in call.args if not w.value.startswith("-")]
    flags = {w.value for w in call.args if w.value.startswith("-")}
    if words[-1:] == ["help"]:
        return Finding(RO, "aws … help only prints help")
    service, op = (words + ["", ""])[:2]
    if "--dryrun" in flags or "--dry-run" in flags:
        return Finding(RO, f"aws {service} {op} --dryrun changes nothing")
    if service == "s3":
        if op in ("rm", "rb") or op == "sync" and "--delete" in flags or op == "mv":
            return Finding(DES, f"aws s3 {op} deletes objects or buckets")
        if op in ("ls", "presign"):
            return Finding(RO, "aws s3 ls only reads")
        return Finding(CHANGE, f"aws s3 {op} writes objects or files")
    if re.match(r"(delete|terminate|remove|purge|deregister|revoke|disable|detach|stop)", op):
        return Finding(DES if re.match(r"(delete|terminate|purge|remove)", op) else CHANGE, f"aws {service} {op} deletes or stops resources")
    if re.match(r"(describe|list|get|show|head|lookup|search|scan|query|batch-get|estimate|validate|wait|help)", op) or service in ("sts", "help", "configure") and op in ("get-caller-identity", "list", ""):
        return Finding(RO, f"aws {service} {op} only reads")
    return Finding(CHANGE, f"aws {service} {op} changes cloud resources")


def cloud_cli(call: Call, spec: Program) -> Outcome:
    """gcloud, az, doctl, hcloud…: `delete` destroys; list/describe/show read."""
    words = [w.value for w in call.args if not w.value.startswith("-")]
    if any(w in ("delete", "destroy", "remove", "purge", "rm") for w in words):
        return Finding(DES, f"{call.prog} {' '.join(words[:3])} deletes cloud resources")
    if any(w in ("list", "describe", "show", "get", "info", "version", "config", "ls", "status") for w in words[-2:]) or not words:
        return Finding(RO, f"{call.prog} {' '.join(words[:3])} only reads")
    return Finding(CHANGE, f"{call.prog} {' '.join(words[:3])} changes cloud resources")
