"""Wrappers whose command is not simply "the rest of the line": sudo, env, xargs, shells,
eval, su, ssh, watch, trap, alias, tmux, screen, parallel, at, script, expect-like tools."""

from __future__ import annotations

import re

from vpsagent.safety.analyze import NO_FEED, Call, Delegate, Feed, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan


def sudo(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "ugpCDrtTURc", opts("--user", "--group", "--prompt", "--close-from", "--chdir",
                                               "--role", "--type", "--other-user", "--host", "--chroot"),
                   stop_at_operand=True)
    if s.has("-e", "--edit") or call.prog == "sudoedit":
        files = rest if s.has("-e", "--edit") else call.args
        out = Finding(CHANGE, f"{call.prog} edits {' '.join(w.value for w in files)}")
        for w in files:
            out = out.worst(call.write(w, "sudoedit of"))
        return out
    if not rest:
        if s.has("-i", "-s", "--login", "--shell") and call.feed.kind != "none":
            return Delegate(argv=[Word.plain("sh")])  # the root shell reads what is fed to it
        if s.has("-i", "-s", "--login", "--shell"):
            return Finding(UNKNOWN, f"{call.prog} -i/-s opens an interactive root shell")
        return Finding(RO, f"{call.prog} without a command only lists, validates or forgets credentials")
    return Delegate(argv=rest)


def env(call: Call, spec: Program) -> Outcome:
    from vpsagent.safety.special.environment import judge_assignment

    s, rest = scan(call.args, "uCS", opts("--unset", "--chdir", "--split-string", "--default-signal",
                                          "--ignore-signal", "--block-signal"), stop_at_operand=True)
    split = s.value("-S", "--split-string")
    floor = Finding(RO, "")
    while rest and re.match(r"[A-Za-z_][A-Za-z0-9_%]*=", rest[0].value):
        name, _, value = rest[0].value.partition("=")
        found = judge_assignment(name, rest[0].with_value(value), call.an, call.depth)
        floor = floor.worst(found) if found is not None else floor
        rest = rest[1:]
    if split is not None:
        code = " ".join([split.value, *(w.value for w in rest)])
        return Delegate(code=code, origin="the env -S string", floor=floor)
    if not rest:
        return floor if floor.risk > RO else Finding(RO, "env without a command prints the environment")
    return Delegate(argv=rest, floor=floor)


def xargs(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "IaEdLnsP", opts("--arg-file", "--delimiter", "--eof", "--replace", "--max-lines",
                                            "--max-args", "--max-chars", "--max-procs", "--process-slot-var"),
                   stop_at_operand=True)
    rest = rest or [Word.plain("echo")]
    repl = _replacement(s)
    items = _items(call.feed, s) if not s.value("-a", "--arg-file") else None
    if items and repl:
        out = Finding(RO, "")
        for item in items:
            words = [w.with_value(w.value.replace(repl, item)) for w in rest]
            out = out.worst(call.run_argv(words, "xargs"))
        return Finding(out.risk, out.reason or "xargs runs read-only commands", out.programs)
    if items:
        return Delegate(argv=rest + [Word.plain(i) for i in items], feed=NO_FEED)
    # xargs feeds its input as more arguments: unknown values, possibly `/`
    many = Word(f"<xargs input from {call.feed.source or 'stdin'}>", dynamic=True, prefix="", many=True)
    if repl and any(repl in w.value for w in rest[1:]):
        words = [rest[0]] + [Word(w.value, True, w.value.split(repl)[0], w.quoted, many=True) if repl in w.value else w
                             for w in rest[1:]]
        return Delegate(argv=words, feed=NO_FEED)
    return Delegate(argv=rest + [many], feed=NO_FEED)


def _replacement(s: object) -> str | None:
    from vpsagent.safety.table import Scan

    assert isinstance(s, Scan)
    got = s.value("-I", "--replace")
    if got is not None:
        return got.value or "{}"
    return "{}" if s.has("-i") else None


def _items(feed: Feed, s: object) -> list[str] | None:
    from vpsagent.safety.table import Scan

    assert isinstance(s, Scan)
    if feed.kind != "data":
        return None
    text = feed.data.decode("utf-8", "replace")
    delim = s.value("-d", "--delimiter")
    if s.has("-0", "--null"):
        parts = text.split("\0")
    elif delim is not None:
        parts = text.split(delim.value.encode().decode("unicode_escape") or "\n")
    else:
        parts = text.split()
    items = [p.strip() for p in parts if p.strip()]
    return items[:32] if items else None


# ---------------------------------------------------------------- shells

# Code a shell reads from a pipe or a here-document is judged by what it says, and is never
# less than unknown: nobody needs to pipe `df -h` into a shell, and decoding hides intent.
_PIPED = Finding(UNKNOWN, "a shell runs code piped into it")


def shell(call: Call, spec: Program) -> Outcome:
    """sh, bash, dash, zsh… : `-c CODE`, a script file, or a script read on stdin."""
    i, flags = 0, ""
    args = call.args
    while i < len(args):
        a = args[i].value
        if a == "--" or a == "-":
            i += 1 if a == "--" else 0
            break
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if a.startswith(("-", "+")) and len(a) > 1 and not args[i].dynamic:
            flags += a[1:] if not a.startswith("--") else ""
            if a in ("--version", "--help"):
                return Finding(RO, f"{call.prog} {a} only prints")
            i += 1
            continue
        break
    rest = args[i:]
    if "n" in flags:
        return Finding(RO, f"{call.prog} -n only checks syntax")
    if "c" in flags:
        if not rest:
            return Finding(RO, f"{call.prog} -c without a command")
        return Delegate(code=rest[0].value, origin=f"the {call.prog} -c string", feed=call.feed)
    return _shell_input(call, rest, "s" in flags)


def _shell_input(call: Call, rest: list[Word], stdin: bool) -> Outcome:
    if stdin or not rest or rest[0].value in ("-", "/dev/stdin"):
        if call.feed.kind == "data":
            return Delegate(code=call.feed.data.decode("utf-8", "replace"), origin=f"the script fed to {call.prog}",
                            feed=NO_FEED, floor=_PIPED)
        if call.feed.kind == "none":
            return Finding(UNKNOWN, f"{call.prog} without a script opens an interactive shell")
        return call.feed_code(f"{call.prog}")
    return call.script(rest[0], f"{call.prog} {rest[0].value}", "sh")


def source(call: Call, spec: Program) -> Outcome:
    from vpsagent.safety.scripts import judge_script_file

    if not call.args:
        return Finding(UNKNOWN, f"{call.prog} without a file")
    target = call.args[0]
    if target.value in ("/dev/stdin", "-", "/proc/self/fd/0", "/dev/fd/0") and call.feed.kind == "data":
        return Delegate(code=call.feed.data.decode("utf-8", "replace"), origin=f"the input {call.prog} reads",
                        feed=NO_FEED, floor=_PIPED)
    return judge_script_file(call.an, target, f"{call.prog} {target.value}", "sh", call.depth, call.feed)


def eval_(call: Call, spec: Program) -> Outcome:
    from vpsagent.safety.decode import output_of_procsub

    pieces: list[str] = []
    for w in call.args:
        if not w.dynamic:
            pieces.append(w.value)
            continue
        subs = [s for s in w.subs if s.type == "command_substitution"]
        if len(subs) != 1 or not w.computed:
            return Finding(DES, f"eval of {w.value}: code only known at run time")
        got = output_of_procsub(call.an, subs[0])
        if got.kind != "data":
            return Finding(DES, f"eval of {w.value}: code only known at run time")
        pieces.append(got.data.decode("utf-8", "replace"))
    return Delegate(code=" ".join(pieces), origin="the eval string")


def su(call: Call, spec: Program) -> Outcome:
    if call.prog == "runuser":
        s, rest = scan(call.args, "ugGw", opts("--user", "--group", "--supp-group", "--whitelist-environment"),
                       stop_at_operand=True)
        if rest and s.value("-u", "--user") is not None:
            return Delegate(argv=rest)
    s, rest = scan(call.args, "cgGsw", opts("--command", "--group", "--supp-group", "--shell",
                                            "--whitelist-environment", "--session-command"))
    code = s.value("-c", "--command", "--session-command")
    if code is not None:
        return Delegate(code=code.value, origin=f"the {call.prog} -c string")
    if call.feed.kind != "none":
        return call.feed_code(f"the shell {call.prog} opens")
    return Finding(UNKNOWN, f"{call.prog} opens an interactive shell as another user")


def ssh(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "BbcDEeFIiJLlmOoPpQRSWw", stop_at_operand=True)
    if s.has("-V", "-G", "-Q") and not rest[1:]:
        return Finding(RO, "ssh -V/-G/-Q only prints")
    floor = _ssh_options(call, s.values.get("-o", []))
    if not rest:
        return Finding(UNKNOWN, "ssh without a host")
    host, command = rest[0].value, rest[1:]
    if command and command[0].value == "--":
        command = command[1:]
    if s.has("-N", "-f") and not command:
        return Finding(CHANGE, f"ssh -N opens a tunnel to {host}").worst(floor)
    if not command:
        if call.feed.kind != "none":
            return call.feed_code(f"the remote shell on {host}").worst(floor)
        return Finding(UNKNOWN, f"ssh opens an interactive session on {host}").worst(floor)
    return Delegate(code=" ".join(w.value for w in command), origin=f"the command run on {host}",
                    floor=floor if floor.risk > RO else None)


_SSH_COMMAND_OPTIONS = ("proxycommand", "localcommand", "knownhostscommand", "remotecommand")


def _ssh_options(call: Call, values: list[Word]) -> Finding:
    out = Finding(RO, "")
    for v in values:
        m = re.match(r"\s*(\w+)\s*[= ]\s*(.*)$", v.value, re.S)
        if m is None:
            continue
        key, val = m.group(1), m.group(2)
        if key.lower() in _SSH_COMMAND_OPTIONS:
            out = out.worst(call.shell(val.replace("%h", "host").replace("%p", "22"), f"ssh -o {key}"))
    return out


def scp(call: Call, spec: Program) -> Outcome:
    """scp/sftp: copies files; `-o ProxyCommand=…` and `-S program` run commands."""
    s, _ = scan(call.args, "cFiJlPoSDBX", opts())
    out = Finding(CHANGE, f"{call.prog} copies files").worst(_ssh_options(call, s.values.get("-o", [])))
    for w in s.values.get("-S", []):
        out = out.worst(call.shell(w.value, f"{call.prog} -S"))
    if call.prog == "sftp" and s.value("-b") is not None:
        out = out.worst(Finding(UNKNOWN, "sftp -b runs a batch file the gate has not read"))
    return out


def watch(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "ndq", opts("--interval", "--differences", "--equexit", "--errexit"),
                   stop_at_operand=True)
    if not rest:
        return Finding(RO, "watch without a command")
    if s.has("-x", "--exec"):
        return Delegate(argv=rest)
    return Delegate(code=" ".join(w.value for w in rest), origin="the watch command")


def trap(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if len(vals) >= 2 and not vals[0].startswith("-") and vals[0]:
        return Delegate(code=vals[0], origin="the trap handler")
    return Finding(RO, "trap lists or resets handlers")


def alias(call: Call, spec: Program) -> Outcome:
    """`alias x='rm -rf /'`: judged by what the alias would run."""
    out = Finding(RO, "alias only lists aliases")
    for w in call.args:
        name, eq, value = w.value.partition("=")
        if eq and value.strip():
            call.an.aliases.add(name)
            out = out.worst(call.shell(value, f"the alias {name}"))
    return out


def command(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "", stop_at_operand=True)
    if s.has("-v", "-V"):
        return Finding(RO, f"{call.prog} -v only looks a name up")
    if not rest:
        return Finding(RO, f"{call.prog} without a command")
    return Delegate(argv=rest)


def exec_(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "a", stop_at_operand=True)
    if not rest:
        return Finding(RO, "exec without a command only changes redirections")
    return Delegate(argv=rest)


def time_(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "fo", opts("--format", "--output"), stop_at_operand=True)
    floor = Finding(RO, "")
    out = s.value("-o", "--output")
    if out is not None:
        floor = call.write(out, "time -o", append=s.has("-a", "--append"))
    if not rest:
        return floor if floor.risk > RO else Finding(RO, "time without a command")
    return Delegate(argv=rest, floor=floor if floor.risk > RO else None)


def busybox(call: Call, spec: Program) -> Outcome:
    if not call.args or call.args[0].value.startswith("-"):
        return Finding(RO, f"{call.prog} lists its applets")
    return Delegate(argv=call.args)


def flock(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "wEc", opts("--timeout", "--conflict-exit-code", "--command"), stop_at_operand=True)
    code = s.value("-c", "--command")
    if code is None and len(rest) > 1 and rest[1].value in ("-c", "--command") and len(rest) > 2:
        code = rest[2]
    if code is not None:
        return Delegate(code=code.value, origin="the flock -c string")
    if len(rest) <= 1:
        return Finding(RO, "flock on a descriptor only takes a lock")
    return Delegate(argv=rest[1:])


def chroot(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "", opts("--userspec", "--groups"), stop_at_operand=True)
    if len(rest) <= 1:
        return Finding(UNKNOWN, "chroot opens a shell in another root")
    return Delegate(argv=rest[1:])


def at(call: Call, spec: Program) -> Outcome:
    """at/batch: schedule the commands read on stdin (or from -f FILE)."""
    s, rest = scan(call.args, "fqtm", opts())
    if s.has("-l", "-c") or call.prog == "atq":
        return Finding(RO, f"{call.prog} -l/-c only lists jobs")
    if s.has("-r", "-d") or call.prog == "atrm":
        return Finding(CHANGE, f"{call.prog} removes scheduled jobs")
    floor = Finding(CHANGE, f"{call.prog} schedules commands to run later")
    script = s.value("-f")
    if script is not None:
        return floor.worst(call.script(script, f"the {call.prog} -f file", "sh"))
    if call.feed.kind == "data":
        return Delegate(code=call.feed.data.decode("utf-8", "replace"), origin=f"the commands given to {call.prog}",
                        floor=floor, feed=NO_FEED)
    return floor.worst(call.feed_code(f"the commands given to {call.prog}"))


def script_(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "cEIBOTtm", opts("--command", "--echo", "--log-in", "--log-out", "--log-io",
                                             "--log-timing", "--logging-format", "--timing", "--output-limit"))
    floor = Finding(RO, "")
    for f in rest[:1]:
        floor = call.write(f, "script", append=s.has("-a", "--append"))
    code = s.value("-c", "--command")
    if code is None:
        return floor.worst(Finding(UNKNOWN, "script without -c records an interactive shell"))
    return Delegate(code=code.value, origin="the script -c command", floor=floor if floor.risk > RO else None)


def sg(call: Call, spec: Program) -> Outcome:
    rest = list(call.args)
    if rest and rest[0].value == "-":
        rest = rest[1:]
    if not rest:
        return Finding(UNKNOWN, "sg without a command opens a shell")
    rest = rest[1:]
    if rest and rest[0].value == "-c":
        rest = rest[1:]
    if not rest:
        return Finding(UNKNOWN, "sg opens a shell with another group")
    return Delegate(code=" ".join(w.value for w in rest), origin="the sg command")


def parallel(call: Call, spec: Program) -> Outcome:
    """GNU parallel: a command template run for every argument after ::: (or every input line)."""
    s, rest = scan(call.args, "jSIPLNnkaEd", opts("--jobs", "--sshlogin", "--arg-file", "--joblog", "--results",
                                               "--delimiter", "--colsep", "--timeout", "--workdir", "--tmpdir",
                                               "--retries", "--memfree", "--load", "--delay", "--tag-string"),
                   stop_at_operand=True)
    if s.has("--version", "--help", "--citation") and not rest:
        return Finding(RO, "parallel only prints")
    marks = [i for i, w in enumerate(rest) if w.value in (":::", "::::", ":::+", "::::+")]
    template = rest[: marks[0]] if marks else rest
    sources = rest[marks[0] + 1:] if marks and rest[marks[0]].value == ":::" else []
    code = " ".join(w.value for w in template) or "$PARALLEL_ARG"
    if "{" not in code and template:
        code += " {}"
    items = [w.value for w in sources if w.value not in (":::", ":::+")] if sources else None
    if items and not any(w.dynamic for w in sources):
        out = Finding(RO, "")
        for item in items[:32]:
            out = out.worst(call.shell(re.sub(r"\{[^{}]*\}", item, code), "parallel"))
        return Finding(out.risk, out.reason or "parallel runs read-only commands", out.programs)
    return Delegate(code=re.sub(r"\{[^{}]*\}", '"$PARALLEL_ARG"', code), origin="the parallel command", feed=NO_FEED)


def tmux(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "LSf", opts(), stop_at_operand=True)
    if not rest:
        return Finding(UNKNOWN, "tmux opens an interactive session")
    sub, tail = rest[0].value, rest[1:]
    if sub in _TMUX_READ:
        return Finding(RO, f"tmux {sub} only reads")
    if sub in ("send-keys", "send"):
        return _typed(call, [w for w in _operands(tail, "tcN") if w.value not in ("Enter", "C-m", "KPEnter")],
                      "the keys tmux types")
    if sub in _TMUX_RUNS:
        cmd = _operands(tail, "censtxyFf")
        if not cmd:
            return Finding(CHANGE, f"tmux {sub} opens a shell in a new window")
        return Delegate(code=" ".join(w.value for w in cmd), origin=f"the tmux {sub} command",
                        floor=Finding(CHANGE, f"tmux {sub} starts a session"), feed=NO_FEED)
    if sub.startswith("kill") or sub in _TMUX_CHANGE:
        return Finding(CHANGE, f"tmux {sub} changes sessions")
    return Finding(UNKNOWN, f"tmux {sub} is a tmux command the gate does not know")


_TMUX_READ = frozenset({"ls", "list-sessions", "list-windows", "list-panes", "list-clients", "list-keys",
                        "list-buffers", "list-commands", "has-session", "has", "capture-pane", "capturep",
                        "show-options", "show", "show-buffer", "display-message", "display", "info", "-V"})
_TMUX_RUNS = frozenset({"new-session", "new", "new-window", "neww", "split-window", "splitw", "respawn-pane",
                        "respawnp", "respawn-window", "run-shell", "run", "if-shell", "if", "pipe-pane"})
_TMUX_CHANGE = frozenset({"rename-session", "rename-window", "select-window", "select-pane", "detach-client",
                          "set-option", "set", "resize-pane", "move-window", "swap-pane"})


def _operands(words: list[Word], with_arg: str) -> list[Word]:
    s, rest = scan(words, with_arg, stop_at_operand=True)
    return rest


def _typed(call: Call, keys: list[Word], origin: str) -> Outcome:
    text = " ".join(w.value for w in keys)
    if not text.strip():
        return Finding(CHANGE, f"{origin}: keys only")
    return Finding(UNKNOWN, f"{origin} into a shell").worst(call.shell(text, origin)) \
        if not re.fullmatch(r"[\w\s:./-]*", text) else Finding(CHANGE, origin).worst(call.shell(text, origin))


def screen(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "SpXcehTt", opts(), stop_at_operand=True)
    if s.has("-ls", "-list", "-l") or (s.has("-l") and s.has("-s")):
        return Finding(RO, "screen -ls only lists sessions")
    if {"-s", "-l"} & s.flags and not rest and not s.has("-d", "-m", "-X"):
        return Finding(RO, "screen -ls only lists sessions")
    if s.has("-X"):
        cmd = s.values.get("-X", [])
        typed = [w for w in rest]
        if cmd and cmd[-1].value == "stuff":
            return _typed(call, typed, "the text screen types")
        return Finding(CHANGE, "screen -X sends a command to a session")
    if rest:
        return Delegate(argv=rest, floor=Finding(CHANGE, "screen starts a session"), feed=NO_FEED)
    if s.has("-r", "-R", "-x", "-D"):
        return Finding(UNKNOWN, "screen attaches to an interactive session")
    return Finding(UNKNOWN, "screen opens an interactive session")


def expect(call: Call, spec: Program) -> Outcome:
    from vpsagent.safety.special.interpreters import tcl_code

    s, rest = scan(call.args, "cf", opts())
    code = s.value("-c")
    if code is not None:
        return tcl_code(call, code.value)
    if rest:
        return call.script(rest[0], f"{call.prog} {rest[0].value}", "expect")
    return call.feed_code(call.prog, "expect")


def perf(call: Call, spec: Program) -> Outcome:
    """perf record/stat/trace run a command to measure it; the other subcommands read."""
    if not call.args:
        return Finding(RO, "perf lists its subcommands")
    sub = call.args[0].value
    if sub not in ("record", "stat", "trace", "ftrace", "sched", "mem", "c2c", "kmem", "lock"):
        return Finding(RO if sub in ("list", "report", "annotate", "top", "script", "diff", "evlist") else UNKNOWN,
                       f"perf {sub} {'only reads' if sub in ('list', 'report', 'annotate', 'top') else ''}".strip())
    s, rest = scan(call.args[1:], "oepcFCGrIt", opts("--output", "--event", "--pid", "--cpu", "--call-graph"),
                   stop_at_operand=True)
    floor = None
    for w in s.values.get("-o", []) + s.values.get("--output", []):
        floor = call.write(w, f"perf {sub} -o")
    if not rest:
        return floor if floor is not None and floor.risk > RO else Finding(RO, f"perf {sub} measures the system")
    return Delegate(argv=rest, floor=floor if floor is not None and floor.risk > RO else None)


def cpulimit(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "lpec", opts("--limit", "--pid", "--exe", "--cpu"), stop_at_operand=True)
    if rest:
        return Delegate(argv=rest)
    if s.value("-p", "--pid", "-e", "--exe") is not None:
        return Finding(CHANGE, "cpulimit limits a running process")
    return Finding(RO, "cpulimit without a command")


def chrt_taskset(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "", opts(), stop_at_operand=True)
    if s.has("-p", "--pid"):
        return Finding(RO if len(rest) <= 1 else CHANGE, f"{call.prog} -p {'shows' if len(rest) <= 1 else 'changes'} a process's setting")
    if s.has("-m", "--max", "-h", "--help", "-V", "--version"):
        return Finding(RO, f"{call.prog} only prints")
    if len(rest) <= 1:
        return Finding(RO, f"{call.prog} without a command")
    return Delegate(argv=rest[1:])


def ionice(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "cnpPu", opts("--class", "--classdata", "--pid", "--pgid", "--uid"), stop_at_operand=True)
    if rest:
        return Delegate(argv=rest)
    if s.value("-p", "-P", "-u", "--pid", "--pgid", "--uid") is not None:
        changing = s.value("-c", "--class", "-n", "--classdata") is not None
        return Finding(CHANGE if changing else RO, f"ionice {'changes' if changing else 'shows'} the I/O priority of running processes")
    return Finding(RO, "ionice without a command")


def nice(call: Call, spec: Program) -> Outcome:
    args = call.args
    i = 0
    while i < len(args):
        a = args[i].value
        if a in ("-n", "--adjustment"):
            i += 2
        elif re.fullmatch(r"-n?-?\d+|--adjustment=.*", a):
            i += 1
        elif a == "--":
            i += 1
            break
        else:
            break
    if i >= len(args):
        return Finding(RO, "nice without a command prints the niceness")
    return Delegate(argv=args[i:])


def systemd_run(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "pEMHu", opts(
        "--unit", "--property", "--setenv", "--machine", "--host", "--description", "--slice", "--uid", "--gid",
        "--nice", "--working-directory", "--on-active", "--on-boot", "--on-startup", "--on-unit-active",
        "--on-unit-inactive", "--on-calendar", "--on-clock-change", "--on-timezone-change", "--timer-property",
        "--path-property", "--socket-property", "--service-type", "--user-unit"), stop_at_operand=True)
    timers = {f for f in s.flags if f.startswith("--on-")}
    floor = Finding(CHANGE, f"systemd-run {sorted(timers)[0]} schedules a command") if timers else None
    if not rest:
        return Finding(UNKNOWN, "systemd-run without a command opens a shell") if s.has("--shell", "-S") else \
            Finding(RO, "systemd-run without a command")
    return Delegate(argv=rest, floor=floor)


def start_stop_daemon(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "xacnpuNrdkbPoqtsgRKSTvVCHm", opts(
        "--exec", "--startas", "--name", "--pidfile", "--user", "--chuid", "--chroot", "--chdir", "--signal",
        "--retry", "--group", "--nicelevel", "--iosched", "--procsched", "--umask", "--output"))
    if s.has("-T", "--status"):
        return Finding(RO, "start-stop-daemon --status only checks")
    prog = s.value("-x", "--exec", "-a", "--startas")
    floor = Finding(CHANGE, "start-stop-daemon starts or stops a daemon")
    if s.has("-S", "--start") and prog is not None:
        return Delegate(argv=[prog, *rest], floor=floor)
    return floor


__all__ = ["DES", "UNKNOWN", "CHANGE", "RO"]
