"""The analyzers on outputs as real systems print them (Debian 12, Ubuntu 24.04, Rocky 9,
Alpine 3.20), without a server: the same output always gives the same findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vpsagent.support.analyzers import Thresholds, analyze, compare_peers, line_time
from vpsagent.support.collectors import COLLECTORS, Collected, collection_script, parse_output

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())

DEBIAN_DF = """\
Filesystem     1024-blocks     Used Available Capacity Mounted on
udev               2000000        0   2000000       0% /dev
tmpfs               400000     1200    398800       1% /run
/dev/vda1         40000000 38400000   1600000      96% /
tmpfs              2000000   1900000    100000      95% /tmp
/dev/vdb1        100000000 20000000  80000000      20% /srv/data
"""
UBUNTU_DF_INODES = """\
Filesystem      Inodes   IUsed   IFree IUse% Mounted on
/dev/sda1      6553600 6488064   65536   99% /
/dev/loop0       12000   12000       0  100% /snap/core22/1380
"""
ROCKY_MEMINFO = """\
MemTotal:        3861220 kB
MemFree:           91240 kB
MemAvailable:     115836 kB
SwapTotal:       2097148 kB
SwapFree:          10240 kB
"""
ALPINE_MEMINFO = """\
MemTotal:        1012032 kB
MemFree:          700100 kB
MemAvailable:     812000 kB
"""
FAILED_SYSTEMD = """\
nginx.service      loaded failed failed A high performance web server
-- restarting
app-worker.service loaded activating auto-restart App worker
-- enabled
nginx.service      enabled enabled
postgresql.service enabled enabled
ssh.service        enabled enabled
"""
LISTENING = """\
tcp   LISTEN 0      128          0.0.0.0:22        0.0.0.0:*
tcp   LISTEN 0      244        127.0.0.1:5432      0.0.0.0:*
"""
JOURNAL = "==> journal <==\n" + "\n".join(
    f"2026-12-01T11:{m:02d}:00+0000 web1 app[123]: ERROR upstream timed out" for m in range(0, 60)) + "\n"
SYSLOG_OLD = "==> /var/log/syslog <==\n" + "\n".join(
    f"Nov 28 09:{m:02d}:01 web1 app[9]: error: old trouble" for m in range(0, 60)) + "\n"
OOM = "2026-12-01T11:40:02+0000 web1 kernel: Out of memory: Killed process 4242 (java) total-vm:8123456kB\n"
TIMEDATECTL_BAD = "NTP=yes\nNTPSynchronized=no\n"
TLS = ("port 443 notAfter=Dec  3 10:00:00 2026 GMT subject=CN = www.example.com\n"
       "port 8443 notAfter=Dec  1 10:00:00 2027 GMT subject=CN = api.example.com\n")
MOUNTS_RO = ("/dev/vda1 / ext4 rw,relatime 0 0\n/dev/vdb1 /srv/data ext4 ro,relatime 0 0\n"
             "squashfs /snap/core ro,nodev 0 0\nproc /proc proc rw 0 0\n")
UBUNTU_UPDATES = "reboot-required\n*** System restart required ***\nlinux-image-6.8.0-49-generic\n"
NGINX_BAD = "nginx: [emerg] unknown directive \"lisen\" in /etc/nginx/sites-enabled/app:3\n" \
            "nginx: configuration file /etc/nginx/nginx.conf test failed\n"
DOCKER = "web\tUp 3 hours (healthy)\tnginx:1.27\nworker\tRestarting (1) 5 seconds ago\tapp:2.1\n"


def _out(**outputs: str) -> dict[str, Collected]:
    found = {c.id: Collected(c.id, skipped=True) for c in COLLECTORS}
    found["os"] = Collected("os", f"Linux 6.1.0 x86_64\ndate {EPOCH} +0000", 0)
    for cid, text in outputs.items():
        found[cid] = Collected(cid, text, 0)
    return found


def _ids(findings: list) -> list[str]:  # noqa: ANN001
    return sorted({f.id for f in findings})


def test_a_debian_server_with_a_full_root_and_tmp():
    found = analyze("web1", _out(disks=DEBIAN_DF), Thresholds(), timedelta(hours=2), now=NOW)
    by = {(f.id, f.title) for f in found}
    assert ("disk_full", "disk almost full: / is 96% used") in by
    assert ("tmp_full", "/tmp is 95% full: programs may fail to write temporary files") in by
    assert not any("/srv/data" in t for _i, t in by) and not any("/run" in t for _i, t in by)
    full = next(f for f in found if f.id == "disk_full")
    assert full.severity == "warning" and "/dev/vda1" in full.evidence[-1] and full.collector == "disks"


def test_thresholds_move_the_line():
    found = analyze("web1", _out(disks=DEBIAN_DF), Thresholds().with_settings({"disk_percent": "15"}),
                    timedelta(hours=2), now=NOW)
    assert {f.title for f in found if f.id == "disk_full"} == {"disk almost full: / is 96% used",
                                                               "disk almost full: /srv/data is 20% used"}
    with pytest.raises(Exception, match="unknown support setting"):
        Thresholds().with_settings({"disk_pct": "1"})
    with pytest.raises(Exception, match="expected a number"):
        Thresholds().with_settings({"disk_percent": "lots"})


def test_ubuntu_inodes_ignore_snaps():
    found = analyze("u1", _out(inodes=UBUNTU_DF_INODES), Thresholds(), timedelta(hours=2), now=NOW)
    assert [(f.id, f.severity) for f in found] == [("inodes_full", "critical")]
    assert "/snap" not in found[0].title


def test_rocky_memory_pressure_and_an_oom_kill():
    found = analyze("db1", _out(memory=ROCKY_MEMINFO, oom=OOM), Thresholds(), timedelta(hours=2), now=NOW)
    assert _ids(found) == ["memory_pressure", "oom_kills"]
    oom = next(f for f in found if f.id == "oom_kills")
    assert oom.severity == "critical" and "java" in oom.evidence[0]


def test_alpine_without_systemd_is_quiet():
    found = analyze("a1", _out(memory=ALPINE_MEMINFO, uptime="12.0 3.0\n0.10 0.05 0.01 1/80 300\n", cpu="1\n"),
                    Thresholds(), timedelta(hours=2), now=NOW)
    assert found == []


def test_failed_and_crash_looping_units_and_enabled_but_not_listening():
    found = analyze("web1", _out(failed_units=FAILED_SYSTEMD, listening=LISTENING), Thresholds(),
                    timedelta(hours=2), now=NOW)
    titles = [f.title for f in found]
    assert "services have failed: nginx.service" in titles
    assert "services keep crashing and restarting: app-worker.service" in titles
    assert "nginx is enabled but nothing listens on port 80/443" in titles
    assert not any("postgresql" in t or "ssh" in t for t in titles)  # 5432 and 22 are listening


def test_an_error_burst_inside_the_window_and_old_errors_outside_it():
    found = analyze("web1", _out(log_errors=JOURNAL + SYSLOG_OLD), Thresholds(), timedelta(hours=2), now=NOW)
    bursts = [f for f in found if f.id == "error_burst"]
    assert len(bursts) == 1 and "journal" in bursts[0].title and "60 error lines" in bursts[0].title
    assert "upstream timed out" in bursts[0].evidence[-1]
    quiet = analyze("web1", _out(log_errors=JOURNAL), Thresholds(), timedelta(minutes=10), now=NOW)
    assert [f for f in quiet if f.id == "error_burst"] == []  # only 10 lines in the last 10 minutes


def test_log_line_times_in_each_format():
    local = timedelta(hours=1)  # the server's clock runs at UTC+1
    assert line_time("Dec  1 12:30:00 web1 app: x", NOW, local) == datetime(2026, 12, 1, 11, 30, tzinfo=UTC)
    assert line_time("2026-12-01T11:30:00+0000 web1 x", NOW, local) == datetime(2026, 12, 1, 11, 30, tzinfo=UTC)
    assert line_time("2026/12/01 12:30:00 [error] 12#12: x", NOW, local) == datetime(2026, 12, 1, 11, 30,
                                                                                       tzinfo=UTC)
    assert line_time("Dec 31 23:59:59 web1 x", NOW, timedelta(0)).year == 2025  # syslog has no year
    assert line_time("no time here", NOW, local) is None


def test_clock_certificates_read_only_mounts_reboot_and_services():
    found = analyze("web1", _out(time_sync=TIMEDATECTL_BAD, tls_certs=TLS, mounts=MOUNTS_RO,
                                 updates=UBUNTU_UPDATES, nginx=NGINX_BAD, docker=DOCKER),
                    Thresholds(), timedelta(hours=2), now=NOW)
    titles = {f.id: f.title for f in found}
    assert "clock_unsynced" in titles
    assert titles["cert_expiring"] == "the certificate on port 443 expires in 1 days"  # 8443 has a year
    assert titles["readonly_fs"].startswith("the filesystem on /srv/data is read-only")
    assert titles["reboot_required"] == "a reboot is pending: updated packages need it"
    assert titles["service_broken"] == "nginx's configuration has errors (a reload would fail)"
    assert titles["container_unhealthy"] == "containers are restarting or unhealthy: worker"
    assert [f.severity for f in found][:1] == ["critical"]  # critical first


def test_only_one_server_of_a_fleet_has_it():
    a = analyze("web1", _out(disks=DEBIAN_DF), Thresholds(), timedelta(hours=2), now=NOW)
    b = analyze("web2", _out(disks=DEBIAN_DF.replace("96%", "40%").replace("95%", "10%")), Thresholds(),
                timedelta(hours=2), now=NOW)
    both = a + b
    compare_peers(both, ["web1", "web2"])
    assert {(f.server, f.peers) for f in both if f.id == "disk_full"} == {("web1", "only web1 has this")}


def test_the_collection_script_parses_back_per_collector():
    """One shell command runs every collector; its output splits back into one result each,
    with exit codes, skips and timeouts (run locally with sh, as a server would)."""
    import subprocess

    picked = [c for c in COLLECTORS if c.id in ("os", "memory", "docker")]
    script = collection_script(picked, minutes=60)
    p = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60)
    got = parse_output(p.stdout, picked)
    assert got["os"].exit_code == 0 and "Linux" in got["os"].output
    assert "MemTotal" in got["memory"].output
    import shutil

    assert got["docker"].skipped is (shutil.which("docker") is None)
    slow = parse_output(subprocess.run(["/bin/sh", "-c", collection_script(picked, minutes=60, timeout=0.001)],
                                       capture_output=True, text=True, timeout=60).stdout, picked)
    assert any(c.timed_out for c in slow.values())


def test_tls_probe_timeout_reaches_the_probe_and_the_collectors_bound():
    """`--set tls_probe_timeout=S` bounds each handshake and widens the collector's own bound to fit."""
    (tls,) = [c for c in COLLECTORS if c.id == "tls_certs"]
    assert "timeout 2 openssl" in collection_script([tls], minutes=60)
    script = collection_script([tls], minutes=60, tls_probe=15)
    assert "timeout 15 openssl" in script and "timeout -k 1 18 sh" in script
    assert Thresholds().with_settings({"tls_probe_timeout": "15"}).tls_probe_timeout == 15


def test_the_exit_status_follows_the_bounded_output_even_when_cut_mid_line():
    """The marker line comes after everything head wrote: output cut mid-line by the byte
    bound, a command that fails, many collectors at once (the marker once raced head and
    landed mid-line under load, losing the exit status)."""
    import subprocess

    from vpsagent.support.collectors import Collector

    lines = 'i=0; while [ $i -lt 80 ]; do printf "%0100d\\n" $i; i=$((i+1)); done; exit 3'
    picked = [Collector(f"c{i}", "t", lines, max_bytes=4099) for i in range(12)]
    expected = "".join(f"{i:0100d}\n" for i in range(80))[:4099].rstrip("\n")
    script = collection_script(picked, minutes=1)
    for _ in range(5):
        got = parse_output(subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                                          timeout=60).stdout, picked)
        for c in got.values():
            # 3, or 141 when head's cut reached the command first (SIGPIPE): never lost (None)
            assert c.exit_code in (3, 141), (c.id, c.exit_code, c.output[-40:])
            assert c.output == expected
