"""Allow / ask / deny rules on top of the classifier, and the modes (--yes, --read-only).

Precedence, for one command on one server:
1. `--read-only` mode denies anything that is not read-only; no rule can override it.
2. A matching deny rule denies.
3. Destructive: denied unless allow rules name every destructive part (or the whole
   command). An ask rule still makes it ask; `--yes` never approves destructive commands.
4. Unknown: an ask rule asks; allow rules that name every unknown part EXACTLY (the rule,
   without wildcards, equals the unwrapped command or the whole command line) allow it;
   otherwise it asks, and `--yes` does not answer that ask.
5. Change: an ask rule asks; allow rules covering every part that is not read-only allow;
   otherwise ask. `--yes` turns these asks into allows.
6. Read-only: allowed unless an ask rule matches (`--yes` approves that ask).

Deny and ask rules match widely — the command as written (wrappers included), the unwrapped
command, every program name in the chain, the whole command string. Allow rules match
narrowly — the unwrapped command only — so `allow: ["sudo *"]` cannot smuggle in
`sudo rm -rf /`, and a bare program name (`allow: [docker]`) never unlocks a destructive
or an unknown command. A denial carries a `DenyCause`, so callers never read the prose.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpsagent.errors import ConfigError, InvalidInput
from vpsagent.outcomes import Decision, DenyCause, Risk
from vpsagent.safety.classify import Classification, Part, classify
from vpsagent.userfiles import read_bounded

if TYPE_CHECKING:
    from vpsagent.safety.scripts import ScriptSource

__all__ = ["Decision", "DenyCause", "Mode", "Policy", "Rule", "RuleSet", "Verdict", "check", "decide", "load_policy",
           "normalize_command", "parse_policy"]

_ACTIONS = ("allow", "ask", "deny")
_TOP_KEYS = (*_ACTIONS, "require_sandbox", "servers", "tags")
_SECTION_KEYS = (*_ACTIONS, "require_sandbox")
_BARE_PROGRAM = re.compile(r"[A-Za-z0-9_.+:@-]+")
_COMPOUND = re.compile(r"(^|\s)(\||\|\||&&|;|&)(\s|$)")
_GLOB_CHARS = re.compile(r"[*?\[]")


class Mode(StrEnum):
    DEFAULT = "default"
    YES = "yes"
    READ_ONLY = "read-only"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str  # one sentence, shown to the user and returned to the model
    rule: str | None  # the matching rule text, if a rule decided
    cause: DenyCause | None = None  # why it will not run (decision deny); None otherwise

    def __post_init__(self) -> None:
        # the sentences end with "." after a reason that may end with one itself
        while self.reason.endswith("..") and not self.reason.endswith("..."):
            object.__setattr__(self, "reason", self.reason[:-1])


@dataclass(frozen=True)
class RuleSet:
    allow: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    require_sandbox: bool | None = None  # None: not said here


@dataclass(frozen=True)
class Rule:
    action: str  # "allow" | "ask" | "deny"
    pattern: str
    section: str  # "global", "servers.web1", "tags.prod" — for messages


@dataclass(frozen=True)
class Policy:
    allow: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    servers: Mapping[str, RuleSet] = field(default_factory=dict)
    tags: Mapping[str, RuleSet] = field(default_factory=dict)
    source: str | None = None  # the file it came from, for messages
    require_sandbox: bool = False  # read-only work only inside the read-only sandbox

    def sandbox_required(self, server: str, tags: Sequence[str] = ()) -> bool:
        """Whether read-only commands on this server must run in the read-only sandbox: the
        server's own section says, else any of its tags' sections (requiring wins), else global."""
        own = self.servers.get(server)
        if own is not None and own.require_sandbox is not None:
            return own.require_sandbox
        by_tags = [self.tags[t].require_sandbox for t in tags if t in self.tags]
        if any(v is True for v in by_tags):
            return True
        if any(v is False for v in by_tags):
            return False
        return self.require_sandbox

    def rules_for(self, server: str, tags: Sequence[str] = ()) -> list[Rule]:
        """Every rule that applies to this server: global, then per-tag, then per-server."""
        sections: list[tuple[str, RuleSet]] = [("global", RuleSet(self.allow, self.ask, self.deny))]
        for tag in tags:
            if tag in self.tags:
                sections.append((f"tags.{tag}", self.tags[tag]))
        if server in self.servers:
            sections.append((f"servers.{server}", self.servers[server]))
        return [
            Rule(action, pattern, name)
            for name, rs in sections
            for action in _ACTIONS
            for pattern in getattr(rs, action)
        ]


# ---------------------------------------------------------------- loading


def load_policy(path: Path | None) -> Policy:
    """Read the YAML policy file. A missing file is the empty policy (classification only)."""
    if path is None:
        return Policy()
    path = Path(path)
    try:
        text = read_bounded(path).decode("utf-8")
    except FileNotFoundError:
        return Policy()
    except InvalidInput as e:  # a device, a FIFO, a huge file: refused unread
        raise ConfigError(f"cannot read the policy file {e.message}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the policy file ({e.__class__.__name__}: {e})") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{source}{line}: invalid YAML in the policy file: {problem}") from None
    if root is None or _is_null(root):
        # an empty file, or an empty document (`---` alone, `~`): no rules
        return Policy(source=source)
    top = _mapping(root, source, "the policy file")
    unknown = [k for k in top if k not in _TOP_KEYS]
    if unknown:
        key_node = top[unknown[0]][0]
        raise ConfigError(f"{_where(source, key_node)}: unknown key '{unknown[0]}' in the policy "
                          f"(expected one of: {', '.join(_TOP_KEYS)})")
    rules = {a: _rules(top[a][1], source, a) if a in top else () for a in _ACTIONS}
    servers = _sections(top, "servers", source)
    tags = _sections(top, "tags", source)
    require = _flag(top["require_sandbox"][1], source, "require_sandbox") if "require_sandbox" in top else False
    return Policy(rules["allow"], rules["ask"], rules["deny"], servers, tags, source, bool(require))


# PyYAML's node classes carry no type information: nodes are `Any` here.
_Node = Any  # type: ignore[explicit-any]  # yaml.Node has no type stubs in the installed types-PyYAML


def _sections(top: dict[str, tuple[_Node, _Node]], kind: str, source: str) -> dict[str, RuleSet]:
    out: dict[str, RuleSet] = {}
    if kind not in top or _is_null(top[kind][1]):
        return out
    for name, (_key, section) in _mapping(top[kind][1], source, f"'{kind}'").items():
        if _is_null(section):
            out[name] = RuleSet()
            continue
        entries = _mapping(section, source, f"{kind}.{name}")
        bad = [k for k in entries if k not in _SECTION_KEYS]
        if bad:
            raise ConfigError(f"{_where(source, entries[bad[0]][0])}: unknown key '{bad[0]}' in {kind}.{name} "
                              "(expected allow, ask, deny or require_sandbox)")
        require = (_flag(entries["require_sandbox"][1], source, f"{kind}.{name}.require_sandbox")
                   if "require_sandbox" in entries else None)
        allow, ask, deny = (_rules(entries[a][1], source, f"{kind}.{name}.{a}") if a in entries else ()
                            for a in _ACTIONS)
        out[name] = RuleSet(allow, ask, deny, require_sandbox=require)
    return out


def _flag(node: _Node, source: str, what: str) -> bool:
    import yaml

    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return str(node.value).lower() in ("true", "yes", "on")
    raise ConfigError(f"{_where(source, node)}: {what} must be true or false")


def _where(source: str, node: _Node) -> str:
    return f"{source}:{node.start_mark.line + 1}"


def _is_null(node: _Node) -> bool:
    import yaml

    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _mapping(node: _Node, source: str, what: str) -> dict[str, tuple[_Node, _Node]]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_where(source, node)}: {what} must be a mapping (key: value)")
    out: dict[str, tuple[_Node, _Node]] = {}
    for k, v in node.value:
        if not isinstance(k, yaml.ScalarNode):
            raise ConfigError(f"{_where(source, k)}: keys in {what} must be plain names")
        if k.value in out:
            raise ConfigError(f"{_where(source, k)}: duplicate key '{k.value}' in {what}")
        out[k.value] = (k, v)
    return out


def _rules(node: _Node, source: str, what: str) -> tuple[str, ...]:
    import yaml

    if _is_null(node):
        return ()
    items = [node] if isinstance(node, yaml.ScalarNode) else node.value if isinstance(node, yaml.SequenceNode) else None
    if items is None:
        raise ConfigError(f"{_where(source, node)}: '{what}' must be a list of command patterns")
    out = []
    for item in items:
        if not isinstance(item, yaml.ScalarNode) or _is_null(item):
            raise ConfigError(f"{_where(source, item)}: each rule in '{what}' must be a string, "
                              "like \"systemctl restart nginx\"")
        pattern = " ".join(str(item.value).split())
        if not pattern:
            raise ConfigError(f"{_where(source, item)}: empty rule in '{what}'")
        out.append(pattern)
    return tuple(out)


# ---------------------------------------------------------------- matching


def _glob(pattern: str, text: str) -> bool:
    if fnmatch.fnmatchcase(text, pattern):
        return True
    # "docker *" also covers a bare "docker"
    return pattern.endswith(" *") and text == pattern[:-2]


def _whole_forms(cls: Classification) -> list[str]:
    raw = " ".join(cls.command.split())
    forms = [raw] if raw else []
    norm = normalize_command(cls.command)
    if norm and norm not in forms:
        forms.append(norm)
    return forms


def normalize_command(command: str) -> str:
    """Words and operators separated by single spaces: `a|b  >x` -> `a | b > x`."""
    from vpsagent.safety.parse import normalize

    return normalize(command)


def _part_matches(rule: str, part: Part, *, narrow: bool) -> bool:
    argv_text = " ".join(part.argv)
    if _BARE_PROGRAM.fullmatch(rule):
        programs = part.argv[:1] if narrow else (*part.programs, *part.argv[:1])
        return rule in programs
    forms = [argv_text] if narrow else [argv_text, " ".join(part.text.split())]
    if not part.argv:
        forms.append(" ".join(part.text.split()))
    return any(_glob(rule, f) for f in forms if f)


def _first_wide_match(rules: list[Rule], cls: Classification) -> Rule | None:
    whole = _whole_forms(cls)
    for rule in rules:
        if any(_glob(rule.pattern, w) for w in whole):
            return rule
        if any(_part_matches(rule.pattern, p, narrow=False) for p in cls.parts):
            return rule
    return None


def _allowed(rules: list[Rule], cls: Classification, parts: Sequence[Part], *, destructive: bool) -> Rule | None:
    """The allow rule covering these parts, if every one of them is covered."""
    if not rules or not parts:
        return None
    usable = [r for r in rules if not (destructive and _BARE_PROGRAM.fullmatch(r.pattern))]
    whole = _whole_forms(cls)
    for rule in usable:
        # whole-string allow only for rules written for a compound command ("a | b", "a && b");
        # a single-command rule like "sudo *" must match the unwrapped command instead.
        # The command must also have the rule's shape: a `*` in "cd /app && git pull *" must
        # not swallow "&& rm -rf /" appended by the model.
        if (_COMPOUND.search(rule.pattern) and any(_glob(rule.pattern, w) for w in whole)
                and _shape(rule.pattern) == _shape(cls.command)):
            return rule
    first: Rule | None = None
    for part in parts:
        hit = next((r for r in usable if _part_matches(r.pattern, part, narrow=True)), None)
        if hit is None:
            return None
        first = first or hit
    return first


def _exactly_allowed(rules: list[Rule], cls: Classification, parts: Sequence[Part]) -> Rule | None:
    """The allow rule naming these (unknown) parts exactly: no wildcards, the rule equals the
    unwrapped command (`./deploy.sh`, `python3 manage.py migrate`) or the whole command line."""
    exact = [r for r in rules if not _GLOB_CHARS.search(r.pattern)]
    if not exact or not parts:
        return None
    whole = _whole_forms(cls)
    for rule in exact:
        if rule.pattern in whole:
            return rule
    first: Rule | None = None
    for part in parts:
        forms = {" ".join(part.argv), " ".join(part.text.split())} - {""}
        hit = next((r for r in exact if r.pattern in forms), None)
        if hit is None:
            return None
        first = first or hit
    return first


def _shape(text: str) -> int:
    """How many simple commands a command line holds (substitutions included)."""
    return sum(1 for p in classify(text).parts if p.argv)


def _label(rule: Rule) -> str:
    return f"'{rule.pattern}' ({rule.section} {rule.action} list)"


@dataclass(frozen=True)
class _Ctx:
    cls: Classification
    server: str
    mode: Mode
    allow: list[Rule]
    ask: Rule | None

    @property
    def why(self) -> str:
        return self.cls.summary or self.cls.risk.value

    def parts(self, risk: Risk) -> list[Part]:
        return [p for p in self.cls.parts if p.risk is risk]


def decide(
    policy: Policy,
    cls: Classification,
    *,
    server: str,
    tags: Sequence[str] = (),
    mode: Mode = Mode.DEFAULT,
) -> Verdict:
    """The decision for one classified command on one server."""
    mode = Mode(mode)
    if mode is Mode.READ_ONLY and cls.risk is not Risk.READ_ONLY:
        return Verdict(Decision.DENY, f"Denied on {server}: read-only mode runs only read-only commands and this one "
                       f"is {cls.risk.value}: {cls.summary or cls.risk.value}.", None, DenyCause.READ_ONLY_MODE)
    rules = policy.rules_for(server, tags)
    by = {a: [r for r in rules if r.action == a] for a in _ACTIONS}
    deny = _first_wide_match(by["deny"], cls)
    if deny is not None:
        return Verdict(Decision.DENY, f"Denied on {server} by the policy rule {_label(deny)}.", deny.pattern,
                       DenyCause.DENY_RULE)
    ctx = _Ctx(cls, server, mode, by["allow"], _first_wide_match(by["ask"], cls))
    return _BY_RISK[cls.risk](ctx)


def _destructive(c: _Ctx) -> Verdict:
    allow = _allowed(c.allow, c.cls, c.parts(Risk.DESTRUCTIVE), destructive=True)
    if allow is None:
        return Verdict(Decision.DENY, f"Denied on {c.server}: destructive command, {c.why}; only an allow rule "
                       "naming it can permit it.", None, DenyCause.DESTRUCTIVE)
    if c.ask is not None:
        return Verdict(Decision.ASK, f"Needs approval on {c.server}: the policy rule {_label(c.ask)} asks first for "
                       f"this destructive command that {_label(allow)} allows: {c.why}.", c.ask.pattern)
    rest = _rest(c, allow)
    if rest is not None:
        return rest
    return Verdict(Decision.ALLOW, f"Allowed on {c.server} by the policy rule {_label(allow)} although destructive: "
                   f"{c.why}.", allow.pattern)


def _rest(c: _Ctx, allow: Rule) -> Verdict | None:
    """After the worst parts are allowed: the unknown and change parts still need their own approval."""
    unknown = c.parts(Risk.UNKNOWN)
    if unknown and _exactly_allowed(c.allow, c.cls, unknown) is None:
        why = "; ".join(dict.fromkeys(p.reason for p in unknown))
        return _ask_unknown(c, f"the policy rule {_label(allow)} allows part of it, but the rest is unknown: {why}",
                            allow.pattern)
    change = c.parts(Risk.CHANGE)
    if change and _allowed(c.allow, c.cls, change, destructive=False) is None:
        why = "; ".join(dict.fromkeys(p.reason for p in change))
        return _ask_or_yes(c.mode, c.server, f"the policy rule {_label(allow)} allows part of it, but the rest "
                           f"changes things: {why}", allow.pattern)
    return None


def _unknown(c: _Ctx) -> Verdict:
    if c.ask is not None:
        return _ask_unknown(c, f"the policy rule {_label(c.ask)} asks first; {c.why}", c.ask.pattern)
    allow = _exactly_allowed(c.allow, c.cls, c.parts(Risk.UNKNOWN))
    if allow is None:
        return _ask_unknown(c, f"an unknown command: {c.why}", None)
    rest = _rest(c, allow)
    if rest is not None:
        return rest
    return Verdict(Decision.ALLOW, f"Allowed on {c.server} by the policy rule {_label(allow)} (exactly this unknown "
                   f"command): {c.why}.", allow.pattern)


def _change(c: _Ctx) -> Verdict:
    if c.ask is not None:
        return _ask_or_yes(c.mode, c.server, f"the policy rule {_label(c.ask)} asks first; {c.why}", c.ask.pattern)
    risky = [p for p in c.cls.parts if p.risk > Risk.READ_ONLY]
    allow = _allowed(c.allow, c.cls, risky, destructive=False)
    if allow is not None:
        return Verdict(Decision.ALLOW, f"Allowed on {c.server} by the policy rule {_label(allow)}: {c.why}.",
                       allow.pattern)
    return _ask_or_yes(c.mode, c.server, f"a change: {c.why}", None)


def _read_only(c: _Ctx) -> Verdict:
    if c.ask is not None:
        return _ask_or_yes(c.mode, c.server, f"the policy rule {_label(c.ask)} asks first; {c.why}", c.ask.pattern)
    return Verdict(Decision.ALLOW, f"Allowed on {c.server}: read-only command, {c.why}.", None)


_BY_RISK = {Risk.DESTRUCTIVE: _destructive, Risk.UNKNOWN: _unknown, Risk.CHANGE: _change, Risk.READ_ONLY: _read_only}


def _ask_or_yes(mode: Mode, server: str, what: str, rule: str | None) -> Verdict:
    if mode is Mode.YES:
        return Verdict(Decision.ALLOW, f"Approved on {server} by --yes: {what}.", rule)
    return Verdict(Decision.ASK, f"Needs approval on {server}: {what}.", rule)


def _ask_unknown(c: _Ctx, what: str, rule: str | None) -> Verdict:
    """Unknown asks in every mode: --yes approves only what is understood."""
    note = " (--yes does not approve unknown commands)" if c.mode is Mode.YES else ""
    return Verdict(Decision.ASK, f"Needs approval on {c.server}: {what}{note}.", rule)


def check(policy: Policy, command: str, *, server: str, tags: Sequence[str] = (),
          mode: Mode = Mode.DEFAULT, scripts: ScriptSource | None = None) -> tuple[Classification, Verdict]:
    """Classify and decide in one call — what the agent's run_command gate does."""
    cls = classify(command, scripts)
    return cls, decide(policy, cls, server=server, tags=tags, mode=mode)
