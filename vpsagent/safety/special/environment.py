"""Environment variables that make other programs run code: `PAGER=…`, `GIT_SSH_COMMAND=…`,
`LD_PRELOAD=…`, exported functions. Judged wherever they are set (`VAR=x cmd`, `env`,
`export`, a plain assignment)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vpsagent.safety.model import UNKNOWN, Finding
from vpsagent.safety.parse import Word

if TYPE_CHECKING:
    from vpsagent.safety.analyze import Analyzer

# The value is a command line that some program runs through a shell.
COMMAND_VARS = frozenset({
    "PAGER", "GIT_PAGER", "MANPAGER", "SYSTEMD_PAGER", "PSQL_PAGER", "BAT_PAGER", "DELTA_PAGER",
    "GIT_SSH_COMMAND", "GIT_SSH", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_EXTERNAL_DIFF", "GIT_ASKPASS",
    "EDITOR", "VISUAL", "SUDO_EDITOR", "FCEDIT", "SSH_ASKPASS", "SUDO_ASKPASS", "PROMPT_COMMAND",
    "BROWSER", "LESSOPEN", "LESSCLOSE", "RSYNC_RSH", "RSH", "CVS_RSH", "GIT_PROXY_COMMAND",
})
# The value makes a program load code the gate cannot see.
CODE_VARS = frozenset({
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "PYTHONPATH", "PYTHONSTARTUP",
    "PYTHONHOME", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG", "GIT_EXEC_PATH", "GIT_DIR", "GIT_TEMPLATE_DIR", "IFS", "SHELLOPTS", "BASHOPTS",
    "GCONV_PATH", "PS4", "SHELL", "GIT_CONFIG_COUNT",
})
_STANDARD_PATH = frozenset({"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
                            "/snap/bin", "/usr/games", "/usr/local/games"})


def judge_assignment(name: str, value: Word | None, an: Analyzer, depth: int) -> Finding | None:
    """The risk of setting `name=value`, or None when the variable runs nothing."""
    text = value.value if value is not None else ""
    if name.startswith("BASH_FUNC_"):
        body = re.sub(r"^\(\)\s*", "", text)
        cls = an.nested(f"f() {body}", depth + 1, spill=(name,))
        return Finding(cls.risk, f"the exported function {name} runs: {cls.summary}", cls.programs)
    if name in COMMAND_VARS:
        code = text.lstrip("|") if name.startswith("LESS") else text
        if not code.strip():
            return None
        cls = an.nested(code.replace("%s", "/tmp/file"), depth + 1, spill=(name,))
        if cls.risk.rank == 0:
            return None
        return Finding(cls.risk, f"{name} makes programs run `{code[:60]}`: {cls.summary}", cls.programs)
    if name == "PATH":
        return _path(text)
    if name in CODE_VARS or name.startswith(("LD_", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")):
        return Finding(UNKNOWN, f"{name}={text[:40]} makes programs load code the gate cannot see")
    return None


def _path(text: str) -> Finding | None:
    dirs = text.split(":")
    if "$PATH" in dirs or "${PATH}" in dirs:
        dirs = dirs[: max(dirs.index(d) for d in ("$PATH", "${PATH}") if d in dirs)]
    if all(d in _STANDARD_PATH or d in ("$PATH", "${PATH}") for d in dirs):
        return None
    return Finding(UNKNOWN, f"PATH={text[:60]} changes which programs run")
