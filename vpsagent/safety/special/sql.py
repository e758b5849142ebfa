"""SQL and database clients: the statements themselves are judged.

SELECT/SHOW/EXPLAIN read; INSERT/UPDATE … WHERE and CREATE/ALTER/GRANT change; DELETE, DROP,
TRUNCATE (anywhere in a statement, a CTE included) and UPDATE without a real WHERE
(`WHERE true`, `WHERE 1=1`) destroy; any other statement is unknown. Redis and MongoDB
commands are judged the same way: FLUSH*/DEL/EVAL and drop/delete destroy.
"""

from __future__ import annotations

import re

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/|^\s*#[^\n]*", re.S | re.M)
_STRINGS = re.compile(r"'(?:[^'\\]|''|\\.)*'|\$(\w*)\$.*?\$\1\$|\"(?:[^\"]|\"\")*\"|`[^`]*`", re.S)
_NOT_DML = re.compile(r"\bON\s+(DELETE|UPDATE)\b|\bFOR\s+(NO\s+KEY\s+)?UPDATE\b|\bFOR\s+SHARE\b|\bIF\s+EXISTS\b")
_TAUTOLOGY = re.compile(
    r"\bWHERE\s+(TRUE|NOT\s+FALSE|1|'1'|''\s*=\s*''|(\d+)\s*=\s*\2|(\w+)\s*=\s*\3|1\s*<>\s*0|\d+\s*>\s*0)\s*(;|$|\bRETURNING\b|\bLIMIT\b)"
    r"|\bOR\s+(TRUE|1\s*=\s*1|''\s*=\s*'')\b", re.I)
_DESTROY_FUNCS = re.compile(r"\b(LO_UNLINK|PG_DROP_REPLICATION_SLOT|PG_FILE_UNLINK|DBMS_\w*DROP\w*)\s*\(")
_CHANGE_FUNCS = re.compile(
    r"\b(PG_TERMINATE_BACKEND|PG_CANCEL_BACKEND|SETVAL|NEXTVAL|SET_CONFIG|PG_RELOAD_CONF|PG_ROTATE_LOGFILE|"
    r"PG_PROMOTE|LO_IMPORT|LO_EXPORT|PG_CREATE_\w+|PG_SWITCH_WAL|PG_WAL_REPLAY_\w+|PG_ADVISORY_\w*LOCK\w*|"
    r"PG_FILE_WRITE|DBLINK_EXEC|SLEEP|BENCHMARK|GET_LOCK)\s*\(")
_READ_FIRST = frozenset({"SELECT", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "VALUES", "TABLE", "WITH", "USE", "SET",
                         "RESET", "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "HELP",
                         "STATUS", "LISTEN", "UNLISTEN", "FETCH", "CLOSE", "DECLARE", "DISCARD", "CHECK", "CHECKSUM",
                         "ANALYSE_READ", "WATCH", "EXISTS"})
_CHANGE_FIRST = frozenset({"INSERT", "UPDATE", "REPLACE", "MERGE", "UPSERT", "CREATE", "ALTER", "GRANT", "REVOKE",
                           "COMMENT", "VACUUM", "ANALYZE", "REINDEX", "CLUSTER", "REFRESH", "LOCK", "RENAME", "OPTIMIZE",
                           "FLUSH", "KILL", "REPAIR", "COPY", "LOAD", "NOTIFY", "SECURITY", "ATTACH", "DETACH",
                           "INSTALL", "UNINSTALL", "PURGE", "SHUTDOWN", "CHECKPOINT", "IMPORT", "EXPORT", "SYSTEM",
                           "PRAGMA", "UNLOCK", "HANDLER", "CACHE", "PREPARE", "DEALLOCATE"})


def judge_sql(call: Call | None, sql: str, client: str = "the SQL") -> Finding:
    """The worst statement of an SQL text (psql meta-commands and sqlite dot-commands too)."""
    out = Finding(RO, f"{client} only reads")
    if call is not None:
        out = out.worst(_server_side(call, sql, client))
    text = _STRINGS.sub(lambda m: "''" if m.group(0).startswith("'") else " x ", _COMMENTS.sub(" ", sql))
    for line in re.split(r"\n", text):
        if line.strip().startswith(("\\", ".")):
            out = out.worst(_meta(call, line.strip(), client))
    body = "\n".join(line for line in text.split("\n")
                     if not line.strip().startswith(("\\", ".")) and not re.match(r"\s*system\s", line, re.I))
    for stmt in body.split(";"):
        if stmt.strip():
            out = out.worst(_statement(call, stmt.strip(), client))
    return out


_PROGRAM = re.compile(r"\bPROGRAM\s+'((?:[^']|'')*)'", re.I)
_COPY_TO_FILE = re.compile(r"\bCOPY\b.*?\bTO\s+'((?:[^']|'')*)'", re.I | re.S)
_CLIENT_SHELL = re.compile(r"^\s*(?:system|\\!)\s+(.+)$", re.I | re.M)


def _server_side(call: Call, sql: str, client: str) -> Finding:
    """What the SQL makes the server or the client run or write: COPY … PROGRAM, COPY … TO
    'file', the mysql client's `system`/`\\!` escape."""
    out = Finding(RO, "")
    for m in _PROGRAM.finditer(sql):
        out = out.worst(Finding(UNKNOWN, f"{client} COPY … PROGRAM runs a command on the database server")).worst(
            call.shell(m.group(1).replace("''", "'"), f"{client} COPY PROGRAM"))
    for m in _COPY_TO_FILE.finditer(sql):
        if not _PROGRAM.search(m.group(0)):
            out = out.worst(call.write(Word.plain(m.group(1)), f"{client} COPY TO"))
    for m in _CLIENT_SHELL.finditer(sql):
        out = out.worst(call.shell(m.group(1), f"{client} system"))
    return out


def _statement(call: Call | None, stmt: str, client: str) -> Finding:
    up = _NOT_DML.sub(" ", stmt.upper())
    words = re.findall(r"[A-Z_]+", up)
    first = words[0] if words else ""
    if re.search(r"\b(DROP|TRUNCATE|DELETE)\b", up) or _DESTROY_FUNCS.search(up):
        what = re.search(r"\b(DROP|TRUNCATE|DELETE)\b", up)
        return Finding(DES, f"{client} runs {what.group(1) if what else 'a function that deletes'}, which destroys data")
    if re.search(r"\bUPDATE\b", up) and (" WHERE " not in f" {up} " or _TAUTOLOGY.search(up)):
        return Finding(DES, f"{client} runs UPDATE on every row (no real WHERE)")
    if re.match(r"(RESET\s+(MASTER|REPLICA|SLAVE|BINARY)|PURGE\s+(BINARY|MASTER)\s+LOGS)\b", up):
        return Finding(DES, f"{client} {' '.join(words[:2])} deletes the binary logs or replication state")
    if first in ("SOURCE", "CALL", "DO", "EXECUTE") or re.match(r"SET\s+(GLOBAL|PERSIST)\b", up):
        risk = CHANGE if first == "SET" else UNKNOWN
        return Finding(risk, f"{client} {' '.join(words[:2])} {'changes the server' if risk is CHANGE else 'runs code the gate cannot see'}")
    if first == "COPY" and "PROGRAM" in words and call is not None:
        prog = re.search(r"PROGRAM\s+'([^']*)'", stmt, re.I)
        return Finding(UNKNOWN, f"{client} COPY … PROGRAM runs a command on the database server") \
            if prog is None else Finding(CHANGE, "").worst(call.shell(prog.group(1), f"{client} COPY PROGRAM"))
    if first in _CHANGE_FIRST or re.search(r"\b(INSERT|UPDATE|MERGE|INTO\s+OUTFILE|INTO\s+DUMPFILE)\b", up) \
            or _CHANGE_FUNCS.search(up) or (first == "SELECT" and re.search(r"\bINTO\b", up)):
        return Finding(CHANGE, f"{client} changes the database ({first or 'a statement'})")
    if first in _READ_FIRST:
        if first == "EXPLAIN" and "ANALYZE" in words:
            return Finding(UNKNOWN, f"{client} EXPLAIN ANALYZE runs the statement")
        return Finding(RO, f"{client} only reads")
    return Finding(UNKNOWN, f"{client} runs {first or 'a statement'} the gate does not know")


_PSQL_READ = re.compile(r"\\(d\w*\+?|l\+?|list|x|timing|conninfo|q|quit|c|connect|encoding|pset|a|t|H|T|C|f|"
                        r"echo|qecho|warn|set|unset|prompt|z|sf\+?|sv\+?|errverbose|h|help|\?|copyright|if|elif|else|"
                        r"endif|p|r|g|gx|gdesc|gset|watch|s|cd|getenv|setenv|sleep|bind|crosstabview|dconfig)(\s|$)")


def _meta(call: Call | None, line: str, client: str) -> Finding:
    if line.startswith("\\!") or line.startswith((".shell", ".system")):
        code = re.sub(r"^(\\!|\.shell|\.system)\s*", "", line)
        return call.shell(code, f"{client} shell escape") if call is not None and code else \
            Finding(UNKNOWN, f"{client} opens a shell")
    if line.startswith("\\"):
        if re.match(r"\\(copy|o|out|w|write|lo_import|lo_export)\b", line):
            return Finding(CHANGE, f"{client} {line.split()[0]} reads or writes files")
        if re.match(r"\\lo_unlink\b", line):
            return Finding(DES, f"{client} \\lo_unlink deletes a large object")
        if re.match(r"\\(g|gx)\s+\S", line):
            return Finding(CHANGE, f"{client} {line.split()[0]} FILE writes a file")
        if _PSQL_READ.match(line):
            return Finding(RO, "")
        return Finding(UNKNOWN, f"{client} meta-command {line.split()[0]} is not one the gate knows")
    return _dot(line, client, call)


_DOT_READ = re.compile(r"\.(tables|schema|indexes|indices|dump|mode|headers?|show|databases|dbinfo|help|width|timer|"
                       r"stats|print|echo|nullvalue|separator|quit|exit|eqp|explain|lint|fullschema|changes|bail|"
                       r"prompt|limits|dbconfig|filectrl|vfsinfo|vfslist|sha3sum|selftest|parameter|scanstats)(\s|$)")


def _dot(line: str, client: str, call: Call | None = None) -> Finding:
    if _DOT_READ.match(line):
        return Finding(RO, "")
    if re.match(r"\.(restore|clone)\b", line):
        return Finding(DES, f"{client} {line.split()[0]} replaces a database")
    target = re.match(r"\.(output|once|save|backup|log)\s+(?:--?\w+\s+)*(\S+)", line)
    if target is not None and call is not None:
        found = call.write(Word.plain(target.group(2).strip("'\"")), f"{client} .{target.group(1)}")
        return found if found.risk > RO else Finding(RO, "")
    if re.match(r"\.(output|once|save|backup|import|excel|log|cd)\b", line):
        return Finding(CHANGE, f"{client} {line.split()[0]} writes files or data")
    return Finding(UNKNOWN, f"{client} dot-command {line.split()[0]} is not one the gate knows")


def _sql_from(call: Call, statements: list[str], files: list[Word], client: str) -> Finding:
    """Judge SQL given on the command line, in files, or on stdin (in that order)."""
    if statements:
        out = Finding(RO, f"{client} only reads")
        for sql in statements:
            out = out.worst(judge_sql(call, sql, client))
        return out
    if files:
        out = Finding(RO, "")
        for f in files:
            out = out.worst(_file(call, f, client))
        return out
    return _stdin(call, client)


def _file(call: Call, f: Word, client: str) -> Finding:
    scripts = call.an.scripts
    content = scripts.content_of(call.an.resolve(f.value)) if scripts is not None and not f.dynamic else None
    if content is None:
        return Finding(UNKNOWN, f"{client} runs the SQL file {f.value}, which the gate has not read")
    return judge_sql(call, content.decode("utf-8", "replace"), client)


def _stdin(call: Call, client: str) -> Finding:
    feed = call.feed
    if feed.kind == "data":
        return judge_sql(call, feed.data.decode("utf-8", "replace"), client)
    if feed.kind == "file":
        return _file(call, Word.plain(feed.path), client)
    if feed.kind == "unseen":
        return Finding(UNKNOWN, f"{client} runs SQL piped from `{feed.source}`, which the gate cannot see")
    return Finding(UNKNOWN, f"{client} opens an interactive SQL session")


def psql(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "cdfhpUvPoLTFRf", opts("--command", "--dbname", "--file", "--host", "--port", "--username",
                                               "--set", "--variable", "--pset", "--output", "--log-file",
                                               "--field-separator", "--record-separator", "--table-attr"))
    if s.has("-l", "--list", "-V", "--version", "--help") and not s.value("-c", "--command"):
        return Finding(RO, f"{call.prog} -l/--version only reads")
    out = _sql_from(call, [w.value for w in s.values.get("-c", []) + s.values.get("--command", [])],
                    s.values.get("-f", []) + s.values.get("--file", []), call.prog)
    for flag in ("-o", "--output", "-L", "--log-file"):
        for w in s.values.get(flag, []):
            out = out.worst(call.write(w, f"{call.prog} {flag}"))
    return out


def mysql(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "euhPSDO", opts("--execute", "--user", "--host", "--port", "--socket", "--database",
                                        "--tee", "--pager", "--init-command", "--default-character-set",
                                        "--defaults-file", "--defaults-extra-file", "--password"))
    if s.has("-V", "--version", "--help") and not s.value("-e", "--execute"):
        return Finding(RO, f"{call.prog} --version only prints")
    statements = [w.value for w in s.values.get("-e", []) + s.values.get("--execute", [])]
    statements += [w.value for w in s.values.get("--init-command", [])]
    out = _sql_from(call, statements, [], call.prog)
    pager = s.value("--pager")
    if pager is not None:
        out = out.worst(call.shell_word(pager, f"{call.prog} --pager"))
    tee = s.value("--tee")
    return out.worst(call.write(tee, f"{call.prog} --tee")) if tee is not None else out


def sqlite(call: Call, spec: Program) -> Outcome:
    args = call.args
    statements: list[str] = []
    operands: list[Word] = []
    readonly = False
    i = 0
    while i < len(args):
        v = args[i].value
        if v in ("-cmd", "-separator", "-newline", "-nullvalue", "-init", "-vfs", "-mmap", "-pagecache",
                 "-lookaside", "-heap", "-maxsize"):
            if v == "-cmd" and i + 1 < len(args):
                statements.append(args[i + 1].value)
            if v == "-init":
                return Finding(UNKNOWN, f"{call.prog} -init runs a file the gate has not read")
            i += 2
            continue
        readonly = readonly or v in ("-readonly", "--readonly")
        if not v.startswith("-"):
            operands.append(args[i])
        elif v in ("-version", "--version", "-help", "--help"):
            return Finding(RO, f"{call.prog} {v} only prints")
        i += 1
    if operands[1:]:
        statements.append(" ".join(w.value for w in operands[1:]))
    out = _sql_from(call, statements, [], call.prog) if statements else _stdin(call, call.prog)
    if readonly and out.risk in (CHANGE, DES) and "shell" not in out.reason:
        return Finding(RO, f"{call.prog} -readonly cannot change the database")
    return out


def clickhouse(call: Call, spec: Program) -> Outcome:
    args = call.args[1:] if call.prog == "clickhouse" and call.args and call.args[0].value in ("client", "local") else call.args
    if call.prog == "clickhouse" and not (call.args and call.args[0].value in ("client", "local")):
        return Finding(UNKNOWN, "clickhouse runs a server tool the gate does not know")
    s, _ = scan(args, "qhudf", opts("--query", "--host", "--user", "--password", "--database", "--format", "--port",
                                    "--queries-file", "--config-file"))
    files = s.values.get("--queries-file", [])
    return _sql_from(call, [w.value for w in s.values.get("-q", []) + s.values.get("--query", [])], files, "clickhouse")


def cql(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "eufpk", opts("--execute", "--username", "--file", "--password", "--keyspace"))
    return _sql_from(call, [w.value for w in s.values.get("-e", []) + s.values.get("--execute", [])],
                     s.values.get("-f", []) + s.values.get("--file", []), call.prog)


def influx(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "", opts("-execute", "-database", "-host", "-username", "-password", "-format",
                                       "--org", "--bucket", "--token", "--host", "-o", "-b", "-t"), stop_at_operand=True)
    legacy = [w for i, w in enumerate(call.args) if i > 0 and call.args[i - 1].value in ("-execute", "--execute")]
    if legacy:
        return _sql_from(call, [w.value for w in legacy], [], "influx")
    if not rest:
        return Finding(UNKNOWN, "influx opens an interactive shell") if not s.flags else Finding(RO, "influx only prints")
    words = [w.value for w in rest]
    if "delete" in words[:2] or words[:1] == ["delete"]:
        return Finding(DES, f"influx {' '.join(words[:2])} deletes data")
    if len(words) > 1 and words[1] in ("list", "ls", "find") or words[0] in ("ping", "version", "query"):
        return Finding(RO, f"influx {' '.join(words[:2])} only reads")
    return Finding(UNKNOWN, f"influx {' '.join(words[:2])} is an influx command the gate does not know")


# ---------------------------------------------------------------- redis

_REDIS_READ = frozenset({
    "get", "mget", "keys", "scan", "sscan", "hscan", "zscan", "info", "ping", "exists", "ttl", "pttl", "type",
    "strlen", "hget", "hgetall", "hkeys", "hvals", "hlen", "hexists", "hmget", "lrange", "llen", "lindex", "smembers",
    "scard", "sismember", "smismember", "zrange", "zrangebyscore", "zrevrange", "zrevrangebyscore", "zcard", "zscore",
    "zrank", "zrevrank", "zcount", "dbsize", "time", "memory", "slowlog", "monitor", "echo", "lastsave", "role",
    "xlen", "xrange", "xrevrange", "xinfo", "xpending", "object", "dump", "randomkey", "latency", "command",
    "cluster", "sentinel", "pubsub", "subscribe", "psubscribe", "getrange", "bitcount", "bitpos", "getbit",
    "pfcount", "geopos", "geodist", "georadius_ro", "geosearch", "srandmember", "sdiff", "sinter", "sunion",
    "lpos", "hrandfield", "zrandmember", "touch", "wait", "eval_ro", "evalsha_ro", "fcall_ro", "lolwut", "hello",
    "auth", "select", "readonly", "quit", "module", "acl", "client", "config", "function", "script",
})
_REDIS_DESTROY = frozenset({
    "flushall", "flushdb", "del", "unlink", "eval", "evalsha", "fcall", "shutdown", "debug", "swapdb", "getdel",
    "hdel", "srem", "zrem", "lrem", "lpop", "rpop", "spop", "xdel", "xtrim", "ltrim", "zremrangebyscore",
    "zremrangebyrank", "zremrangebylex", "zpopmin", "zpopmax", "bzpopmin", "bzpopmax", "blpop", "brpop", "lmpop",
    "zmpop", "replicaof", "slaveof", "failover", "restore-asking", "xgroup",
})
_REDIS_SUB_CHANGE = {"config": {"get": RO, "help": RO}, "client": {"list": RO, "info": RO, "getname": RO, "id": RO,
                                                                    "help": RO, "no-evict": CHANGE},
                     "script": {"exists": RO, "help": RO, "flush": DES, "kill": CHANGE, "load": CHANGE},
                     "function": {"list": RO, "stats": RO, "dump": RO, "help": RO, "delete": DES, "flush": DES},
                     "acl": {"list": RO, "users": RO, "getuser": RO, "whoami": RO, "cat": RO, "log": RO, "help": RO,
                             "genpass": RO, "dryrun": RO, "deluser": CHANGE},
                     "module": {"list": RO, "help": RO},
                     "cluster": {"info": RO, "nodes": RO, "slots": RO, "shards": RO, "myid": RO, "keyslot": RO,
                                 "countkeysinslot": RO, "getkeysinslot": RO, "help": RO, "reset": DES,
                                 "flushslots": DES, "forget": CHANGE}}


def judge_redis(words: list[str], client: str) -> Finding:
    if not words:
        return Finding(RO, "")
    cmd = words[0].lower()
    sub = words[1].lower() if len(words) > 1 else ""
    if cmd in _REDIS_DESTROY:
        return Finding(DES, f"{client} {cmd.upper()} deletes data or stops the server")
    if cmd == "config" and sub == "set" and len(words) > 3 and words[2].lower() in ("dir", "dbfilename", "logfile"):
        target = words[3]
        if re.search(r"\.ssh|authorized_keys|/etc|/root|cron|/var/spool|\.bashrc|\.profile", target):
            return Finding(DES, f"{client} CONFIG SET {words[2]} {target} makes the server write its dump over system or SSH files")
    if cmd in _REDIS_SUB_CHANGE:
        risk = _REDIS_SUB_CHANGE[cmd].get(sub, CHANGE if sub else RO)
        return Finding(risk, f"{client} {cmd.upper()} {sub.upper()} {'only reads' if risk is RO else 'changes the server'}")
    if cmd in _REDIS_READ:
        return Finding(RO, f"{client} {cmd.upper()} only reads")
    if re.fullmatch(r"[a-z.]+", cmd):
        return Finding(CHANGE, f"{client} {cmd.upper()} changes data")
    return Finding(UNKNOWN, f"{client} {cmd} is not a command the gate knows")


def redis_cli(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "hpasnuricd", opts("--user", "--pass", "--askpass", "--tls", "--cacert", "--cert", "--key",
                                            "--sni", "--rdb", "--pipe-timeout", "--pattern", "--count", "--eval",
                                            "--functions-rdb", "--memkeys-samples", "--csv", "--quoted-pattern"))
    if s.value("--eval") is not None:
        return Finding(DES, f"{call.prog} --eval runs a Lua script (EVAL)")
    if s.value("--rdb") is not None:
        return call.write(s.value("--rdb"), f"{call.prog} --rdb")  # type: ignore[arg-type]
    if not s.operands:
        return _redis_input(call, s.flags)
    return judge_redis([w.value for w in s.operands], call.prog)


def _redis_input(call: Call, flags: set[str]) -> Finding:
    if flags & {"--scan", "--bigkeys", "--memkeys", "--hotkeys", "--stat", "--latency", "--latency-history",
                "--latency-dist", "--version", "-v", "--help", "--keystats", "--intrinsic-latency"}:
        return Finding(RO, f"{call.prog} {sorted(flags)[0]} only reads")
    if call.feed.kind == "data":
        out = Finding(RO, f"{call.prog} only reads")
        for line in call.feed.data.decode("utf-8", "replace").splitlines():
            out = out.worst(judge_redis(line.split(), call.prog))
        return out
    if call.feed.kind == "none":
        return Finding(UNKNOWN, f"{call.prog} opens an interactive session")
    return Finding(UNKNOWN, f"{call.prog} runs commands from its input, which the gate cannot see")


# ---------------------------------------------------------------- mongo

_MONGO_DESTROY = re.compile(r"\.(drop\w*|delete\w*|remove\w*|findOneAndDelete|findAndModify|deleteMany|"
                            r"dropDatabase|dropUser|dropAllUsers|dropRole|dropAllRoles|dropIndex\w*)\s*\(")
_MONGO_CHANGE = re.compile(r"\.(insert\w*|update\w*|replace\w*|create\w*|rename\w*|bulkWrite|findOneAndUpdate|"
                           r"findOneAndReplace|grant\w*|revoke\w*|shutdownServer|fsyncLock|"
                           r"setProfilingLevel|compact|reIndex)\s*\(|\$out\b|\$merge\b")
_MONGO_READ = re.compile(r"\.(find\w*|count\w*|aggregate|distinct|stats|getCollectionNames|getCollectionInfos|"
                         r"getIndexes|version|serverStatus|status|isMaster|hello|explain|getName|getSiblingDB|"
                         r"getCollection|toArray|forEach|limit|sort|skip|pretty|printjson|hostInfo|currentOp|"
                         r"getUsers|getRoles|listCollections|conf|printReplicationInfo|printSecondaryReplicationInfo|"
                         r"getReplicationInfo|dataSize|totalSize|storageSize|next|hasNext|map|itcount|size|"
                         r"getDB|stringify|log|keys|length|collStats|dbStats|getMongo|getDBNames|adminCommand)\s*\(")


def judge_js(code: str, client: str) -> Finding:
    if re.search(r"\.(runCommand|adminCommand|eval)\s*\(|\bload\s*\(", code):
        return Finding(UNKNOWN, f"{client} runs a database command the gate cannot judge")
    if _MONGO_DESTROY.search(code):
        return Finding(DES, f"{client} drops or deletes data")
    if _MONGO_CHANGE.search(code):
        return Finding(CHANGE, f"{client} changes data")
    calls = re.findall(r"\.(\w+)\s*\(", code)
    bare = re.sub(r"\b(show\s+\w+|use\s+\w+|db|rs|sh|printjson|print|JSON|console|it|exit)\b", "", code)
    if all(_MONGO_READ.search(f".{c}(") for c in calls) and not re.search(r"\b(eval|load|require|fs|process|runProgram|"
                                                                          r"run|_runMongoProgram|connect|Mongo)\b", bare):
        return Finding(RO, f"{client} only reads")
    return Finding(UNKNOWN, f"{client} runs code the gate cannot judge")


def mongo(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "uphf", opts("--eval", "--username", "--password", "--host", "--port",
                                        "--authenticationDatabase", "--file"))
    code = s.value("--eval")
    if code is not None:
        return judge_js(code.value, call.prog)
    if s.has("--version", "--help"):
        return Finding(RO, f"{call.prog} --version only prints")
    files = [w for w in s.operands if w.value.endswith(".js")] + s.values.get("-f", []) + s.values.get("--file", [])
    if files:
        return Finding(UNKNOWN, f"{call.prog} runs the script {files[0].value}, which the gate has not read")
    if call.feed.kind == "data":
        return judge_js(call.feed.data.decode("utf-8", "replace"), call.prog)
    if call.feed.kind == "none":
        return Finding(UNKNOWN, f"{call.prog} opens an interactive shell")
    return Finding(UNKNOWN, f"{call.prog} runs code from its input, which the gate cannot see")
