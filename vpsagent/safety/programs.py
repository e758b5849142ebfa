"""The program table: what the gate knows about each program, as data.

Read by `table.judge()` (and, for the programs with a `handler`, by the special module
that handler lives in). A program that is not here is `unknown`. Adding a program: give
its default class, its subcommands and the options that write files or run commands;
use a handler only when its operands decide what it does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from vpsagent.outcomes import Risk
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN
from vpsagent.safety.special import (
    accounts,
    archives,
    awk,
    containers,
    disks,
    editors,
    files,
    find,
    git,
    http,
    interpreters,
    misc,
    network,
    packages,
    remote,
    sed,
    services,
    sql,
    wrappers,
)
from vpsagent.safety.table import Handler, Program, Wrap, opts

PROGRAMS: dict[str, Program] = {}


def _add(names: Iterable[str], spec: Program) -> None:
    for n in names:
        PROGRAMS[n] = spec


def _h(fn: object) -> Handler:
    return cast(Handler, fn)


def subs(read: Iterable[str] = (), change: Iterable[str] = (), destroy: Iterable[str] = (),
         unknown: Iterable[str] = (), **nested: Program) -> Mapping[str, Risk | Program]:
    out: dict[str, Risk | Program] = {}
    for names, risk in ((read, RO), (change, CHANGE), (destroy, DES), (unknown, UNKNOWN)):
        for n in names:
            out[n] = risk
    out.update({k.replace("_", "-"): v for k, v in nested.items()})
    return out


def words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------- readers: every option only reads

_add(words("""
ls ll dir vdir df du free uptime w who whoami id groups last lastb lastlog users ps pgrep pstree pidof htop btop atop
vmstat iostat mpstat pidstat lsof netstat uname stat file wc basename dirname realpath readlink which whereis type
locate mlocate plocate echo printf true false test [ [[ seq yes sleep lsblk blkid lscpu lsmem lspci lsusb lsmod lsns
lsipc lslocks lslogins dmidecode nproc arch printenv tty locale getconf dig nslookup host drill ping ping6 traceroute
traceroute6 tracepath mtr whois pwd cd pushd popd dirs unset set shopt local declare typeset readonly let getopts shift
exit return break continue wait jobs read hash unalias umask ulimit history help : getfacl lsattr namei findmnt ldd nm
objdump readelf getcap iotop cal expr bc dc factor numfmt tsort apropos whatis info pinky logname systemd-detect-virt
systemd-cgls systemd-cgtop sensors acpi inxi neofetch lshw hwinfo lvs vgs pvs lvdisplay vgdisplay pvdisplay lvscan
vgscan pvscan sync nstat ifstat iftop nethogs nload bmon vnstat showmount rpcinfo lsb_release zipinfo debsums aa-status
sestatus getenforce ipcs iwconfig iw mountpoint tldr glances dstat ccze lnav multitail goaccess aureport ausearch
identify shellcheck hadolint ssh-keyscan checkrestart varnishstat varnishlog varnishtop named-checkconf named-checkzone
mailq doveconf slabtop top disown fg bg times caller compgen complete mapfile readarray logout
 lsinitramfs lsinitrd pwck grpck ntpstat lsscsi lshw
systemd-escape systemd-path systemd-id128 hostid dnsdomainname domainname ypdomainname nisdomainname mokutil
 tput clear reset
dpkg-architecture lsb-release lscgroup cgget numastat turbostat pmap pwdx prtstat
fgconsole getpcaps ss
"""), Program(RO))
_add(words("""
cat tac head tail nl cut tr paste join comm diff diff3 sdiff cmp column fold fmt expand unexpand rev od
hexdump strings md5sum sha1sum sha224sum sha256sum sha384sum sha512sum b2sum cksum sum base32 base64 grep egrep fgrep
ag ack zgrep zegrep zfgrep zcat bzcat xzcat zstdcat lzcat zless zmore bzgrep xzgrep zdiff zcmp bat batcat colordiff
diffstat jq xmllint yamllint look view lz4cat bzless xzless zstdless
"""), Program(RO, reads_content=True))
PROGRAMS["rg"] = Program(RO, reads_content=True, runs=opts("--pre"), long_with_arg=opts("--pre"))
PROGRAMS["tree"] = Program(RO, with_arg="oLPIH", writes=opts("-o"))
PROGRAMS["ncdu"] = Program(RO, with_arg="oefX", writes=opts("-o"))
PROGRAMS["sort"] = Program(RO, reads_content=True, with_arg="okTtS", long_with_arg=opts(
    "--output", "--key", "--field-separator", "--temporary-directory", "--buffer-size", "--compress-program"),
    writes=opts("-o", "--output"), runs=opts("--compress-program"))
PROGRAMS["uniq"] = Program(RO, reads_content=True, handler=_h(files.output_operand))
PROGRAMS["xxd"] = Program(RO, reads_content=True, handler=_h(files.output_operand))
PROGRAMS["man"] = Program(RO, with_arg="PHMSLm", long_with_arg=opts("--pager", "--html", "--manpath"),
                          runs=opts("-P", "--pager", "-H", "--html"))
PROGRAMS["tcpdump"] = Program(RO, with_arg="iwrcCGWzZsEFMQTyBjJ", long_with_arg=opts("--interface", "--snapshot-length"),
                              writes=opts("-w"), runs=opts("-z"))
PROGRAMS["tshark"] = Program(RO, with_arg="iwrcfYyaob", writes=opts("-w"))
PROGRAMS["sar"] = Program(RO, with_arg="ofPIne", writes=opts("-o"))
PROGRAMS["nmap"] = Program(RO, handler=_h(misc.nmap))
_add(["less", "more", "most"], Program(RO, reads_content=True, handler=_h(misc.less)))
PROGRAMS["ethtool"] = Program(RO, options={o: CHANGE for o in ("-s", "--change", "-K", "--features", "-G",
                                                               "--set-ring", "-A", "--pause", "-C", "--coalesce",
                                                               "-L", "--set-channels", "-E", "-f", "--flash", "-r",
                                                               "--negotiate", "--reset", "-e", "--change-eeprom")})
PROGRAMS["arp"] = Program(RO, options={"-d": CHANGE, "-s": CHANGE, "-f": CHANGE, "--delete": CHANGE, "--set": CHANGE})
PROGRAMS["hwclock"] = Program(RO, options={o: CHANGE for o in ("-w", "--systohc", "-s", "--hctosys", "--set",
                                                               "--adjust", "-a", "--systz")})
PROGRAMS["nvidia-smi"] = Program(RO, options={o: CHANGE for o in ("-r", "--gpu-reset", "-pm", "-pl", "-e", "-c",
                                                                  "-ac", "-rac", "-lgc", "-rgc")})
PROGRAMS["needrestart"] = Program(RO, handler=_h(misc.needrestart))
PROGRAMS["ss"] = Program(RO, options={"-K": CHANGE, "--kill": CHANGE})
PROGRAMS["lsof"] = Program(RO)
PROGRAMS["busctl"] = Program(RO, subcommands=subs(read=words("list status monitor capture tree introspect get-property help"),
                                                  change=words("call set-property emit")), other=UNKNOWN)
PROGRAMS["systemd-analyze"] = Program(RO)
PROGRAMS["patch"] = Program(CHANGE, why="changes files", dry_run=opts("--dry-run", "-C", "--check"),
                            with_arg="pdiorDFBVYzgl", writes=opts("-o", "--output"))
PROGRAMS["getent"] = Program(RO, handler=_h(misc.getent))
PROGRAMS["date"] = Program(RO, handler=_h(misc.date))
PROGRAMS["hostname"] = Program(RO, handler=_h(misc.hostname))
PROGRAMS["sysctl"] = Program(RO, handler=_h(misc.sysctl))
PROGRAMS["dmesg"] = Program(RO, handler=_h(misc.dmesg))
PROGRAMS["journalctl"] = Program(RO, handler=_h(misc.journalctl))
PROGRAMS["openssl"] = Program(RO, handler=_h(misc.openssl))
PROGRAMS["yq"] = Program(RO, reads_content=True, handler=_h(misc.yq))
PROGRAMS["conntrack"] = Program(RO, handler=_h(misc.conntrack))
_add(["nc", "ncat", "netcat"], Program(CHANGE, handler=_h(misc.nc)))
PROGRAMS["socat"] = Program(UNKNOWN, handler=_h(remote.socat), runs_code=True)
PROGRAMS["telnet"] = Program(UNKNOWN, why="opens an interactive connection")
PROGRAMS["chronyc"] = Program(RO, subcommands=subs(
    read=words("tracking sources sourcestats activity ntpdata clients serverstats rtcdata smoothing waitsync "
               "manual-list selectdata authdata -n -c -h help"),
    change=words("makestep burst online offline settime reload reselect dump cyclelogs writertc local refresh "
                 "add delete maxdelay minpoll polltarget shutdown smoothtime trimrtc")), other=UNKNOWN)
PROGRAMS["ntpq"] = Program(RO, with_arg="cd", options={}, runs=frozenset())
PROGRAMS["ntpdate"] = Program(CHANGE, why="sets the clock", dry_run=opts("-q", "-d"))
PROGRAMS["timedatectl"] = Program(RO, subcommands=subs(
    read=words("status show list-timezones timesync-status show-timesync help"),
    change=words("set-time set-timezone set-local-rtc set-ntp ntp-servers revert")))
PROGRAMS["hostnamectl"] = Program(RO, subcommands=subs(read=words("status show help hostname icon-name chassis "
                                                                  "deployment location"),
                                                       change=words("set-hostname set-icon-name set-chassis "
                                                                    "set-deployment set-location")))
PROGRAMS["localectl"] = Program(RO, subcommands=subs(read=words("status list-locales list-keymaps "
                                                                "list-x11-keymap-models list-x11-keymap-layouts help"),
                                                     change=words("set-locale set-keymap set-x11-keymap")))
PROGRAMS["loginctl"] = Program(RO, subcommands=subs(
    read=words("list-sessions list-users list-seats show-session show-user show-seat session-status user-status "
               "seat-status help"),
    change=words("lock-session unlock-session lock-sessions unlock-sessions activate enable-linger "
                 "disable-linger attach flush-devices"),
    destroy=words("terminate-session terminate-user kill-session kill-user terminate-seat")))
PROGRAMS["resolvectl"] = Program(RO, subcommands=subs(
    read=words("status query statistics service openpgp tlsa help log-level monitor show-cache show-server-state"),
    change=words("flush-caches reset-statistics reset-server-features revert dns domain default-route llmnr mdns "
                 "dnssec dnsovertls nta")))
PROGRAMS["networkctl"] = Program(RO, subcommands=subs(read=words("list status lldp label help cat"),
                                                      change=words("reload reconfigure renew forcerenew up edit"),
                                                      destroy=words("down delete")))
PROGRAMS["netplan"] = Program(RO, subcommands=subs(read=words("get info status help --help ip"),
                                                   change=words("apply try generate set rebind")))
PROGRAMS["fail2ban-client"] = Program(RO, subcommands=subs(read=words("status ping version get banned help -V "
                                                                      "--version -h --help echo"),
                                                           change=words("set reload restart unban start stop flushlogs "
                                                                        "add")), other=CHANGE)
PROGRAMS["certbot"] = Program(CHANGE, why="changes certificates", subcommands=subs(
    read=words("certificates plugins show_account"), change=words("renew certonly run install enhance register "
                                                                    "update_account unregister reconfigure"),
    destroy=words("delete revoke")), dry_run=opts("--dry-run"))
PROGRAMS["logrotate"] = Program(CHANGE, why="rotates logs", dry_run=opts("-d", "--debug"), with_arg="sl",
                                long_with_arg=opts("--state", "--log"))
PROGRAMS["pm2"] = Program(RO, subcommands=subs(
    read=words("list ls l status jlist prettylist show info describe logs monit env --version -v report ping"),
    change=words("start restart reload stop save resurrect startup update reset scale flush install"),
    destroy=words("delete del kill unstartup")), other=UNKNOWN)
PROGRAMS["supervisorctl"] = Program(RO, subcommands=subs(
    read=words("status avail tail pid version help maintail fg"),
    change=words("start stop restart reread update reload add remove signal clear")), other=UNKNOWN)

# ---------------------------------------------------------------- simple changes

_add(words("mkdir touch mktemp mkfifo mknod split csplit updatedb ldconfig depmod update-grub update-initramfs "
           "locale-gen systemd-tmpfiles a2enmod a2dismod a2ensite a2dissite "
           "update-alternatives update-ca-certificates newaliases postmap sensors-detect "
           "mandb install-info fc-cache dracut grub-mkconfig grub2-mkconfig restorecon chcon "
           "setsebool semanage pg_ctlcluster pg_createcluster pg_upgradecluster pg_ctl"),
     Program(CHANGE, why="changes the server"))
_add(words("useradd adduser groupadd addgroup newusers chfn pwconv grpconv"), Program(CHANGE, why="changes accounts"))
_add(["vipw", "vigr"], Program(UNKNOWN, why="opens an interactive editor on the account files"))
PROGRAMS["gpasswd"] = Program(CHANGE, handler=_h(accounts.gpasswd))
PROGRAMS["chpasswd"] = Program(CHANGE, handler=_h(accounts.chpasswd))
PROGRAMS["add-apt-repository"] = Program(CHANGE, why="adds a package repository")
PROGRAMS["apt-key"] = Program(CHANGE, subcommands=subs(read=words("list finger fingerprint export exportall"),
                                                       change=words("add adv update net-update del")))
PROGRAMS["apt-mark"] = Program(CHANGE, subcommands=subs(read=words("showhold showauto showmanual showinstall "
                                                                   "showremove showpurge"),
                                                        change=words("hold unhold auto manual minimize-manual")))
PROGRAMS["dpkg-reconfigure"] = Program(CHANGE, why="reconfigures a package")
PROGRAMS["mysqladmin"] = Program(CHANGE, why="changes the database server", subcommands=subs(
    read=words("status ping processlist variables version extended-status proc"),
    change=words("flush-hosts flush-logs flush-privileges flush-status flush-tables flush-threads refresh reload "
                 "kill password create start-replica stop-replica start-slave stop-slave shutdown"),
    destroy=words("drop")), with_arg="uhPSOpc", long_with_arg=opts("--user", "--host", "--port", "--socket"))
PROGRAMS["mariadb-admin"] = PROGRAMS["mysqladmin"]
_add(["dropdb", "dropuser", "pg_dropcluster"], Program(DES, why="deletes a database, role or cluster"))
_add(["pg_lsclusters", "pg_isready", "pg_controldata", "pg_config"], Program(RO))
_add(["createdb", "createuser", "pg_restore", "mysqlimport", "mongoimport", "mongorestore"], Program(CHANGE, why="changes a database"))
PROGRAMS["pg_dump"] = Program(RO, with_arg="fdhpUnNtTFZjES", long_with_arg=opts("--file", "--dbname", "--host", "--port",
                                                                               "--username", "--format", "--schema",
                                                                               "--table"), writes=opts("-f", "--file"))
PROGRAMS["pg_dumpall"] = PROGRAMS["pg_dump"]
PROGRAMS["mysqldump"] = Program(RO, with_arg="uhPSr", long_with_arg=opts("--user", "--host", "--port", "--socket",
                                                                       "--result-file"), writes=opts("-r", "--result-file"))
PROGRAMS["mongodump"] = Program(RO, with_arg="o", long_with_arg=opts("--out", "--archive"), writes=opts("-o", "--out"))

# ---------------------------------------------------------------- special modules

PROGRAMS["rm"] = Program(DES, handler=_h(files.rm))
_add(["unlink"], Program(CHANGE, handler=_h(files.unlink)))
PROGRAMS["rmdir"] = Program(CHANGE, handler=_h(files.rmdir))
_add(["shred", "wipe", "srm", "blkdiscard", "scrub"], Program(DES, handler=_h(files.shred)))
PROGRAMS["wipefs"] = Program(DES, handler=_h(files.wipefs))
PROGRAMS["dd"] = Program(CHANGE, handler=_h(files.dd))
PROGRAMS["truncate"] = Program(CHANGE, handler=_h(files.truncate))
PROGRAMS["fallocate"] = Program(CHANGE, handler=_h(files.fallocate))
_add(["mv"], Program(CHANGE, handler=_h(files.mv)))
_add(["cp", "install"], Program(CHANGE, handler=_h(files.cp)))
PROGRAMS["ln"] = Program(CHANGE, handler=_h(files.ln))
_add(["chmod", "chown", "chgrp", "setfacl", "chattr"], Program(CHANGE, handler=_h(files.chmod)))
PROGRAMS["tee"] = Program(RO, handler=_h(files.tee))
PROGRAMS["find"] = Program(RO, handler=_h(find.find), runs_code=True)
_add(["fd", "fdfind"], Program(RO, handler=_h(find.fd), runs_code=True))
_add(["sed", "gsed"], Program(RO, reads_content=True, handler=_h(sed.sed), runs_code=True))
_add(["awk", "gawk", "mawk", "nawk", "busybox-awk"], Program(RO, reads_content=True, handler=_h(awk.awk), runs_code=True))
_add(["vim", "vi", "nvim", "ex", "view", "vimdiff", "rvim"], Program(CHANGE, handler=_h(editors.vim), runs_code=True))
_add(["ed", "red"], Program(CHANGE, handler=_h(editors.ed), runs_code=True))
_add(["nano", "pico", "emacs", "mcedit", "joe", "micro", "jed"], Program(CHANGE, handler=_h(editors.simple_editor)))
PROGRAMS["curl"] = Program(RO, handler=_h(http.curl))
PROGRAMS["wget"] = Program(CHANGE, handler=_h(http.wget))
_add(["http", "https", "xh", "xhs"], Program(RO, handler=_h(http.httpie)))
PROGRAMS["git"] = Program(RO, handler=_h(git.git), runs_code=True)
PROGRAMS["psql"] = Program(UNKNOWN, handler=_h(sql.psql), runs_code=True)
_add(["mysql", "mariadb"], Program(UNKNOWN, handler=_h(sql.mysql), runs_code=True))
_add(["sqlite3", "sqlite"], Program(UNKNOWN, handler=_h(sql.sqlite), runs_code=True))
_add(["clickhouse-client", "clickhouse"], Program(UNKNOWN, handler=_h(sql.clickhouse), runs_code=True))
PROGRAMS["cqlsh"] = Program(UNKNOWN, handler=_h(sql.cql), runs_code=True)
PROGRAMS["influx"] = Program(UNKNOWN, handler=_h(sql.influx), runs_code=True)
_add(["redis-cli", "valkey-cli", "keydb-cli"], Program(UNKNOWN, handler=_h(sql.redis_cli), runs_code=True))
_add(["mongosh", "mongo"], Program(UNKNOWN, handler=_h(sql.mongo), runs_code=True))

# interpreters: inline code is judged, scripts are read when a ScriptSource can give them
_add(["python", "python2", "python3", "pypy", "pypy3"] + [f"python3.{n}" for n in range(6, 15)],
     Program(UNKNOWN, handler=_h(interpreters.python), runs_code=True))
_add(["perl", "perl5", "ruby"], Program(UNKNOWN, handler=_h(interpreters.perl_like), runs_code=True))
_add(["node", "nodejs"], Program(UNKNOWN, handler=_h(interpreters.node), runs_code=True))
_add(["php"] + [f"php{v}" for v in ("5", "7", "8", "7.4", "8.0", "8.1", "8.2", "8.3", "8.4")],
     Program(UNKNOWN, handler=_h(interpreters.php), runs_code=True))
_add(["lua", "lua5.1", "lua5.3", "lua5.4", "luajit", "Rscript", "tclsh", "wish"],
     Program(UNKNOWN, handler=_h(interpreters.simple_interpreter), runs_code=True))
_add(["deno", "bun"], Program(UNKNOWN, handler=_h(interpreters.deno_bun), runs_code=True))
PROGRAMS["expect"] = Program(UNKNOWN, handler=_h(wrappers.expect), runs_code=True)
_add(["java", "dotnet", "mono", "erl", "elixir", "julia", "scala", "kotlin", "groovy", "jshell"],
     Program(UNKNOWN, why="runs a program", version=opts("-version", "--version", "-v")))
PROGRAMS["go"] = Program(UNKNOWN, subcommands=subs(read=words("version env list doc vet help"),
                                                   change=words("build install get mod clean fmt work"),
                                                   unknown=words("run test generate tool")))
PROGRAMS["cargo"] = Program(UNKNOWN, subcommands=subs(read=words("--version version tree metadata search help check "
                                                                 "verify-project locate-project"),
                                                      change=words("build install fetch update clean add remove new "
                                                                   "init fmt doc publish"),
                                                      unknown=words("run test bench")))
_add(["rustc", "gcc", "g++", "cc", "c++", "clang", "clang++", "tsc", "javac"],
     Program(CHANGE, why="compiles files", version=opts("--version", "-v", "-V", "-version")))
PROGRAMS["make"] = Program(UNKNOWN, handler=_h(misc.make), runs_code=True)
_add(["npx", "pnpx", "bunx"], Program(UNKNOWN, why="downloads and runs a package"))
# ansible's --check still runs tasks marked check_mode: no; listing and syntax checks do not run
PROGRAMS["ansible-playbook"] = Program(UNKNOWN, dry_run=opts("--syntax-check", "--list-tasks", "--list-hosts",
                                                             "--list-tags"))
PROGRAMS["ansible"] = Program(UNKNOWN, handler=_h(remote.ansible), runs_code=True)
PROGRAMS["salt"] = Program(UNKNOWN, handler=_h(remote.salt), runs_code=True)
_add(["pssh", "parallel-ssh", "pdsh", "clush"], Program(UNKNOWN, handler=_h(remote.pssh), wraps=Wrap()))
PROGRAMS["gh"] = Program(CHANGE, handler=_h(remote.gh))
PROGRAMS["kubeadm"] = Program(UNKNOWN, subcommands=subs(read=words("version token-list"),
                                                       change=words("init join upgrade certs token kubeconfig"),
                                                       destroy=words("reset"),
                                                       config=Program(RO, subcommands=subs(read=words("view print images")),
                                                                      other=CHANGE)))
_add(["ldapsearch", "ldapwhoami", "ldapcompare", "slapcat"], Program(RO))
_add(["ldapmodify", "ldapadd", "ldappasswd", "ldapmodrdn", "slapadd"], Program(CHANGE, why="changes the directory"))
PROGRAMS["ldapdelete"] = Program(DES, why="deletes directory entries")
PROGRAMS["mc"] = Program(CHANGE, handler=_h(misc.service_tool(frozenset(words("ls cat stat du tree find diff head "
                                                                               "version admin-info ping ready")),
                                                               frozenset(words("rm rb")), "objects")))
PROGRAMS["ansible-inventory"] = Program(RO)
PROGRAMS["ansible-galaxy"] = Program(CHANGE, subcommands=subs(read=words("list info search")), other=CHANGE)
PROGRAMS["terraform"] = Program(UNKNOWN, subcommands=subs(
    read=words("plan show output validate version providers graph"),
    change=words("init import refresh fmt taint untaint get login logout"),
    unknown=words("apply console"),
    destroy=words("destroy"),
    state=Program(UNKNOWN, subcommands=subs(read=words("list show pull"), change=words("mv replace-provider push"),
                                            destroy=words("rm"))),
    workspace=Program(UNKNOWN, subcommands=subs(read=words("list show"), change=words("new select"),
                                                destroy=words("delete")))))
_add(["tofu", "terragrunt"], PROGRAMS["terraform"])

# services, processes, power
PROGRAMS["systemctl"] = Program(why="changes a service", handler=_h(services.systemctl),
    with_arg="tpHMnos", long_with_arg=opts("--type", "--state", "--host", "--machine", "--property", "--lines",
                                           "--signal", "--output", "--root", "--kill-whom", "--job-mode", "--what",
                                           "--timestamp", "--boot-loader-entry", "--kill-value"),
    subcommands=subs(
        read=words("status is-active is-enabled is-failed is-system-running list-units list-unit-files list-timers "
                   "list-sockets list-dependencies list-jobs list-machines list-automounts list-paths show cat help "
                   "get-default show-environment --version -h --help whoami"),
        change=words("start stop restart reload try-restart reload-or-restart try-reload-or-restart condrestart "
                     "force-reload enable disable reenable preset preset-all mask unmask link revert daemon-reload "
                     "daemon-reexec reset-failed set-property edit set-default import-environment set-environment "
                     "unset-environment kill clean freeze thaw add-wants add-requires bind mount-image "
                     "log-level log-target service-log-level service-log-target"),
        destroy=words("poweroff reboot halt kexec emergency rescue isolate suspend hibernate hybrid-sleep "
                      "suspend-then-hibernate soft-reboot default switch-root exit")),
    other=UNKNOWN, default=RO)
PROGRAMS["service"] = Program(CHANGE, handler=_h(services.service))
PROGRAMS["kill"] = Program(CHANGE, handler=_h(services.kill))
_add(["pkill", "skill", "snice"], Program(CHANGE, handler=_h(services.pkill)))
_add(["killall", "killall5"], Program(DES, handler=_h(services.killall)))
PROGRAMS["fuser"] = Program(RO, handler=_h(services.fuser))
_add(["shutdown", "reboot", "halt", "poweroff", "kexec", "rtcwake"], Program(DES, handler=_h(services.power)))
_add(["init", "telinit"], Program(CHANGE, handler=_h(services.init)))

# network and firewall
_add(["iptables", "ip6tables", "iptables-legacy", "iptables-nft", "ip6tables-legacy", "ip6tables-nft", "ebtables",
      "arptables"], Program(CHANGE, handler=_h(network.iptables)))
_add(["iptables-save", "ip6tables-save", "nft-save"], Program(RO, with_arg="fMt", writes=opts("-f", "--file")))
_add(["iptables-restore", "ip6tables-restore"], Program(CHANGE, why="replaces the firewall rules",
                                                        dry_run=opts("-t", "--test")))
PROGRAMS["nft"] = Program(CHANGE, handler=_h(network.nft))
PROGRAMS["ufw"] = Program(CHANGE, handler=_h(network.ufw))
PROGRAMS["firewall-cmd"] = Program(CHANGE, handler=_h(network.firewall_cmd))
PROGRAMS["ip"] = Program(RO, handler=_h(network.ip))
PROGRAMS["ifconfig"] = Program(RO, handler=_h(network.ifconfig))
PROGRAMS["route"] = Program(RO, handler=_h(network.route))
_add(["ifdown", "ifdown-all"], Program(DES, why="takes a network interface down and can cut off remote access"))
PROGRAMS["ifup"] = Program(CHANGE, why="brings an interface up")
PROGRAMS["nmcli"] = Program(RO, handler=_h(network.nmcli))

# packages
_APT_READ = words("list search show policy depends rdepends madison showsrc changelog showpkg stats dump dumpavail "
                  "unmet pkgnames help check moo showhold showmanual showauto info why why-not")
_APT_CHANGE = words("install update upgrade full-upgrade dist-upgrade reinstall build-dep source download clean "
                    "autoclean satisfy mark hold unhold edit-sources remove autoremove purge autopurge")
_add(["apt", "apt-get", "aptitude"], Program(why="changes installed packages", handler=_h(packages.apt),
    subcommands=subs(read=_APT_READ, change=_APT_CHANGE), other=UNKNOWN, default=RO,
    dry_run=opts("-s", "--simulate", "--dry-run", "--just-print", "--no-act", "--recon", "--assume-no"),
    with_arg="oqct", long_with_arg=opts("--option", "--config-file", "--target-release")))
PROGRAMS["apt-cache"] = Program(RO)
PROGRAMS["apt-file"] = Program(RO, subcommands=subs(read=words("search find list show"), change=words("update")))
PROGRAMS["dpkg"] = Program(CHANGE, why="changes installed packages", handler=_h(packages.dpkg),
                           dry_run=opts("--dry-run", "--no-act", "--simulate"),
                           subcommands={})
_add(["dpkg-query", "dpkg-deb"], Program(RO, options={"-b": CHANGE, "--build": CHANGE, "-x": CHANGE,
                                                      "-X": CHANGE, "--extract": CHANGE, "-R": CHANGE,
                                                      "--raw-extract": CHANGE}))
PROGRAMS["rpm"] = Program(CHANGE, why="changes installed packages", handler=_h(packages.rpm), dry_run=opts("--test"))
_DNF_READ = words("list info search repolist check-update provides whatprovides deplist repoquery help repoinfo "
                  "updateinfo check version leaves alias")
_add(["dnf", "yum", "microdnf", "tdnf"], Program(why="changes installed packages", handler=_h(packages.yum), default=RO,
    subcommands=subs(read=_DNF_READ, change=words("install update upgrade downgrade reinstall makecache clean "
                                                  "groupinstall group module distro-sync swap mark config-manager "
                                                  "remove erase autoremove"),
                     history=Program(RO, subcommands=subs(read=words("list info summary userinstalled package-list"),
                                                          change=words("undo redo rollback")), other=UNKNOWN)),
    other=UNKNOWN, dry_run=opts("--assumeno"),
    with_arg="cdeRx", long_with_arg=opts("--config", "--exclude", "--setopt", "--releasever", "--enablerepo",
                                         "--disablerepo", "--repo")))
PROGRAMS["zypper"] = Program(handler=_h(packages.yum), default=RO, subcommands=subs(
    read=words("search se info if list-updates lu repos lr packages pa patches products pd what-provides wp"),
    change=words("install in update up dist-upgrade dup refresh ref addrepo ar patch remove rm")), other=UNKNOWN,
    dry_run=opts("--dry-run", "-D"))
PROGRAMS["apk"] = Program(handler=_h(packages.apk), default=RO, subcommands=subs(
    read=words("info search list policy stats version dot audit"), change=words("add update upgrade fix cache del")),
    other=UNKNOWN, dry_run=opts("-s", "--simulate"))
PROGRAMS["pacman"] = Program(CHANGE, handler=_h(packages.pacman))
PROGRAMS["snap"] = Program(handler=_h(packages.snap), default=RO, subcommands=subs(
    read=words("list info find version services changes connections interfaces warnings get logs known aliases "
               "help tasks"),
    change=words("install refresh revert enable disable set start stop restart connect disconnect alias unalias "
                 "switch save restore remove")), other=UNKNOWN)
PROGRAMS["flatpak"] = Program(handler=_h(packages.flatpak), default=RO, subcommands=subs(
    read=words("list info search remotes history ps remote-ls"),
    change=words("install update uninstall remove remote-add remote-delete override repair")), other=UNKNOWN)
_PIP = Program(why="changes installed packages", default=RO, subcommands=subs(
    read=words("list show freeze check search index debug help inspect hash completion"),
    change=words("install uninstall download wheel cache"), config=Program(RO, subcommands=subs(
        read=words("list get debug"), change=words("set unset edit")))), other=UNKNOWN,
    dry_run=opts("--dry-run"))
_add(["pip", "pip3", "pip2"] + [f"pip3.{n}" for n in range(6, 15)], _PIP)
PROGRAMS["pipx"] = Program(default=RO, subcommands=subs(read=words("list environment"),
                                                                change=words("install uninstall upgrade upgrade-all "
                                                                             "reinstall inject ensurepath"),
                                                                unknown=words("run runpip")), other=UNKNOWN)
_NPM_READ = words("ls list view info show outdated root bin prefix doctor help search explain why query -v --version "
                  "ll la fund audit config get whoami ping version")
_add(["npm", "pnpm", "yarn"], Program(RO, subcommands=subs(
    read=_NPM_READ,
    change=words("install i ci update up uninstall remove rm un add link unlink dedupe prune cache login logout "
                 "publish pack rebuild set-script init create"),
    unknown=words("run run-script start test exec restart stop x dlx")), other=UNKNOWN, dry_run=opts("--dry-run")))
PROGRAMS["gem"] = Program(RO, subcommands=subs(read=words("list search info query specification contents environment "
                                                          "which outdated help dependency"),
                                               change=words("install uninstall update cleanup pristine")),
                          other=UNKNOWN)
PROGRAMS["composer"] = Program(RO, subcommands=subs(
    read=words("show info search depends why why-not outdated licenses validate diagnose about check-platform-reqs "
               "audit config help list"),
    change=words("install update require remove dump-autoload dumpautoload clear-cache self-update create-project"),
    unknown=words("run-script run exec")), other=UNKNOWN, dry_run=opts("--dry-run"))
PROGRAMS["bundle"] = Program(RO, subcommands=subs(read=words("list show outdated check info version config"),
                                                  change=words("install update add remove lock clean"),
                                                  unknown=words("exec")), other=UNKNOWN)

# containers, clusters, virtual machines
_DOCKER_READ = words("ps logs inspect images version info top port diff history events search stats help")
_DOCKER_GROUP = Program(why="changes containers or images", default=RO, subcommands=subs(
    read=words("ls list inspect logs ps top stats port diff history df info events show config images version get "
               "view"),
    change=words("create start stop restart pause unpause kill rm remove rmi pull push build tag run up down rename "
                 "update commit save load import export cp attach wait prune connect disconnect use scale"),
    destroy=()), other=UNKNOWN)
_CONTAINER_GROUP = Program(why="changes containers", default=RO, subcommands=subs(
    read=words("ls list inspect logs ps top stats port diff export"),
    change=words("create start stop restart pause unpause kill rm remove run exec rename update commit cp attach wait"),
    destroy=words("prune")), other=UNKNOWN)
_PRUNE_DESTROYS = Program(default=RO, subcommands=subs(
    read=words("ls list inspect df info events"),
    change=words("create connect disconnect"),
    destroy=words("prune rm remove")), other=CHANGE)
_add(["docker", "podman", "nerdctl"], Program(why="changes containers or images", handler=_h(containers.docker), default=RO, runs_code=True,
    with_arg="Hcl", long_with_arg=opts("--host", "--context", "--config", "--log-level", "--connection"),
    subcommands=subs(
        read=_DOCKER_READ,
        change=words("run create start stop restart pause unpause kill rm rmi pull push build tag rename update "
                     "commit save load import export cp attach wait login logout exec"),
        compose=Program(default=RO, subcommands=subs(
            read=words("ps logs config images top ls version port events"),
            change=words("up down pull restart stop start build create push rm kill pause unpause scale run exec "
                         "cp watch")), other=UNKNOWN, with_arg="fp", dry_run=opts("--dry-run"),
            long_with_arg=opts("--file", "--project-name", "--env-file", "--profile", "--project-directory")),
        container=_CONTAINER_GROUP, image=_DOCKER_GROUP, network=_DOCKER_GROUP, builder=_DOCKER_GROUP,
        context=_DOCKER_GROUP, node=_DOCKER_GROUP, service=_DOCKER_GROUP, stack=_DOCKER_GROUP, secret=_DOCKER_GROUP,
        config=_DOCKER_GROUP, plugin=_DOCKER_GROUP, buildx=_DOCKER_GROUP, manifest=_DOCKER_GROUP, trust=_DOCKER_GROUP,
        machine=_DOCKER_GROUP, pod=_DOCKER_GROUP,
        volume=_PRUNE_DESTROYS,
        system=Program(default=RO, subcommands=subs(read=words("df info events"),
                                                            destroy=words("prune reset")), other=UNKNOWN),
        swarm=Program(default=RO, subcommands=subs(read=words("ca"), change=words("init join leave update "
                                                                                     "unlock")))),
    other=UNKNOWN))
PROGRAMS["docker-compose"] = Program(CHANGE, handler=_h(containers.docker_compose), runs_code=True)
PROGRAMS["kubectl"] = Program(why="changes the cluster", handler=_h(containers.kubectl), default=RO, runs_code=True,
    with_arg="nclosfL", long_with_arg=opts("--namespace", "--context", "--selector", "--output", "--kubeconfig",
                                           "--cluster", "--user", "--server", "--token"),
    subcommands=subs(
        read=words("get describe logs top explain version api-resources api-versions cluster-info events diff auth "
                   "wait completion plugin kustomize options"),
        change=words("apply create replace patch edit set label annotate scale autoscale expose run cp port-forward "
                     "proxy attach debug cordon uncordon drain taint certificate delete"),
        rollout=Program(CHANGE, subcommands=subs(read=words("status history"),
                                                 change=words("restart undo pause resume"))),
        config=Program(RO, subcommands=subs(read=words("view get-contexts current-context get-clusters get-users"),
                                            change=words("use-context use set set-context set-cluster "
                                                         "set-credentials unset rename-context delete-context "
                                                         "delete-cluster delete-user")))),
    other=UNKNOWN)
PROGRAMS["k3s"] = Program(UNKNOWN, subcommands=subs(kubectl=PROGRAMS["kubectl"]))
PROGRAMS["helm"] = Program(RO, runs=opts("--post-renderer"), long_with_arg=opts("--post-renderer"), subcommands=subs(
    read=words("list ls status get history show search version env template lint verify"),
    change=words("install upgrade rollback pull push package dependency plugin registry create test"),
    destroy=words("uninstall delete del un"),
    repo=Program(RO, subcommands=subs(read=words("list ls index"), change=words("add update up remove rm"))),
), other=UNKNOWN, dry_run=opts("--dry-run"))
PROGRAMS["crictl"] = Program(handler=_h(containers.crictl), default=RO, runs_code=True, subcommands=subs(
    read=words("ps images pods inspect inspecti inspectp logs info version stats statsp imagefsinfo"),
    change=words("rm rmi rmp stop stopp start pull create run runp update port-forward")), other=UNKNOWN)
PROGRAMS["ctr"] = Program(UNKNOWN)
PROGRAMS["virsh"] = Program(CHANGE, handler=_h(misc.virsh))
_add(["qm", "pct"], Program(CHANGE, handler=_h(misc.proxmox)))
PROGRAMS["lxc"] = Program(RO, subcommands=subs(
    read=words("list ls info version config-show image-list remote-list storage-list network-list profile-list "
               "operation-list"),
    change=words("start stop restart launch init copy move exec snapshot restore config file image remote "
                 "network profile storage publish"),
    destroy=words("delete rm")), other=UNKNOWN)

# disks and filesystems
_add(["mkfs", "mke2fs", "mkswap", "mkdosfs", "mkntfs"] + [f"mkfs.{t}" for t in
     ("ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "fat", "ntfs", "exfat", "f2fs", "minix", "bfs", "cramfs")],
     Program(DES, handler=_h(disks.mkfs)))
_add(["fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted", "cgdisk"], Program(DES, handler=_h(disks.partition)))
PROGRAMS["partprobe"] = Program(CHANGE, why="rereads partition tables")
_add(["lvremove", "vgremove", "pvremove", "lvreduce", "lvresize", "lvextend", "lvcreate", "vgextend", "vgreduce",
      "pvcreate", "vgcreate", "lvchange", "vgchange", "lvrename", "vgrename", "pvresize", "pvmove", "lvconvert"],
     Program(CHANGE, handler=_h(disks.lvm)))
_add(["fsck", "e2fsck", "xfs_repair", "fsck.ext4", "fsck.ext3", "fsck.xfs", "fsck.vfat", "dosfsck"],
     Program(CHANGE, handler=_h(disks.fsck)))
PROGRAMS["resize2fs"] = Program(CHANGE, why="resizes a filesystem", dry_run=opts("-P"))
PROGRAMS["xfs_growfs"] = Program(CHANGE, why="grows a filesystem", dry_run=opts("-n"))
PROGRAMS["tune2fs"] = Program(CHANGE, why="changes filesystem settings", options={"-l": RO}, dry_run=opts("-l"))
_add(["dumpe2fs", "xfs_info", "", "", ""], Program(RO))
PROGRAMS["badblocks"] = Program(RO, handler=_h(disks.badblocks))
PROGRAMS["umount"] = Program(CHANGE, handler=_h(disks.umount))
PROGRAMS["mount"] = Program(RO, handler=_h(disks.mount))
_add(["swapon", "swapoff"], Program(CHANGE, handler=_h(disks.swap)))
PROGRAMS["hdparm"] = Program(CHANGE, handler=_h(misc.hdparm))
PROGRAMS["smartctl"] = Program(RO, handler=_h(misc.smartctl))
_add(["zfs", "zpool"], Program(CHANGE, handler=_h(misc.zfs)))
PROGRAMS["btrfs"] = Program(CHANGE, handler=_h(misc.btrfs))
PROGRAMS["cryptsetup"] = Program(CHANGE, handler=_h(misc.cryptsetup))
PROGRAMS["mdadm"] = Program(CHANGE, handler=_h(misc.mdadm))
PROGRAMS["efibootmgr"] = Program(RO, options={"-B": DES, "--delete-bootnum": DES, "-c": CHANGE, "--create": CHANGE,
                                              "-o": CHANGE, "--bootorder": CHANGE, "-n": CHANGE, "--bootnext": CHANGE,
                                              "-a": CHANGE, "-A": CHANGE, "-O": DES, "--delete-bootorder": DES})
PROGRAMS["blockdev"] = Program(RO, options={o: CHANGE for o in ("--setro", "--setrw", "--setra", "--setfra",
                                                                "--setbsz", "--flushbufs", "--rereadpt")})
PROGRAMS["losetup"] = Program(RO, options={"-d": CHANGE, "-D": CHANGE, "--detach": CHANGE, "--detach-all": CHANGE,
                                           "-f": CHANGE, "-P": CHANGE, "-c": CHANGE})
PROGRAMS["dmsetup"] = Program(RO, subcommands=subs(read=words("ls info status table deps version targets"),
                                                   change=words("create load resume suspend rename message"),
                                                   destroy=words("remove remove_all wipe_table")), other=UNKNOWN)
PROGRAMS["nvme"] = Program(RO, subcommands=subs(read=words("list id-ctrl id-ns smart-log error-log fw-log list-subsys "
                                                           "show-regs version help"),
                                                destroy=words("format sanitize delete-ns detach-ns"),
                                                change=words("reset subsystem-reset fw-download fw-commit create-ns "
                                                             "attach-ns set-feature")), other=UNKNOWN)

# accounts and cron
PROGRAMS["passwd"] = Program(CHANGE, handler=_h(accounts.passwd))
PROGRAMS["usermod"] = Program(CHANGE, handler=_h(accounts.usermod))
PROGRAMS["chage"] = Program(CHANGE, handler=_h(accounts.chage))
PROGRAMS["chsh"] = Program(CHANGE, handler=_h(accounts.chsh))
PROGRAMS["crontab"] = Program(CHANGE, handler=_h(accounts.crontab), runs_code=True)
_add(["userdel", "deluser", "groupdel", "delgroup"], Program(DES, handler=_h(accounts.userdel)))
PROGRAMS["visudo"] = Program(CHANGE, handler=_h(misc.visudo))
PROGRAMS["faillock"] = Program(RO, options={"--reset": CHANGE})
PROGRAMS["pam-auth-update"] = Program(CHANGE, why="changes authentication")

# web, mail, misc servers
_add(["nginx", "openresty"], Program(CHANGE, handler=_h(misc.nginx)))
_add(["apachectl", "apache2ctl"], Program(CHANGE, handler=_h(misc.apachectl)))
_add(["httpd", "apache2"], Program(UNKNOWN, handler=_h(misc.check_flags(opts("-t", "-v", "-V", "-S", "-M", "-l", "-L"),
                                                                        "starts a web server", UNKNOWN))))
PROGRAMS["sshd"] = Program(CHANGE, handler=_h(misc.sshd))
PROGRAMS["haproxy"] = Program(CHANGE, handler=_h(misc.check_flags(opts("-c", "-v", "-vv", "-V"), "starts a proxy")))
PROGRAMS["named"] = Program(CHANGE, handler=_h(misc.check_flags(opts("-v", "-V"), "starts a DNS server")))
PROGRAMS["postfix"] = Program(CHANGE, subcommands=subs(read=words("check status"),
                                                       change=words("start stop reload flush abort upgrade-configuration "
                                                                    "set-permissions")), other=UNKNOWN)
PROGRAMS["postconf"] = Program(RO, options={"-e": CHANGE, "-X": CHANGE, "-#": CHANGE, "-P": RO})
PROGRAMS["postqueue"] = Program(CHANGE, handler=_h(misc.postqueue))
PROGRAMS["postsuper"] = Program(CHANGE, handler=_h(misc.postsuper))
_add(["exim", "exim4"], Program(CHANGE, handler=_h(misc.exim)))
PROGRAMS["dovecot"] = Program(CHANGE, handler=_h(misc.check_flags(opts("-n", "-a", "--version", "--build-options"),
                                                                  "starts or controls the mail server")))
PROGRAMS["doveadm"] = Program(UNKNOWN, subcommands=subs(read=words("who search fetch mailbox-status quota-get "
                                                                   "log stats user auth-test help"),
                                                        change=words("reload stop kick quota-recalc sync backup "
                                                                     "force-resync move copy import"),
                                                        destroy=words("expunge purge")))
PROGRAMS["ssh-keygen"] = Program(CHANGE, handler=_h(misc.ssh_keygen))
_add(["ssh-copy-id"], Program(CHANGE, why="adds a key to a remote authorized_keys"))
_add(["scp", "sftp"], Program(CHANGE, handler=_h(wrappers.scp), runs_code=True))
PROGRAMS["modprobe"] = Program(CHANGE, handler=_h(misc.modprobe))
_add(["insmod", "rmmod"], Program(CHANGE, why="loads or unloads kernel modules"))
PROGRAMS["aws"] = Program(CHANGE, handler=_h(misc.aws))
_add(["gcloud", "az", "doctl", "hcloud", "linode-cli", "scw", "oci", "exo"], Program(CHANGE, handler=_h(misc.cloud_cli)))

# services with their own delete commands
_SERVICE = misc.service_tool
PROGRAMS["etcdctl"] = Program(CHANGE, handler=_h(_SERVICE(frozenset(words("get watch member endpoint alarm check "
                                                                         "version user role auth lease snapshot")) |
                                                         {"member list", "endpoint health", "endpoint status"},
                                                         frozenset({"del", "rm", "rmdir", "defrag", "compact",
                                                                    "member remove", "snapshot restore"}),
                                                         "keys from etcd")))
PROGRAMS["consul"] = Program(CHANGE, handler=_h(_SERVICE(frozenset({"members", "info", "version", "monitor",
                                                                    "kv get", "kv export", "catalog", "operator",
                                                                    "acl", "validate", "watch"}),
                                                         frozenset({"kv delete", "leave", "force-leave",
                                                                    "snapshot restore", "acl token delete"}),
                                                         "data from consul")))
PROGRAMS["vault"] = Program(CHANGE, handler=_h(_SERVICE(frozenset({"status", "version", "read", "list", "kv get",
                                                                   "kv list", "kv metadata", "policy read",
                                                                   "policy list", "secrets list", "auth list",
                                                                   "token lookup", "print", "path-help"}),
                                                        frozenset({"delete", "kv delete", "kv destroy",
                                                                   "kv metadata delete", "secrets disable",
                                                                   "auth disable", "operator seal",
                                                                   "lease revoke", "token revoke", "policy delete"}),
                                                        "secrets from vault")))
PROGRAMS["rabbitmqctl"] = Program(CHANGE, handler=_h(_SERVICE(
    frozenset(words("status cluster_status list_queues list_exchanges list_bindings list_connections list_channels "
                    "list_consumers list_users list_vhosts list_permissions list_policies environment report "
                    "node_health_check ping version help")),
    frozenset(words("reset force_reset delete_queue purge_queue delete_vhost delete_user forget_cluster_node "
                    "clear_permissions delete_shovel")), "queues, users or data from RabbitMQ")))
PROGRAMS["rabbitmqadmin"] = Program(CHANGE, handler=_h(_SERVICE(frozenset(words("list show help")),
                                                               frozenset({"delete", "purge", "close"}),
                                                               "RabbitMQ objects")))
PROGRAMS["restic"] = Program(CHANGE, handler=_h(_SERVICE(
    frozenset(words("snapshots check ls stats diff cat find version help list key mount cache")),
    frozenset(words("forget prune")) | {"unlock --remove-all", "key remove"}, "backups")))
PROGRAMS["borg"] = Program(CHANGE, handler=_h(_SERVICE(frozenset(words("list info check diff version help "
                                                                       "export-tar config")),
                                                       frozenset(words("delete prune compact recreate")),
                                                       "backups")))
PROGRAMS["duplicity"] = Program(CHANGE, handler=_h(_SERVICE(frozenset(words("collection-status list-current-files "
                                                                            "verify")),
                                                            frozenset(words("remove-older-than remove-all-but-n-full "
                                                                            "remove-all-inc-of-but-n-full cleanup")),
                                                            "backups")))
PROGRAMS["s3cmd"] = Program(CHANGE, handler=_h(_SERVICE(frozenset(words("ls la info du")),
                                                        frozenset(words("rm del rb")), "objects")))
PROGRAMS["rclone"] = Program(CHANGE, handler=_h(_SERVICE(frozenset(words("ls lsd lsl lsf lsjson size about check "
                                                                         "listremotes version config-show md5sum "
                                                                         "sha1sum tree cat")),
                                                         frozenset(words("delete deletefile purge rmdir rmdirs sync "
                                                                         "move dedupe cleanup")), "remote files")))
PROGRAMS["gsutil"] = Program(CHANGE, handler=_h(_SERVICE(frozenset(words("ls du cat stat version help")),
                                                         frozenset(words("rm rb")), "objects")))

# ---------------------------------------------------------------- more tools that only read unless told otherwise

_add(words("modinfo lsinitramfs"), Program(RO))
PROGRAMS["pam_tally2"] = Program(RO, options={"-r": CHANGE, "--reset": CHANGE})
PROGRAMS["faillog"] = Program(RO, options={"-r": CHANGE, "--reset": CHANGE, "-l": CHANGE, "-m": CHANGE})
PROGRAMS["auditctl"] = Program(CHANGE, why="changes audit rules", options={}, dry_run=opts("-l", "-s"))
PROGRAMS["aureport"] = Program(RO)
_add(["unattended-upgrade", "unattended-upgrades"], Program(CHANGE, why="installs updates", dry_run=opts("--dry-run")))
PROGRAMS["promtool"] = Program(RO, subcommands=subs(read=words("check query test debug"),
                                                    change=words("tsdb push")), other=UNKNOWN)
PROGRAMS["varnishadm"] = Program(RO, subcommands=subs(
    read=words("status ping banner backend.list vcl.list param.show storage.list panic.show help"),
    change=words("start stop vcl.load vcl.use vcl.discard param.set backend.set_health panic.clear"),
    destroy=words("ban")), other=UNKNOWN)
PROGRAMS["pvesm"] = Program(RO, subcommands=subs(read=words("status list path scan help"),
                                                 change=words("add set alloc"), destroy=words("free remove")),
                            other=UNKNOWN)
_add(["pvecm", "pveversion", "pvesh-get", "pvenode"], Program(RO))
PROGRAMS["ctr"] = Program(UNKNOWN, with_arg="na", long_with_arg=opts("--namespace", "--address"), subcommands=subs(
    read=words("version info plugins"),
    containers=Program(UNKNOWN, subcommands=subs(read=words("list ls info"), change=words("create label"),
                                                 destroy=words("delete del rm"))),
    images=Program(UNKNOWN, subcommands=subs(read=words("list ls check"), change=words("pull push import tag export"),
                                             destroy=words("delete del rm remove"))),
    tasks=Program(UNKNOWN, subcommands=subs(read=words("list ls ps metrics"), change=words("start kill pause resume"),
                                            destroy=words("delete del rm"), unknown=words("exec"))),
    namespaces=Program(UNKNOWN, subcommands=subs(read=words("list ls"), change=words("create label"),
                                                 destroy=words("remove rm")))))
PROGRAMS["mysqlcheck"] = Program(RO, options={o: CHANGE for o in ("-r", "--repair", "-o", "--optimize", "-a",
                                                                  "--analyze", "--auto-repair")})
PROGRAMS["svn"] = Program(UNKNOWN, subcommands=subs(
    read=words("status st log info diff di cat list ls blame annotate proplist propget help --version"),
    change=words("update up checkout co commit ci add mkdir move mv copy cp switch sw merge resolve cleanup "
                 "propset export import lock unlock relocate upgrade"),
    destroy=words("revert delete del remove rm")), other=UNKNOWN)
PROGRAMS["multipath"] = Program(RO, options={"-F": DES, "-f": DES, "-r": CHANGE, "-w": CHANGE, "-W": CHANGE})
PROGRAMS["iscsiadm"] = Program(RO, options={"--login": CHANGE, "-l": CHANGE, "--logout": DES, "-u": DES,
                                            "-o": CHANGE, "--op": CHANGE})
PROGRAMS["keytool"] = Program(UNKNOWN, handler=_h(misc.keytool))
PROGRAMS["gpg"] = Program(UNKNOWN, dry_run=opts(
    "--list-keys", "-k", "--list-public-keys", "--fingerprint", "--list-sigs", "--check-sigs", "--verify",
    "--list-packets", "--show-keys", "--version"))
PROGRAMS["gpg2"] = PROGRAMS["gpg"]
PROGRAMS["ssh-add"] = Program(CHANGE, why="changes the agent's keys", dry_run=opts("-l", "-L", "-T"),
                              options={"-D": CHANGE, "-d": CHANGE})
PROGRAMS["rndc"] = Program(CHANGE, why="controls the DNS server", subcommands=subs(
    read=words("status recursing tsig-list zonestatus secroots"),
    change=words("reload reconfig flush flushname flushtree freeze thaw notify refresh retransfer sync "
                 "querylog trace notrace dumpdb addzone modzone stop halt"),
    destroy=words("delzone")), other=UNKNOWN)
_add(["growpart", "xfs_growfs"], Program(CHANGE, why="grows a partition or filesystem", dry_run=opts("-N", "--dry-run", "-n")))
PROGRAMS["logger"] = Program(CHANGE, why="writes a line to the system log")
PROGRAMS["setcap"] = Program(CHANGE, why="changes file capabilities", options={"-r": CHANGE})
_add(["renice"], Program(CHANGE, why="changes process priorities"))
_TC: dict[str, Risk | Program] = dict(subs(
    qdisc=Program(RO, subcommands=subs(read=words("show list ls"), change=words("add change replace link del delete")),
                  other=CHANGE),
    filter=Program(RO, subcommands=subs(read=words("show list ls")), other=CHANGE),
    read=words("monitor")))
_TC["class"] = Program(RO, subcommands=subs(read=words("show list ls")), other=CHANGE)
PROGRAMS["tc"] = Program(CHANGE, why="changes traffic control", subcommands=_TC, other=UNKNOWN)
_add(["php-fpm"] + [f"php-fpm{v}" for v in ("7.4", "8.0", "8.1", "8.2", "8.3", "8.4", "7", "8")],
     Program(CHANGE, handler=_h(misc.check_flags(opts("-t", "--test", "-v", "--version", "-i", "--info", "-m",
                                                      "--modules", "-tt"), "starts PHP-FPM"))))

_add(words("finger runlevel stern iptraf-ng fping arping tcptraceroute chkrootkit mysqlshow mytop innotop "
           "mongostat mongotop pg_top"), Program(RO))
_add(["gdb", "bpftrace", "systemtap", "stap", "hping3", "iperf", "iperf3", "speedtest", "k9s"],
     Program(UNKNOWN, why="runs probes or code the gate cannot judge"))
PROGRAMS["hg"] = Program(UNKNOWN, subcommands=subs(
    read=words("status st log diff summary sum identify id heads branches tags paths root annotate blame cat files "
               "manifest showconfig config version help incoming outgoing"),
    change=words("pull update up commit ci add addremove merge push clone tag branch rebase"),
    destroy=words("strip purge revert rm remove forget")), other=UNKNOWN)
PROGRAMS["ipset"] = Program(CHANGE, subcommands=subs(read=words("list save test help version -L -l"),
                                                     change=words("create add del rename swap restore"),
                                                     destroy=words("flush destroy -F -X")), other=UNKNOWN)
PROGRAMS["coredumpctl"] = Program(RO, subcommands=subs(read=words("list info dump"), unknown=words("debug gdb")),
                                  other=UNKNOWN)
PROGRAMS["ipmitool"] = Program(UNKNOWN, handler=_h(misc.ipmitool))
PROGRAMS["systemd-resolve"] = Program(RO, options={"--flush-caches": CHANGE, "--reset-statistics": CHANGE,
                                                   "--set-dns": CHANGE, "--set-domain": CHANGE, "--revert": CHANGE})
PROGRAMS["bridge"] = Program(CHANGE, subcommands=subs(
    link=Program(RO, subcommands=subs(read=words("show list ls")), other=CHANGE),
    fdb=Program(RO, subcommands=subs(read=words("show list ls")), other=CHANGE),
    vlan=Program(RO, subcommands=subs(read=words("show list ls")), other=CHANGE),
    mdb=Program(RO, subcommands=subs(read=words("show list ls")), other=CHANGE),
    read=words("monitor")), other=UNKNOWN)
_add(["mvn", "gradle", "ant", "sbt"], Program(UNKNOWN, why="runs a build the gate has not read",
                                               version=opts("-v", "--version", "-version")))
PROGRAMS["initctl"] = Program(CHANGE, subcommands=subs(read=words("list status show-config version"),
                                                       change=words("start stop restart reload emit")),
                              other=UNKNOWN)
PROGRAMS["chkconfig"] = Program(CHANGE, why="changes services at boot", dry_run=opts("--list"))
PROGRAMS["machinectl"] = Program(CHANGE, subcommands=subs(read=words("list list-images status show image-status "
                                                                     "show-image"),
                                                          change=words("start login shell enable disable reboot "
                                                                       "poweroff terminate kill"),
                                                          destroy=words("remove clean")), other=UNKNOWN)
PROGRAMS["bootctl"] = Program(CHANGE, subcommands=subs(read=words("status list is-installed")), other=CHANGE)
PROGRAMS["clamscan"] = Program(RO, options={"--remove": DES, "--move": CHANGE, "--copy": CHANGE})
PROGRAMS["rkhunter"] = Program(RO, options={"--update": CHANGE, "--propupd": CHANGE})
PROGRAMS["aide"] = Program(RO, options={"--init": CHANGE, "-i": CHANGE, "--update": CHANGE, "-u": CHANGE})
PROGRAMS["lynis"] = Program(RO, subcommands=subs(read=words("audit show update-info")), other=UNKNOWN)
PROGRAMS["caddy"] = Program(UNKNOWN, subcommands=subs(read=words("validate version list-modules environ "
                                                                 "build-info adapt"),
                                                      change=words("reload start stop run fmt trust untrust")))
PROGRAMS["nodetool"] = Program(CHANGE, subcommands=subs(
    read=words("status info ring tpstats cfstats tablestats compactionstats netstats describecluster version "
               "gossipinfo proxyhistograms tablehistograms"),
    change=words("flush repair compact cleanup drain decommission snapshot enablebinary disablebinary"),
    destroy=words("removenode assassinate clearsnapshot truncatehints")), other=UNKNOWN)
_add(["pgbench", "redis-benchmark", "sysbench", "ab", "wrk", "siege"], Program(UNKNOWN, why="generates load",
                                                                                  version=opts("-V", "--version")))

# ---------------------------------------------------------------- archives and copies

PROGRAMS["tar"] = Program(CHANGE, handler=_h(archives.tar), runs_code=True)
PROGRAMS["bsdtar"] = PROGRAMS["tar"]
PROGRAMS["zip"] = Program(CHANGE, handler=_h(archives.zip_), runs_code=True)
PROGRAMS["unzip"] = Program(CHANGE, handler=_h(archives.unzip))
PROGRAMS["rsync"] = Program(CHANGE, handler=_h(archives.rsync), runs_code=True)
_add(["gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "zstd", "unzstd", "lz4", "pigz", "unpigz", "lzma", "unlzma",
      "compress", "uncompress"], Program(CHANGE, handler=_h(archives.gzip)))
_add(["7z", "7za", "7zr"], Program(CHANGE, handler=_h(archives.sevenzip)))
PROGRAMS["cpio"] = Program(CHANGE, why="reads or writes an archive", options={"-t": RO})

# ---------------------------------------------------------------- wrappers

_SIMPLE = Wrap()
_add(["nohup", "unbuffer", "catchsegv", "builtin", "fakeroot", "dbus-run-session", "xvfb-run", "proxychains",
      "proxychains4", "torsocks", "tsocks", "entr", "", "nocache", "eatmydata", "rlwrap", "",
      ""], Program(RO, wraps=Wrap(with_arg="fq")))
PROGRAMS["setsid"] = Program(RO, wraps=Wrap())
PROGRAMS["timeout"] = Program(RO, wraps=Wrap(with_arg="ks", long_with_arg=opts("--kill-after", "--signal"), skip=1))
PROGRAMS["stdbuf"] = Program(RO, wraps=Wrap(with_arg="ioe", long_with_arg=opts("--input", "--output", "--error")))
PROGRAMS["doas"] = Program(RO, wraps=Wrap(with_arg="uC", alone=UNKNOWN, alone_why="opens a root shell"))
PROGRAMS["pkexec"] = Program(RO, wraps=Wrap(long_with_arg=opts("--user"), alone=UNKNOWN, alone_why="opens a root shell"))
PROGRAMS["run0"] = Program(RO, wraps=Wrap(with_arg="uDg", long_with_arg=opts("--user", "--chdir", "--setenv",
                                                                              "--property", "--unit", "--nice"),
                                          alone=UNKNOWN, alone_why="opens a root shell"))
_add(["gosu", "su-exec", "setuidgid", "s6-setuidgid", "faketime"], Program(RO, wraps=Wrap(skip=1)))
PROGRAMS["chpst"] = Program(RO, wraps=Wrap(with_arg="uUbeglLmdofcprn"))
PROGRAMS["strace"] = Program(RO, wraps=Wrap(with_arg="eoOpPsSuUXbEIa", alone_why="attaches to a process",
                                            writes=opts("-o")))
PROGRAMS["ltrace"] = Program(RO, wraps=Wrap(with_arg="eoOpPsSuUXbEIan", alone_why="attaches to a process",
                                            writes=opts("-o")))
PROGRAMS["perf"] = Program(RO, handler=_h(wrappers.perf), wraps=Wrap())
PROGRAMS["nsenter"] = Program(RO, wraps=Wrap(with_arg="tSGw", long_with_arg=opts("--target", "--setuid", "--setgid",
                                                                                 "--wd"),
                                             alone=UNKNOWN, alone_why="opens a shell in another namespace"))
PROGRAMS["unshare"] = Program(RO, wraps=Wrap(with_arg="SGRw", long_with_arg=opts(
    "--setuid", "--setgid", "--root", "--wd", "--propagation", "--setgroups", "--map-user", "--map-group",
    "--map-users", "--map-groups"), alone=UNKNOWN, alone_why="opens a shell in a new namespace"))
PROGRAMS["setpriv"] = Program(RO, wraps=Wrap(long_with_arg=opts(
    "--reuid", "--regid", "--ruid", "--rgid", "--euid", "--egid", "--groups", "--inh-caps", "--ambient-caps",
    "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile")))
PROGRAMS["firejail"] = Program(RO, wraps=Wrap(alone=UNKNOWN, alone_why="opens a sandboxed shell"))
PROGRAMS["numactl"] = Program(RO, wraps=Wrap(with_arg="NmCipPw", long_with_arg=opts(
    "--cpunodebind", "--membind", "--physcpubind", "--interleave", "--preferred", "--localalloc"),
    alone=RO, alone_why="without a command only shows the policy"))
PROGRAMS["systemd-inhibit"] = Program(RO, wraps=Wrap(long_with_arg=opts("--what", "--who", "--why", "--mode"),
                                                     alone=RO, alone_why="--list only lists locks"))
PROGRAMS["daemonize"] = Program(RO, wraps=Wrap(with_arg="aceEgluopv", floor=CHANGE, floor_why="starts a daemon"))
_add(["tsp", "ts", "task-spooler"], Program(RO, wraps=Wrap(with_arg="LDNSw", floor=CHANGE, floor_why="queues a job")))

PROGRAMS["sudo"] = Program(RO, handler=_h(wrappers.sudo), wraps=_SIMPLE)
PROGRAMS["sudoedit"] = Program(CHANGE, handler=_h(wrappers.sudo))
PROGRAMS["env"] = Program(RO, handler=_h(wrappers.env), wraps=_SIMPLE)
PROGRAMS["xargs"] = Program(RO, handler=_h(wrappers.xargs), wraps=_SIMPLE)
_add(["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "yash", "posh", "rbash", "tcsh", "csh"],
     Program(UNKNOWN, handler=_h(wrappers.shell), runs_code=True))
_add(["source", "."], Program(UNKNOWN, handler=_h(wrappers.source), runs_code=True))
PROGRAMS["eval"] = Program(UNKNOWN, handler=_h(wrappers.eval_), runs_code=True)
_add(["su", "runuser"], Program(UNKNOWN, handler=_h(wrappers.su), wraps=_SIMPLE))
_add(["ssh", "autossh", "mosh"], Program(UNKNOWN, handler=_h(wrappers.ssh), wraps=_SIMPLE))
PROGRAMS["watch"] = Program(RO, handler=_h(wrappers.watch), wraps=_SIMPLE)
PROGRAMS["trap"] = Program(RO, handler=_h(wrappers.trap), runs_code=True)
PROGRAMS["alias"] = Program(RO, handler=_h(wrappers.alias), runs_code=True)
_add(["command"], Program(RO, handler=_h(wrappers.command), wraps=_SIMPLE))
PROGRAMS["exec"] = Program(RO, handler=_h(wrappers.exec_), wraps=_SIMPLE)
PROGRAMS["time"] = Program(RO, handler=_h(wrappers.time_), wraps=_SIMPLE)
_add(["busybox", "toybox"], Program(RO, handler=_h(wrappers.busybox), wraps=_SIMPLE))
PROGRAMS["flock"] = Program(RO, handler=_h(wrappers.flock), wraps=_SIMPLE)
PROGRAMS["chroot"] = Program(UNKNOWN, handler=_h(wrappers.chroot), wraps=_SIMPLE)
_add(["at", "batch", "atq", "atrm"], Program(CHANGE, handler=_h(wrappers.at), runs_code=True))
PROGRAMS["script"] = Program(UNKNOWN, handler=_h(wrappers.script_), wraps=_SIMPLE)
PROGRAMS["sg"] = Program(UNKNOWN, handler=_h(wrappers.sg), wraps=_SIMPLE)
PROGRAMS["newgrp"] = Program(UNKNOWN, why="opens a shell with another group")
PROGRAMS["parallel"] = Program(UNKNOWN, handler=_h(wrappers.parallel), wraps=_SIMPLE)
PROGRAMS["tmux"] = Program(UNKNOWN, handler=_h(wrappers.tmux), wraps=_SIMPLE)
PROGRAMS["screen"] = Program(UNKNOWN, handler=_h(wrappers.screen), wraps=_SIMPLE)
PROGRAMS["cpulimit"] = Program(RO, handler=_h(wrappers.cpulimit), wraps=_SIMPLE)
_add(["chrt", "taskset"], Program(RO, handler=_h(wrappers.chrt_taskset), wraps=_SIMPLE))
PROGRAMS["ionice"] = Program(RO, handler=_h(wrappers.ionice), wraps=_SIMPLE)
PROGRAMS["nice"] = Program(RO, handler=_h(wrappers.nice), wraps=_SIMPLE)
PROGRAMS["systemd-run"] = Program(RO, handler=_h(wrappers.systemd_run), wraps=_SIMPLE)
PROGRAMS["start-stop-daemon"] = Program(CHANGE, handler=_h(wrappers.start_stop_daemon), wraps=_SIMPLE)

# Programs that wrap a command or run code, by the issue's list: the table test checks
# that each one is here with a rule that finds the command or the code.
MUST_KNOW = frozenset(words("""
sudo doas env nohup setsid timeout nice ionice chrt taskset stdbuf time command builtin exec xargs sh bash dash zsh
ksh eval su runuser find watch trap alias ssh flock chroot busybox toybox docker podman kubectl strace ltrace
systemd-run systemd-inhibit nsenter unshare setpriv parallel tmux screen script sg cpulimit numactl at batch expect
python python3 perl ruby node php lua awk gawk sed git tar zip rsync psql mysql sqlite3 redis-cli mongosh clickhouse-client
source . crontab vim ex ed make
"""))
