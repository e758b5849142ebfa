"""Classify a shell command as read-only, change, unknown or destructive — by parsing it.

    classify("sudo env rm -rf /var/www").risk   # Risk.DESTRUCTIVE
    classify("./deploy.sh", scripts=source)     # judged by the script's content when source has it

The command is parsed with tree-sitter-bash (`parse.py`), walked (`analyze.py`), every
simple command is unwrapped and judged by the program table (`programs.py`, read by
`table.judge`) and its special modules (`special/`). The worst part wins. Fail closed:
a parse error or a program the table does not know is `unknown`; code fed to a shell that
cannot be seen is `destructive`.
"""

from __future__ import annotations

import functools

from vpsagent.outcomes import Risk
from vpsagent.safety import paths
from vpsagent.safety.model import RO, Classification, Part
from vpsagent.safety.scripts import ScriptSource, classify_write

__all__ = ["Classification", "Part", "Risk", "ScriptSource", "classify", "classify_write", "reads_credentials",
           "is_critical_file", "is_system_path"]

is_critical_file = paths.is_critical_file
is_system_path = paths.is_system_path


def classify(command: str, scripts: ScriptSource | None = None) -> Classification:
    """Classify a shell command string. Never raises for bad shell: that is unknown.

    With `scripts`, running a script (`bash F`, `./F`, `source F`, `python3 F`) is judged by
    what `scripts.content_of(F)` returns; without it (or when it returns None) such a run is
    unknown. Results without `scripts` are cached per command string.
    """
    if not command.strip():
        part = Part((), RO, "empty command", "")
        return Classification(RO, ("empty command",), (), (), (part,), command)
    if scripts is None:
        return _cached(command)
    return _classify(command, scripts)


@functools.lru_cache(maxsize=2048)
def _cached(command: str) -> Classification:
    return _classify(command, None)


def _classify(command: str, scripts: ScriptSource | None) -> Classification:
    from vpsagent.safety.analyze import classify_text

    try:
        return classify_text(command, scripts)
    except RecursionError:
        part = Part((), Risk.DESTRUCTIVE, "the command nests too deeply to check", command)
        return Classification(Risk.DESTRUCTIVE, (part.reason,), (), (), (part,), command)
    except Exception as exc:  # noqa: BLE001 - the gate fails closed: a judging bug must not run the command
        part = Part((), Risk.UNKNOWN, f"the gate could not judge this command ({type(exc).__name__})", command)
        return Classification(Risk.UNKNOWN, (part.reason,), (), (), (part,), command)


def reads_credentials(cls: Classification) -> str | None:
    """The first argument of the command that names a credential file, if any."""
    for argv in cls.commands:
        for word in argv[1:]:
            if paths.names_credential(word):
                return word
    return None

