"""Completion names read without SQLAlchemy (db/lookup.py), on SQLite and PostgreSQL alike,
and through click's completion protocol in-process."""

from __future__ import annotations

import os

from vpsagent.db import lookup


def test_names_tags_and_conversations_on_each_backend(cli, settings, engine) -> None:
    for name, tags in (("web1", ("web", "prod")), ("db1", ("db",))):
        args = [a for t in tags for a in ("-t", t)]
        assert cli("servers", "add", name, "--host", "192.0.2.1", *args).exit_code == 0
    url = settings.database_url
    assert lookup.server_names(url) == ["local", "db1", "web1"]
    assert lookup.tags(url) == ["db", "prod", "web"]
    assert lookup.conversations(url) == []


def test_a_missing_or_unreadable_database_offers_nothing(tmp_path) -> None:
    missing = tmp_path / "none.db"
    assert lookup.server_names(f"sqlite:///{missing}") == ["local"]
    assert not missing.exists()  # a Tab never creates a database
    assert lookup.tags("postgresql://nobody@127.0.0.1:1/none") == []


def test_the_completion_protocol_filters_by_prefix(cli, home, monkeypatch) -> None:
    assert cli("servers", "add", "web1", "--host", "192.0.2.1", "-t", "web").exit_code == 0
    assert cli("servers", "add", "db1", "--host", "192.0.2.2").exit_code == 0
    monkeypatch.setitem(os.environ, "_VPSAGENT_COMPLETE", "bash_complete")
    for words, expected in (("vpsagent ssh w", {"web1"}), ("vpsagent run -t w", {"web"}),
                            ("vpsagent servers show ", {"local", "web1", "db1"})):
        monkeypatch.setitem(os.environ, "COMP_WORDS", words)
        monkeypatch.setitem(os.environ, "COMP_CWORD", str(len(words.split(" ")) - 1))
        r = cli()
        assert r.exit_code == 0, r.stderr
        assert {line.split(",", 1)[1] for line in r.stdout.splitlines()} == expected, words
