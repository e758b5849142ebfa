"""Paths spelled to dodge the checks, and compound allow rules that could swallow more.

Found by a security review: `//etc/passwd`, `/proc/self/root/etc`, `/root/.ssh/./id_rsa`
were judged as if they named other files, and an allow rule like "cd /app && git pull *"
let `*` swallow "&& rm -rf /". These strings are data only: they are classified, never run.
"""

from __future__ import annotations

import pytest

from vpsagent.safety import Risk, classify, classify_write
from vpsagent.safety.policy import Decision, Mode, check, parse_policy

DESTRUCTIVE_SPELLINGS = [
    "rm -f //etc/passwd",
    "chmod -R 777 //etc",
    "cp x //etc/sudoers",
    "echo x > //etc/ld.so.preload",
    "dd if=/dev/zero of=//dev/sda",
    "mv x //boot/vmlinuz",
    "rm -f /proc/self/root/etc/passwd",
]

CREDENTIAL_SPELLINGS = [
    "cat /root/.ssh/./id_rsa",
    "cat /root/.ssh//id_rsa",
    "cat /etc//ssl/private/site.pem",
    "cat /root/.kube//config",
    "base64 ~/.config/vpsagent/secret.ke?",
    "cat /proc/self/environ",
    "cat /proc/1/environ",
    "base64 /var/lib/app/vpsagent.db",
]


@pytest.mark.parametrize("command", DESTRUCTIVE_SPELLINGS)
def test_doubled_slashes_and_proc_root_still_name_system_paths(command):
    assert classify(command).risk == Risk.DESTRUCTIVE


@pytest.mark.parametrize("command", CREDENTIAL_SPELLINGS)
def test_odd_spellings_of_credential_files_need_approval(command):
    assert classify(command).risk == Risk.CHANGE


@pytest.mark.parametrize("path", ["//etc/sudoers", "/proc/self/root/etc/sudoers", "/etc/./passwd"])
def test_write_file_to_a_respelled_critical_path_is_destructive(path):
    assert classify_write(path).risk == Risk.DESTRUCTIVE


def test_ordinary_paths_are_unaffected():
    for command in ("ls //", "ls -la /etc", "cat /etc/os-release", "du -sh /root/*", "cat ./notes.txt"):
        assert classify(command).risk == Risk.READ_ONLY, command


def test_compound_allow_rule_cannot_swallow_appended_commands():
    policy = parse_policy('allow: ["cd /srv/app && git pull *"]\n')
    _, ok = check(policy, "cd /srv/app && git pull origin main", server="w", mode=Mode.DEFAULT)
    assert ok.decision == Decision.ALLOW
    for appended in ("cd /srv/app && git pull origin main && rm -rf /srv",
                     "cd /srv/app && git pull origin main; mkfs.ext4 /dev/sdb",
                     "cd /srv/app && git pull $(rm -rf /srv)"):
        cls, verdict = check(policy, appended, server="w", mode=Mode.YES)
        assert cls.risk == Risk.DESTRUCTIVE and verdict.decision == Decision.DENY, appended
