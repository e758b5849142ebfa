"""Interpreters with inline code (python -c, perl -e, ruby -e, node -e, php -r, lua -e…).

Code is read, not run: deletions are destructive, shell-outs with a literal command are
judged as that command, and code that is obviously harmless (printing, parsing JSON,
reading stdin — for python checked on its syntax tree, for the others on the names it
uses) is read-only. Anything else is unknown: `--yes` does not approve it.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Delegate, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

if TYPE_CHECKING:
    from vpsagent.safety.analyze import Analyzer

DESTRUCTIVE_CODE = re.compile(
    r"shutil\s*\.\s*rmtree|\brmtree\b|os\s*\.\s*(remove|unlink|rmdir|removedirs)\b|\.unlink\s*\(|\bunlink\b|"
    r"FileUtils\s*\.\s*(rm|rm_r|rm_rf|remove_dir|remove_entry|remove)\w*|\brm_rf\b|fs\s*\.\s*(rm|rmdir|unlink|truncate)(Sync)?\b|"
    r"\.(rm|rmdir|unlink|truncate)Sync\s*\(|\brimraf\b|File\s*\.\s*(delete|truncate)|Dir\s*\.\s*(delete|rmdir|unlink)|"
    r"\bDROP\s+(DATABASE|TABLE|SCHEMA)\b|\bTRUNCATE\s+|os\s*\.\s*truncate|\.rmtree\(|Path\([^)]*\)\s*\.\s*(unlink|rmdir)|"
    r"\bos\.remove\b|\bunlinkSync\b|\brmSync\b|\bos\.execute\s*\(\s*['\"]rm\s|\bmkfs\b|\bshred\b",
    re.I,
)
_SHELL_OUT = re.compile(
    r"""(?:os\s*\.\s*(?:system|popen)|subprocess\s*\.\s*\w+|\bsystem|\bexec(?:Sync)?|\bspawn(?:Sync)?|\bexecFile(?:Sync)?|
        \bpopen|\bcheck_output|\bcheck_call|\bshell_exec|\bpassthru|\bproc_open|os\.execute|io\.popen|\bIO\.popen|
        \bOpen3\.\w+|\bqx|%x)\s*[({]?\s*
        (?:(?P<q>['"])(?P<s>.+?)(?P=q)|\[(?P<l>[^\]]*)\])""",
    re.X | re.S,
)
_BACKTICKS = re.compile(r"`([^`]+)`")


def judge_inline_code(an: Analyzer, lang: str, code: str, origin: str, depth: int) -> Finding:
    """Code in `lang` (python, perl, ruby, node, php, lua…): destructive, judged shell-outs,
    obviously harmless, or unknown."""
    m = DESTRUCTIVE_CODE.search(code)
    if m is not None:
        return Finding(DES, f"{origin} calls {m.group(0).strip()}, which deletes data")
    out = _shell_outs(an, code, origin, depth, lang)
    if lang == "python":
        harmless = python_harmless(code)
    else:
        harmless = _names_harmless(lang, code)
    if harmless and out.risk <= RO:
        return Finding(RO, f"{origin} only reads and prints")
    if harmless:
        return out
    return out.worst(Finding(UNKNOWN, f"{origin} runs {lang} code whose effect the gate cannot judge"))


def _shell_outs(an: Analyzer, code: str, origin: str, depth: int, lang: str) -> Finding:
    out = Finding(RO, "")
    found = [m.group("s") or " ".join(re.findall(r"""['"]([^'"]*)['"]""", m.group("l") or "")) for m in _SHELL_OUT.finditer(code)]
    if lang in ("perl", "ruby", "php"):
        found += _BACKTICKS.findall(code)
    for shell in found:
        if shell:
            cls = an.nested(shell, depth + 1)
            label = f"{origin} runs `{shell[:60]}`: {cls.summary}" if cls.risk > RO else f"{origin} runs `{shell[:60]}`"
            out = out.worst(Finding(max(cls.risk, RO), label, cls.programs))
    return out


# ---------------------------------------------------------------- python, on its syntax tree

_PY_MODULES = frozenset({"sys", "json", "platform", "os", "socket", "ssl", "time", "datetime", "math", "re", "base64",
                         "hashlib", "struct", "string", "collections", "itertools", "functools", "locale", "getpass",
                         "pwd", "grp", "resource", "multiprocessing", "sysconfig", "site", "uuid", "binascii", "zlib",
                         "decimal", "fractions", "statistics", "pprint", "textwrap", "calendar", "ipaddress",
                         "importlib", "pkgutil", "unicodedata", "html", "csv", "yaml", "encodings", "codecs",
                         "urllib", "shlex", "glob", "fnmatch", "stat", "errno", "signal", "secrets", "random"})
_PY_BUILTINS = frozenset({"print", "len", "sorted", "str", "int", "float", "repr", "list", "dict", "set", "tuple", "sum",
                          "min", "max", "abs", "round", "enumerate", "range", "zip", "map", "filter", "any", "all",
                          "format", "hex", "oct", "bin", "chr", "ord", "bool", "type", "isinstance", "divmod", "pow",
                          "hash", "iter", "next", "reversed", "bytes", "bytearray", "frozenset", "input", "help",
                          "hasattr", "callable", "id", "ascii", "slice", "issubclass", "object", "Exception", "open"})
_PY_UNSAFE_ATTRS = frozenset({
    "system", "popen", "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace", "chmod", "chown",
    "lchown", "kill", "killpg", "truncate", "ftruncate", "write", "writelines", "write_text", "write_bytes", "mkdir",
    "makedirs", "symlink", "link", "execv", "execve", "execvp", "execl", "spawnv", "fork", "setuid", "setgid",
    "putenv", "unsetenv", "chdir", "chroot", "mknod", "mkfifo", "run", "call", "check_call", "check_output", "Popen",
    "rmtree", "move", "copy", "copyfile", "copytree", "sendall", "send", "connect", "bind", "listen", "urlopen",
    "urlretrieve", "touch", "shutdown", "setdefault", "update", "pop", "clear", "exec", "eval", "compile",
    "__import__", "load_module", "exec_module", "import_module", "system_alias", "dup2", "close", "abort", "_exit",
})
_PY_NODES = (ast.Module, ast.Expr, ast.Call, ast.Name, ast.Attribute, ast.Constant, ast.JoinedStr, ast.FormattedValue,
             ast.Load, ast.Store, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Subscript, ast.Slice, ast.Tuple,
             ast.List, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
             ast.keyword, ast.Starred, ast.IfExp, ast.Assign, ast.AugAssign, ast.Import, ast.ImportFrom, ast.alias,
             ast.For, ast.If, ast.Pass, ast.Break, ast.Continue, ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
             ast.expr_context, ast.With, ast.withitem, ast.Try, ast.ExceptHandler, ast.While, ast.Lambda,
             ast.arguments, ast.arg)


def python_harmless(code: str) -> bool:
    """True when the code only computes and prints: safe modules, no writes, no processes."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _PY_NODES):
            return False
        if not _py_node_ok(node):
            return False
    return True


def _py_node_ok(node: ast.AST) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        return all(n.split(".")[0] in _PY_MODULES for n in names)
    if isinstance(node, ast.Attribute):
        return node.attr not in _PY_UNSAFE_ATTRS and not node.attr.startswith("__")
    if isinstance(node, ast.Name):
        return node.id not in ("eval", "exec", "compile", "__import__", "getattr", "setattr", "globals", "vars",
                               "delattr", "breakpoint", "__builtins__", "memoryview")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
        return _py_open_reads(node)
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, ast.Name | ast.Tuple | ast.Subscript) for t in targets)
    return True


def _py_open_reads(node: ast.Call) -> bool:
    mode_args = node.args[1:2] + [k.value for k in node.keywords if k.arg == "mode"]
    for m in mode_args:
        if not isinstance(m, ast.Constant) or not isinstance(m.value, str) or re.search(r"[wax+]", m.value):
            return False
    first = node.args[0] if node.args else None
    return not (isinstance(first, ast.Constant) and isinstance(first.value, str) and paths.names_credential(first.value))


# ---------------------------------------------------------------- the others, by the names they use

_SAFE_NAMES = {
    "perl": frozenset({"print", "printf", "say", "split", "join", "length", "uc", "lc", "ucfirst", "lcfirst", "sprintf",
                       "substr", "if", "unless", "for", "foreach", "next", "last", "my", "our", "local", "BEGIN", "END",
                       "while", "chomp", "chop", "sort", "keys", "values", "each", "reverse", "scalar", "defined",
                       "exists", "grep", "map", "abs", "int", "hex", "oct", "ord", "chr", "lc", "time", "localtime",
                       "gmtime", "strftime", "POSIX", "use", "strict", "warnings", "List", "Util", "sum", "max", "min",
                       "Data", "Dumper", "eq", "ne", "lt", "gt", "le", "ge", "and", "or", "not", "x", "s", "tr", "y",
                       "m", "q", "qq", "qw", "else", "elsif", "STDIN", "STDOUT", "ARGV", "F", "INC", "ENV", "uniq",
                       "push", "shift", "unshift", "pop", "join", "wantarray", "return", "sub", "do", "JSON", "PP",
                       "decode_json", "encode_json", "sqrt", "log", "exp", "lines", "n", "t", "Time", "HiRes", "pos",
                       "index", "rindex", "lc", "sprintf", "printf", "die", "warn", "exit", "ref"}),
    "ruby": frozenset({"puts", "print", "p", "pp", "RUBY_VERSION", "RUBY_PLATFORM", "require", "json", "JSON", "parse",
                       "generate", "pretty_generate", "to_s", "to_i", "to_f", "to_a", "to_h", "map", "each", "select",
                       "reject", "sort", "sort_by", "keys", "values", "length", "size", "split", "join", "strip",
                       "upcase", "downcase", "gsub", "sub", "STDIN", "read", "readlines", "lines", "first", "last",
                       "if", "else", "end", "do", "Time", "now", "ENV", "fetch", "inspect", "sum", "max", "min",
                       "count", "uniq", "include", "nil", "true", "false", "ARGF", "each_line", "chomp", "format",
                       "Gem", "version", "VERSION", "yaml", "YAML", "load", "dump", "to_yaml", "to_json", "n"}),
    "node": frozenset({"console", "log", "error", "process", "version", "versions", "platform", "arch", "env", "JSON",
                       "parse", "stringify", "require", "os", "cpus", "length", "totalmem", "freemem", "hostname",
                       "uptime", "Math", "Date", "now", "toISOString", "Object", "keys", "values", "entries", "map",
                       "filter", "forEach", "join", "split", "trim", "toString", "Number", "String", "parseInt",
                       "const", "let", "var", "for", "of", "in", "if", "else", "return", "true", "false", "null",
                       "undefined", "stdout", "write", "argv", "exit", "loadavg", "networkInterfaces", "release",
                       "type", "userInfo", "memoryUsage", "resourceUsage", "Intl", "DateTimeFormat", "resolvedOptions",
                       "timeZone", "toFixed", "Buffer", "from", "toLocaleString", "getTime", "new", "readFileSync",
                       "fs", "utf8", "toUpperCase", "toLowerCase", "slice", "includes", "sort", "reduce", "a", "b",
                       "x", "k", "v", "e", "d", "i", "s", "n", "r"}),
    "php": frozenset({"echo", "print", "print_r", "var_dump", "var_export", "phpinfo", "phpversion", "PHP_VERSION",
                      "PHP_OS", "PHP_EOL", "json_encode", "json_decode", "ini_get", "extension_loaded",
                      "get_loaded_extensions", "php_uname", "php_ini_loaded_file", "date", "time", "strtoupper",
                      "strtolower", "implode", "explode", "count", "array", "file_get_contents", "php_sapi_name",
                      "function_exists", "class_exists", "ini_get_all", "memory_get_usage", "sys_get_temp_dir",
                      "PHP_INT_MAX", "php_ini_scanned_files", "opcache_get_status", "gethostname", "getenv",
                      "true", "false", "null", "JSON_PRETTY_PRINT", "password_hash", "PASSWORD_DEFAULT", "md5",
                      "sha1", "hash", "base64_encode", "base64_decode", "str_repeat", "sprintf", "printf", "if",
                      "foreach", "as", "else", "OPENSSL_VERSION_TEXT", "zend_version", "get_cfg_var", "realpath"}),
    "lua": frozenset({"print", "string", "format", "os", "time", "date", "clock", "math", "table", "concat", "io",
                      "read", "_VERSION", "tostring", "tonumber", "pairs", "ipairs", "for", "in", "do", "end", "if",
                      "then", "else", "local", "return", "jit", "version", "getenv"}),
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|/(?:[^/\\\n]|\\.)+/[a-z]*", re.S)


def _names_harmless(lang: str, code: str) -> bool:
    safe = _SAFE_NAMES.get(lang)
    if safe is None:
        return False
    bare = _LITERAL.sub(" ", code)
    if re.search(r"`|\bqx\b|\bsystem\b|\bexec\b|\bopen\b|\beval\b|>\s*\$|\|\s*\"|unlink|File\.(write|open)", bare):
        return False
    names = set(_IDENT.findall(bare))
    return names <= safe or all(len(n) == 1 or n in safe for n in names)


# ---------------------------------------------------------------- the programs

_PY_SAFE_MODULES = {"json.tool": RO, "platform": RO, "site": RO, "sysconfig": RO, "this": RO, "tabnanny": RO,
                    "pydoc": RO, "calendar": RO, "uuid": RO, "base64": RO, "zipfile": UNKNOWN, "tarfile": UNKNOWN,
                    "timeit": RO, "pip": CHANGE, "venv": CHANGE, "ensurepip": CHANGE, "py_compile": CHANGE,
                    "compileall": CHANGE, "http.server": CHANGE, "sqlite3": UNKNOWN}


def python(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "cmWX", opts("--check-hash-based-pycs"), stop_at_operand=True)
    code = s.value("-c")
    if code is not None:
        return judge_inline_code(call.an, "python", code.value, f"{call.prog} -c", call.depth)
    module = s.value("-m")
    if module is not None:
        return _python_module(call, module.value, rest)
    if s.has("-V", "--version", "-h", "--help", "-VV") and not rest:
        return Finding(RO, f"{call.prog} --version only prints")
    if rest and rest[0].value != "-":
        return call.script(rest[0], f"{call.prog} {rest[0].value}", "python")
    return _from_stdin(call, "python")


def _python_module(call: Call, module: str, rest: list[Word]) -> Finding:
    if module == "pip":
        from vpsagent.safety.dispatch import unknown_program
        from vpsagent.safety.programs import PROGRAMS
        from vpsagent.safety.table import judge

        spec = PROGRAMS.get("pip")
        return judge(call.derive(rest), spec) if spec is not None else unknown_program("pip", rest)
    if module in ("zipfile", "tarfile") and rest and rest[0].value in ("-l", "--list", "-t", "--test"):
        return Finding(RO, f"{call.prog} -m {module} -l only lists")
    risk = _PY_SAFE_MODULES.get(module, UNKNOWN)
    why = "only reads" if risk is RO else ("changes files" if risk is CHANGE else "runs a module whose effect is unknown")
    return Finding(risk, f"{call.prog} -m {module} {why}")


def _from_stdin(call: Call, lang: str) -> Finding:
    if call.feed.kind == "none":
        return Finding(UNKNOWN, f"{call.prog} without a script opens an interactive interpreter")
    return call.feed_code(f"the code fed to {call.prog}", lang)


def _perl_args(args: list[Word]) -> tuple[list[str], set[str], list[Word]]:
    """perl/ruby switches: -e CODE (repeatable), -i[ext], -n/-p/-l/-a, -M/-I/-F values; the rest."""
    code: list[str] = []
    switches: set[str] = set()
    i = 0
    while i < len(args):
        a = args[i].value
        if a == "--" or not a.startswith("-") or a == "-":
            break
        j = 1
        while j < len(a):
            ch = a[j]
            switches.add(ch)
            if ch in "eE":
                if i + 1 < len(args):
                    code.append(args[i + 1].value)
                    i += 1
                break
            if ch in "iIMmFxd0lCV" and ch not in "l0" or (ch in "l0" and a[j + 1:].isdigit()):
                break  # the rest of the cluster is this switch's value
            j += 1
        i += 1
    return code, switches, args[i:]


def perl_like(call: Call, spec: Program) -> Outcome:
    lang = "perl" if call.prog.startswith("perl") else "ruby"
    code, switches, rest = _perl_args(call.args)
    if not code and switches & {"v", "V"} and not rest:
        return Finding(RO, f"{call.prog} -v only prints its version")
    files = rest if code else rest[1:]
    if not code:
        if rest and rest[0].value != "-":
            return call.script(rest[0], f"{call.prog} {rest[0].value}", lang)
        return _from_stdin(call, lang)
    found = judge_inline_code(call.an, lang, "\n".join(code), f"{call.prog} -e", call.depth)
    if "i" in switches:
        return _in_place(call, found, files, code)
    if "n" in switches or "p" in switches:
        return found if found.risk > RO or not _names_harmless(lang, "\n".join(code)) else Finding(RO, f"{call.prog} -n/-p only filters and prints")
    return found


def _in_place(call: Call, found: Finding, files: list[Word], code: list[str]) -> Finding:
    shown = " ".join(w.value for w in files) or "files"
    if any(paths.is_critical_file(w.value) for w in files):
        return Finding(DES, f"{call.prog} -i edits the critical file {shown}").worst(found)
    if re.search(r"\$_\s*=\s*(''|\"\"|q\(\))\s*;?$|\bundef\s+\$_|^\s*(next|\$_\s*=\s*'')\s*;?\s*$", "\n".join(code)):
        return Finding(DES, f"{call.prog} -i empties {shown}")
    if found.risk is UNKNOWN and re.fullmatch(r"\s*(s|tr|y)(.).*\2[gimsxeupr]*\s*;?\s*", "\n".join(code), re.S) and "e" not in re.sub(r".*\W", "", code[-1]):
        return Finding(CHANGE, f"{call.prog} -i edits {shown} in place")
    return Finding(CHANGE, f"{call.prog} -i edits {shown} in place").worst(found)


def node(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "epr", opts("--eval", "--print", "--require", "--import", "--loader", "--input-type"),
                   stop_at_operand=True)
    code = s.value("-e", "--eval", "-p", "--print")
    if code is not None:
        found = judge_inline_code(call.an, "node", code.value, f"{call.prog} -e", call.depth)
        if s.value("-r", "--require", "--import", "--loader") is not None:
            return found.worst(Finding(UNKNOWN, f"{call.prog} --require loads a module first"))
        return found
    if s.has("-v", "--version", "-h", "--help") and not rest:
        return Finding(RO, f"{call.prog} --version only prints")
    if s.has("-c", "--check") and rest:
        return Finding(RO, f"{call.prog} --check only checks syntax")
    if rest and rest[0].value != "-":
        return call.script(rest[0], f"{call.prog} {rest[0].value}", "node")
    return _from_stdin(call, "node")


def php(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "rcdfSt", opts(), stop_at_operand=True)
    code = s.value("-r")
    if code is not None:
        return judge_inline_code(call.an, "php", code.value, f"{call.prog} -r", call.depth)
    if s.has("-v", "-m", "-i", "--version", "--modules", "--info", "--ini", "-l", "--syntax-check", "-h", "--help"):
        return Finding(RO, f"{call.prog} -v/-m/-i/-l only prints or checks")
    if s.value("-S") is not None:
        return Finding(CHANGE, f"{call.prog} -S starts a web server")
    target = s.value("-f") or (rest[0] if rest else None)
    if target is not None:
        return call.script(target, f"{call.prog} {target.value}", "php")
    return _from_stdin(call, "php")


def simple_interpreter(call: Call, spec: Program) -> Outcome:
    """lua, Rscript, tclsh…: `-e CODE`, a script file, or code on stdin."""
    lang = "lua" if call.prog.startswith("lua") else call.prog
    s, rest = scan(call.args, "el", opts("--eval"), stop_at_operand=True)
    code = s.value("-e", "--eval")
    if code is not None:
        return judge_inline_code(call.an, lang, code.value, f"{call.prog} -e", call.depth)
    if s.has("-v", "--version", "-h", "--help") and not rest:
        return Finding(RO, f"{call.prog} --version only prints")
    if rest:
        return call.script(rest[0], f"{call.prog} {rest[0].value}", lang)
    return _from_stdin(call, lang)


def deno_bun(call: Call, spec: Program) -> Outcome:
    words = call.values
    if words[:1] in (["eval"], ["-e"]) and len(words) > 1:
        return judge_inline_code(call.an, "node", words[-1], f"{call.prog} eval", call.depth)
    if words in (["--version"], ["-v"], ["-V"], ["--help"], ["upgrade", "--dry-run"]):
        return Finding(RO, f"{call.prog} --version only prints")
    if words[:1] in (["install"], ["add"], ["remove"], ["cache"], ["compile"], ["fmt"]):
        return Finding(CHANGE, f"{call.prog} {words[0]} changes files")
    return Finding(UNKNOWN, f"{call.prog} runs code whose effect is unknown")


def tcl_code(call: Call, code: str) -> Outcome:
    """expect/tcl: `spawn`/`exec` commands and text `send` to a shell are judged; the rest is unknown."""
    out = Finding(UNKNOWN, f"{call.prog} runs Tcl code whose effect the gate cannot judge")
    for m in re.finditer(r"\b(spawn|exec)\s+([^;\n\]]+)", code):
        out = out.worst(call.shell(m.group(2).strip(), f"{call.prog} {m.group(1)}"))
    for m in re.finditer(r"\bsend\s+(?:--\s+)?\"((?:[^\"\\]|\\.)*)\"", code):
        text = re.sub(r"\\[rn]", "\n", m.group(1))
        out = out.worst(call.shell(text, f"the text {call.prog} sends"))
    return out


def interpreter_from_stdin(call: Call, spec: Program) -> Outcome:
    return _from_stdin(call, call.prog)


__all__ = ["Delegate"]
