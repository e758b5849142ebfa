"""The classifier's public interface: Risk, Classification, Part, classify_write, reads_credentials.

Command strings here are data passed to classify(); nothing is executed.
"""

from __future__ import annotations

import pytest

from vpsagent.safety import Classification, Part, Risk, classify, classify_write
from vpsagent.safety.classify import reads_credentials

RO, MUT, DES = Risk.READ_ONLY, Risk.MUTATING, Risk.DESTRUCTIVE


def test_risk_order_and_spelling() -> None:
    assert RO < MUT < DES
    assert DES > MUT > RO
    assert RO <= RO and DES >= DES
    assert max([MUT, RO, DES, RO]) is DES
    assert [str(r) for r in (RO, MUT, DES)] == ["read-only", "mutating", "destructive"]
    assert Risk("destructive") is DES
    with pytest.raises(TypeError):
        _ = RO < 1  # type: ignore[operator]


def test_classification_fields_for_a_wrapped_command() -> None:
    cmd = "sudo env rm -rf /var/www"
    cls = classify(cmd)
    assert isinstance(cls, Classification)
    assert cls.risk is DES
    assert cls.command == cmd
    assert cls.commands == (("rm", "-rf", "/var/www"),)
    assert cls.programs == ("sudo", "env", "rm")
    (part,) = cls.parts
    assert isinstance(part, Part)
    # argv is what really runs; text is how it was written (policy allow rules see only argv)
    assert part.argv == ("rm", "-rf", "/var/www")
    assert part.text == cmd
    assert part.programs == ("sudo", "env", "rm")
    assert part.risk is DES
    assert "rm -r" in part.reason
    assert cls.summary == part.reason


def test_the_worst_part_wins_and_the_summary_names_only_it() -> None:
    cls = classify("df -h; systemctl restart nginx; rm -rf /srv")
    assert cls.risk is DES
    assert [p.risk for p in cls.parts] == [RO, MUT, DES]
    assert "rm -r" in cls.summary
    assert "systemctl" not in cls.summary
    assert len(cls.reasons) == 3


def test_every_program_in_a_pipeline_is_a_part() -> None:
    cls = classify("journalctl -u nginx --since today | tail -50")
    assert cls.risk is RO
    assert [p.argv[0] for p in cls.parts] == ["journalctl", "tail"]
    assert cls.commands == (("journalctl", "-u", "nginx", "--since", "today"), ("tail", "-50"))


def test_a_redirection_is_its_own_part() -> None:
    cls = classify("echo hi > /tmp/x")
    assert cls.risk is MUT
    assert any("redirection >" in p.reason for p in cls.parts)
    assert classify("echo hi > /dev/null 2>&1").risk is RO


def test_substitution_bodies_are_classified() -> None:
    cls = classify("echo $(systemctl restart nginx)")
    assert cls.risk is MUT
    assert ("systemctl", "restart", "nginx") in cls.commands


@pytest.mark.parametrize(
    ("data", "code"),
    [
        # the same text is harmless as data and dangerous as code
        ("cat <<EOF\nrm -rf /srv\nEOF", "bash <<EOF\nrm -rf /srv\nEOF"),
        ("echo 'rm -rf /srv'", "echo 'rm -rf /srv' | sh"),
        ("grep 'rm -rf' ~/.bash_history", "eval 'rm -rf /srv'"),
        ("for w in rm -rf /srv; do echo $w; done", "for w in a; do rm -rf /srv; done"),
        ("printf '%s\\n' 'DROP TABLE users'", "printf '%s\\n' 'DROP TABLE users' | psql"),
        ("cat <<'EOF'\nshutil.rmtree('/srv')\nEOF", "python3 <<'EOF'\nimport shutil\nshutil.rmtree('/srv')\nEOF"),
    ],
)
def test_data_is_not_code(data: str, code: str) -> None:
    assert classify(data).risk is RO, data
    assert classify(code).risk is DES, code


@pytest.mark.parametrize("command", ["", "   ", "\n\t"])
def test_empty_command_is_read_only(command: str) -> None:
    cls = classify(command)
    assert cls.risk is RO
    assert cls.reasons == ("empty command",)


@pytest.mark.parametrize("command", ["echo 'open", 'echo "open', "echo $(date", "ls )", "{ ls", "echo `x", "ls \\"])
def test_what_cannot_be_parsed_is_destructive(command: str) -> None:
    cls = classify(command)
    assert cls.risk is DES
    assert "cannot parse" in cls.summary


def test_deep_nesting_fails_closed() -> None:
    depth = 12
    command = "echo " + "$(echo " * depth + "x" + ")" * depth
    cls = classify(command)
    assert cls.risk is DES
    assert "deeply" in cls.summary
    shallow = "echo " + "$(echo " * 3 + "x" + ")" * 3
    assert classify(shallow).risk is RO


@pytest.mark.parametrize(
    "command",
    ["\x00", "((((((((", "$(((", "<<", "| |", ";;", "&&&", "${", "a" * 5000, "echo $'\\x'", "case x in", "fi"],
)
def test_garbage_never_raises(command: str) -> None:
    cls = classify(command)
    assert isinstance(cls.risk, Risk)


def test_unknown_program_is_mutating_not_read_only() -> None:
    cls = classify("frobnicate --status")
    assert cls.risk is MUT
    assert "not on the read-only list" in cls.summary


def test_program_name_from_a_variable_is_destructive() -> None:
    cls = classify("$TOOL --version")
    assert cls.risk is DES
    assert "variable" in cls.summary
    # a variable directory with a literal program name is just a path
    assert classify("$HOME/bin/frobnicate").risk is MUT


def test_fork_bomb_reason() -> None:
    cls = classify(":(){ :|:& };:")
    assert cls.risk is DES
    assert "fork bomb" in cls.summary


@pytest.mark.parametrize(
    ("path", "risk"),
    [
        ("/srv/app/config.yml", MUT),
        ("/etc/nginx/conf.d/app.conf", MUT),
        ("/tmp/x", MUT),
        ("/etc/passwd", DES),
        ("/etc/sudoers.d/deploy", DES),
        ("/root/.ssh/authorized_keys", DES),
        ("/boot/grub/grub.cfg", DES),
        ("/dev/sda", DES),
        ("/etc", DES),
        ("/", DES),
        ("", DES),
        ("   ", DES),
    ],
)
def test_classify_write(path: str, risk: Risk) -> None:
    cls = classify_write(path)
    assert cls.risk is risk
    assert cls.commands == (("write_file", path),)
    assert cls.programs == ("write_file",)
    assert cls.summary


@pytest.mark.parametrize(
    ("command", "word"),
    [
        ("cat /etc/shadow", "/etc/shadow"),
        ("sudo head -3 /root/.ssh/id_ed25519", "/root/.ssh/id_ed25519"),
        ("cat < /etc/gshadow", "/etc/gshadow"),
        ("cat /etc/ssl/private/site.key", "/etc/ssl/private/site.key"),
        ("cat /etc/hosts", None),
        ("cat /root/.ssh/id_ed25519.pub", None),
        ("cat /etc/passwd", None),
    ],
)
def test_reads_credentials(command: str, word: str | None) -> None:
    assert reads_credentials(classify(command)) == word


def test_credential_read_becomes_mutating_on_every_part() -> None:
    cls = classify("sudo cat /etc/shadow | wc -l")
    assert cls.risk is MUT
    assert "credential file /etc/shadow" in cls.summary
    assert {p.risk for p in cls.parts} == {MUT}
    # a credential path in a command that is already mutating keeps that command's reason
    assert "credential" not in classify("cp /etc/shadow /tmp/s").summary


def test_classify_is_deterministic() -> None:
    command = "sudo systemctl restart nginx && curl -s http://localhost/health | jq .status"
    assert classify(command) == classify(command)
