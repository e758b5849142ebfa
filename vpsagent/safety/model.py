"""What the classifier returns: the risk of each part of a command, and of the whole."""

from __future__ import annotations

from dataclasses import dataclass

from vpsagent.outcomes import Risk

RO, CHANGE, UNKNOWN, DES = Risk.READ_ONLY, Risk.CHANGE, Risk.UNKNOWN, Risk.DESTRUCTIVE


@dataclass(frozen=True, slots=True)
class Finding:
    """A judgement of one program call: how risky, why, and the programs it ran inside."""

    risk: Risk
    reason: str
    programs: tuple[str, ...] = ()

    def worst(self, other: Finding) -> Finding:
        """The riskier of two findings (the first one on a tie), programs from both."""
        progs = tuple(dict.fromkeys((*self.programs, *other.programs)))
        best = other if other.risk > self.risk else self
        return Finding(best.risk, best.reason or self.reason or other.reason, progs)


def worst(findings: list[Finding], default: Finding) -> Finding:
    out = default
    for f in findings:
        out = out.worst(f)
    return out


@dataclass(frozen=True)
class Part:
    """One thing the command does: a simple command (unwrapped) or a redirection.

    `argv` is the innermost command that runs (program name as a basename); `text` is how
    the simple command was written (wrappers included) — policy deny/ask rules match both,
    allow rules only `argv`, so `allow: ["sudo *"]` cannot smuggle in `sudo rm -rf /`.
    """

    argv: tuple[str, ...]
    risk: Risk
    reason: str
    text: str
    programs: tuple[str, ...] = ()  # wrappers first, then the program that runs


@dataclass(frozen=True)
class Classification:
    risk: Risk
    reasons: tuple[str, ...]
    programs: tuple[str, ...]
    commands: tuple[tuple[str, ...], ...]
    parts: tuple[Part, ...] = ()
    command: str = ""  # the command as given (policy rules also match the whole string)

    @property
    def summary(self) -> str:
        """The reasons for the final risk, one line."""
        top = [p.reason for p in self.parts if p.risk == self.risk and p.reason]
        return "; ".join(dict.fromkeys(top or list(self.reasons)))

    def finding(self) -> Finding:
        return Finding(self.risk, self.summary, self.programs)


def build(command: str, parts: list[Part]) -> Classification:
    risk = max((p.risk for p in parts), default=RO)
    reasons = tuple(dict.fromkeys(p.reason for p in parts if p.reason))
    programs = tuple(dict.fromkeys(prog for p in parts for prog in p.programs))
    commands = tuple(dict.fromkeys(p.argv for p in parts if p.argv))
    return Classification(risk, reasons, programs, commands, tuple(parts), command)
