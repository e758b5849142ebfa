"""Deploy beyond the acceptance cases: secrets never leave their envelope, several servers
(migrate once, batches, --max-fail), a failed first deploy, the AI note after a failure,
`source: git`, the lock under two processes' worth of contention, and the pieces (config,
batches, the shell snippets) on their own, run by a real `sh`.

The world (a git repository served by the local GitHub API, the real sshd, a real app whose
restart starts an HTTP server) is the acceptance tests' `Shop`.
"""

# ruff: noqa: F811  (`shop` is the acceptance tests' fixture, imported to be shared)
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from test_deploy_acceptance import REPO, _add_server, _db_text, _out, shop  # noqa: F401

from tests.fakes.anthropic_api import text
from vpsagent.deploy import server as sh
from vpsagent.deploy.config import parse_config
from vpsagent.services.deploy import batches

# ================================================================ secrets


def test_secret_reaches_the_release_env_file_and_nothing_else(cli, shop, github_api):
    value = "s3cr3t-Value-that-must-stay-hidden-42"
    r = cli("deploy", "secret", "set", "shop", "DB_PASSWORD", input=value + "\n")
    assert r.exit_code == 0, _out(r)
    assert value not in _out(r)
    shop.commit("v1", secrets=["DB_PASSWORD"], env={"MODE": "prod"},
                build=["test -f app.py", 'echo "the password is $DB_PASSWORD"', 'test "$MODE" = prod'])
    r = shop.deploy(cli, "--json")
    assert r.exit_code == 0, r.stderr
    env_file = shop.current() / ".vpsagent.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert value in env_file.read_text()
    assert value not in r.stdout + r.stderr
    assert value.encode() not in _db_text()
    assert b"the password is [REDACTED]" in _db_text()  # the build's output, as recorded
    history = cli("history", "--source", "deploy", "--limit", "0", "--json")
    assert history.exit_code == 0 and "DB_PASSWORD" in history.stdout and value not in history.stdout
    listed = cli("deploy", "secret", "list", "shop", "--json")
    assert listed.exit_code == 0 and "DB_PASSWORD" in listed.stdout and value not in listed.stdout
    assert github_api.token not in r.stdout + r.stderr and github_api.token.encode() not in _db_text()


def test_a_secret_the_config_names_but_nobody_set_stops_the_deploy_before_anything(cli, shop, github_api):
    shop.commit("v1", secrets=["API_KEY"])
    r = shop.deploy(cli)
    assert r.exit_code == 2 and "API_KEY" in r.stderr and "deploy secret set shop API_KEY" in r.stderr
    assert shop.releases() == [] and github_api.deployments == []


def test_secret_value_only_from_stdin(cli, home):
    r = cli("deploy", "secret", "set", "shop", "X", input="")
    assert r.exit_code == 2 and r.stderr.startswith("error: ")
    r = cli("deploy", "secret", "set", "shop", "not a name", input="v\n")
    assert r.exit_code == 2


# ================================================================ several servers


def test_two_servers_migrate_once_and_both_serve(cli, shop, sshd):
    _add_server(cli, sshd, "t2", "127.0.0.2")
    log = shop.tmp / "migrate.log"
    shop.commit("v1", servers=["t1", "t2"], migrate=f'echo "$SERVER" >> {log}', path=f"{shop.path}-{{server}}")
    r = shop.deploy(cli, "--json")
    assert r.exit_code == 0, r.stderr
    assert len(log.read_text().split()) == 1  # once per deploy, not per server
    servers = {x["server"]: x for x in r.json()["data"]["servers"]}
    assert {x["outcome"] for x in servers.values()} == {"deployed"}
    migrated = [n for n, x in servers.items() if any(s["name"] == "migrate" and s["outcome"] == "passed"
                                                     for s in x["stages"])]
    assert migrated == log.read_text().split()


def test_max_fail_lets_the_next_batch_go_and_the_failure_still_fails_the_deploy(cli, shop, sshd):
    _add_server(cli, sshd, "t2", "127.0.0.2")
    # t1 fails its build (a file only t1's build looks for is missing), t2 goes on
    shop.commit("v1", servers=["t1", "t2"], build=['test "$SERVER" != t1'], batch={"serial": 1, "max_fail": 1},
                path=f"{shop.path}-{{server}}", health=None, restart=None)
    r = shop.deploy(cli, "--json")
    assert r.exit_code == 1
    out = {x["server"]: x["outcome"] for x in r.json()["data"]["servers"]}
    assert out == {"t1": "failed", "t2": "deployed"}


def test_without_max_fail_the_next_batch_is_skipped(cli, shop, sshd):
    _add_server(cli, sshd, "t2", "127.0.0.2")
    shop.commit("v1", servers=["t1", "t2"], build=['test "$SERVER" != t1'], path=f"{shop.path}-{{server}}",
                health=None, restart=None)
    r = shop.deploy(cli, "--serial", "1", "--json")
    assert r.exit_code == 1
    out = {x["server"]: x for x in r.json()["data"]["servers"]}
    assert out["t1"]["outcome"] == "failed" and out["t2"]["outcome"] == "skipped"
    assert "more than 0" in out["t2"]["error"]


# ================================================================ failures


def test_a_first_deploy_that_fails_its_health_check_leaves_nothing_live(cli, shop, github_api):
    shop.commit("v1", healthy=False)
    r = shop.deploy(cli, "--no-diagnose")
    assert r.exit_code == 1
    assert not (shop.path / "current").is_symlink()
    assert "rolled back to no release" in r.stderr
    assert github_api.statuses(github_api.deployments[0]["id"])[-1]["state"] == "failure"


def test_failure_brings_support_findings_and_an_ai_note(anthropic_api, cli, shop):
    anthropic_api.always(text("Root cause: the build step exits 3 on purpose."))
    shop.commit("v1", build=["echo 'fatal: widget missing' >&2; exit 3"])
    r = shop.deploy(cli, "--json")
    assert r.exit_code == 1
    (entry,) = r.json()["data"]["servers"]
    assert entry["diagnosis"] == "Root cause: the build step exits 3 on purpose."
    sent = anthropic_api.all_strings()
    assert "fatal: widget missing" in sent  # the failed step's output went to the model
    assert "Collector output" in sent  # ... with the support evidence
    shown = cli("deploy", "show", str(r.json()["data"]["id"]), "--json")
    (stored,) = [x for x in shown.json()["data"]["servers"] if x["server"] == "t1"]
    assert stored["diagnosis"] == entry["diagnosis"]


def test_no_diagnose_asks_no_model(anthropic_api, cli, shop):
    anthropic_api.always(text("should not be asked"))
    shop.commit("v1", build=["exit 3"])
    assert shop.deploy(cli, "--no-diagnose").exit_code == 1
    assert anthropic_api.requests == []


def test_a_dying_build_is_reported_with_its_output_and_the_failed_release_is_kept(cli, shop):
    shop.commit("v1", build=["echo compiling; echo 'error: out of memory' >&2; exit 137"])
    r = shop.deploy(cli, "--no-diagnose")
    assert r.exit_code == 1
    assert "exit 137" in r.stderr and "error: out of memory" in r.stderr
    assert len(shop.releases()) == 1


# ================================================================ sources, selection, dry run


def test_source_git_clones_on_the_server(cli, shop):
    shop.commit("v1", source="git", git_url=f"file://{shop.repo}")
    r = shop.deploy(cli, "--no-diagnose")
    assert r.exit_code == 0, _out(r)
    assert (shop.current() / ".git").is_dir() and shop.wait_for("v1") == "v1"


def test_deploy_without_an_argument_uses_the_only_connected_repository(cli, shop, github_api):
    r = cli("github", "connect", REPO, "--token-stdin", input=github_api.token + "\n",
            env={"GITHUB_API_URL": github_api.url})
    assert r.exit_code == 0, _out(r)
    shop.commit("v1")
    r = cli("deploy", "--ref", "main", env={"GITHUB_API_URL": github_api.url})
    assert r.exit_code == 0, _out(r)
    assert shop.wait_for("v1") == "v1"
    r = cli("deploy", "shop", "--ref", "main", "--dry-run", env={"GITHUB_API_URL": github_api.url})
    assert r.exit_code == 0 and "dry run" in r.stdout  # by the connection's name too


def test_connect_refuses_a_bad_token_and_stores_nothing(cli, home, github_api):
    r = cli("github", "connect", REPO, "--token-stdin", input="wrong-token\n", env={"GITHUB_API_URL": github_api.url})
    assert r.exit_code == 3 and r.stderr.count("error:") == 1
    assert "wrong-token" not in r.stdout + r.stderr
    assert REPO not in cli("github", "list", "--json").stdout


def test_dry_run_json_lists_every_stage_with_its_command(cli, shop, github_api):
    shop.commit("v1", build=["make assets"], migrate="./migrate.sh")
    r = shop.deploy(cli, "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    (entry,) = r.json()["data"]["servers"]
    stages = {s["name"]: s for s in entry["stages"]}
    assert entry["outcome"] == "planned" and {s["outcome"] for s in stages.values()} == {"planned"}
    assert stages["build"]["detail"] == "make assets" and "./migrate.sh" in stages["migrate"]["detail"]
    assert github_api.deployments == [] and shop.releases() == []


def test_unlock_with_nothing_locked_says_so(cli, shop):
    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    r = cli("deploy", "unlock", "shop")
    assert r.exit_code == 2 and "no deploy lock" in r.stderr


# ================================================================ the lock on its own


def test_the_database_lock_is_all_or_nothing(ctx):
    from vpsagent import errors
    from vpsagent.services.deploy import _unlock_db, lock

    lock(ctx, "shop", ["a", "b"], "alice@host pid 1", "/srv/shop")
    with pytest.raises(errors.Busy) as exc:
        lock(ctx, "shop", ["c", "b"], "bob@host pid 2", "/srv/shop")
    assert "alice@host pid 1" in exc.value.message and exc.value.exit_code == 75
    lock(ctx, "other", ["b"], "bob@host pid 2", "/srv/other")  # another app: its own lock
    assert _unlock_db(ctx, "shop", ["c"]) == 0  # the refused attempt took nothing
    assert _unlock_db(ctx, "shop", ["a", "b"], "alice@host pid 1") == 2
    lock(ctx, "shop", ["c", "b"], "bob@host pid 2", "/srv/shop")


# ================================================================ pieces


def test_config_defaults_and_every_key():
    cfg, problems = parse_config("app: shop\n")
    assert problems == [] and cfg is not None
    assert (cfg.path, cfg.environment, cfg.keep_releases, cfg.source, cfg.canary) == ("/srv/shop", "production", 5,
                                                                                       "archive", 0)
    text = ("app: shop\nshared: [.env, storage/, a/b/c.txt]\nenv: {A: 1, B: true}\nbatch: {serial: 3, max_fail: 1}\n"
            "hooks: {before: x, on_failure: [y, z]}\nhealth: {plan: ops/health.yaml}\n")
    cfg, problems = parse_config(text)
    assert problems == [] and cfg is not None
    assert cfg.shared_files == [".env", "a/b/c.txt"] and cfg.shared_dirs == ["storage"]
    assert cfg.env == {"A": "1", "B": "true"} and (cfg.serial, cfg.max_fail) == (3, 1)
    assert cfg.hooks == {"before": ["x"], "on_failure": ["y", "z"]} and cfg.health_plan_path == "ops/health.yaml"


@pytest.mark.parametrize(("text", "where", "words"), [
    ("app: list\n", (1, 6), "subcommand"),
    ("app: shop\nshared: [../etc/passwd]\n", (2, 10), "inside the release"),
    ("app: shop\npath: /\n", (2, 7), "directory of its own"),
    ("app: shop\nenv: {bad-name: 1}\n", (2, 7), "variable name"),
    ("app: shop\nhooks: {later: [x]}\n", (2, 9), "unknown hook"),
    ("app: shop\nsource: svn\n", (2, 9), "source"),
    ("servers: [a]\n", (1, 1), "app"),
])
def test_config_problems_are_where_they_were_written(text, where, words):
    cfg, problems = parse_config(text, "deploy.yml")
    assert cfg is None
    assert any((p.line, p.col) == where and words in p.message for p in problems), problems


def test_batches_put_the_canary_first_then_serial():
    names = ["a", "b", "c", "d", "e"]
    assert batches(names, 0, None) == [names]
    assert batches(names, 1, None) == [["a"], ["b", "c", "d", "e"]]
    assert batches(names, 2, 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert batches(["a"], 1, None) == [["a"]]


def _sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)


def test_snippets_with_a_hostile_path(tmp_path):
    base = str(tmp_path / "it's a $HOME `x` dir")
    r = _sh(sh.open_app(base, "me@here pid 1"))
    assert r.returncode == 0, r.stderr
    resolved = r.stdout.splitlines()[0]
    assert Path(resolved) == Path(base).resolve()
    assert _sh(sh.open_app(base, "you")).returncode == 75  # the lock is held
    for name in ("20260101T000000Z-aaaaaaa", "20260102T000000Z-bbbbbbb", "20260103T000000Z-ccccccc"):
        os.makedirs(f"{resolved}/releases/{name}")
    assert _sh(sh.switch(resolved, "20260102T000000Z-bbbbbbb")).returncode == 0
    listed, current = sh.parse_releases(_sh(sh.list_releases(resolved)).stdout)
    assert current == "20260102T000000Z-bbbbbbb" and len(listed) == 3
    # only names of the release pattern can be removed, whatever is asked
    assert sh.remove_releases(resolved, ["../../x", "*", ""]) is None
    assert _sh(sh.remove_releases(resolved, ["20260101T000000Z-aaaaaaa"]) or "false").returncode == 0
    assert sorted(os.listdir(f"{resolved}/releases")) == ["20260102T000000Z-bbbbbbb", "20260103T000000Z-ccccccc"]
    assert _sh(sh.release_lock(base)).returncode == 0
    assert _sh(sh.open_app(base, "you")).returncode == 0


def test_env_file_round_trips_hostile_values(tmp_path):
    values = {"A": "it's $HOME `id` \"q\"", "B": "line1\nline2", "C": ""}
    f = tmp_path / ".vpsagent.env"
    f.write_bytes(sh.env_file(values))
    r = _sh(f'set -a; . {f}; printf "%s|" "$A" "$B" "$C"')
    assert r.stdout == "it's $HOME `id` \"q\"|line1\nline2||"


def test_release_names_sort_by_time():
    from vpsagent.services.deploy import release_name

    name = release_name("0123456789abcdef")
    assert re.fullmatch(r"\d{8}T\d{6}Z-0123456", name) and sh.RELEASE_RE.match(name)


def test_stored_results_are_plain_json(cli, shop, engine):
    import sqlalchemy as sa

    shop.commit("v1")
    assert shop.deploy(cli).exit_code == 0
    with engine.connect() as conn:
        results = conn.execute(sa.text("SELECT results FROM deploys")).scalar()
    data = json.loads(results) if isinstance(results, str) else results
    assert data["t1"]["outcome"] == "deployed" and [s["name"] for s in data["t1"]["stages"]][:2] == ["lock", "fetch"]


def test_rekey_carries_deploy_secrets_across(cli, home, monkeypatch):
    old = {"VPSAGENT_SECRET": "old-secret-0123456789abc"}
    new = {"VPSAGENT_SECRET": "new-secret-0123456789xyz"}
    assert cli("deploy", "secret", "set", "shop", "TOKEN", input="tok-value-0123456789\n", env=old).exit_code == 0
    r = cli("secret", "rekey", "--json", env={**old, "VPSAGENT_NEW_SECRET": new["VPSAGENT_SECRET"]})
    assert r.exit_code == 0, r.stderr
    assert r.json()["data"]["records"] == 1
    from vpsagent.services.context import Context
    from vpsagent.services.deploy import _secrets
    from vpsagent.settings import load_settings

    monkeypatch.setenv("VPSAGENT_SECRET", new["VPSAGENT_SECRET"])
    assert _secrets(Context(load_settings()), "shop", ["TOKEN"]) == {"TOKEN": "tok-value-0123456789"}
