"""`vpsagent doctor`: paths and settings shown masked, exit 0 only when no check failed."""

from __future__ import annotations


def test_fresh_home_is_healthy_and_shows_paths(cli, home):
    r = cli("doctor", "--json")
    assert r.exit_code == 0, r.stdout
    data = r.json()["data"]
    assert data["paths"]["config dir"] == str(home / "config")
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses["database"] == "ok" and statuses["anthropic api key"] == "warn"


def test_secrets_are_masked(cli):
    env = {"ANTHROPIC_API_KEY": "sk-ant-api03-SECRETSECRET", "VPSAGENT_SECRET": "master-secret-value-xyz",
           "VPSAGENT_SMTP_URL": "smtp://mailer:smtp-pass-123@127.0.0.1:2525?starttls=1",
           "GITHUB_TOKEN": "ghp_tokentokentoken"}
    r = cli("doctor", env=env)
    assert r.exit_code == 0, r.stdout
    for needle in ("SECRETSECRET", "master-secret-value", "smtp-pass-123", "ghp_tokentoken"):
        assert needle not in r.stdout + r.stderr
    assert "127.0.0.1:2525 (STARTTLS)" in r.stdout


def test_failures_make_exit_1(cli, home):
    r = cli("doctor", env={"VPSAGENT_SMTP_URL": "http://not-smtp"})
    assert r.exit_code == 1 and "FAIL  smtp" in r.stdout
    r = cli("doctor", "--json", env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/none"})
    assert r.exit_code == 1 and r.json()["errors"][0]["code"] == "check_failed"
    # a wrong secret for existing credentials is reported, not crashed on
    assert cli("servers", "add", "a", "--host", "h", "--password-stdin", input="pw\n",
               env={"VPSAGENT_SECRET": "first-secret-0123456789"}).exit_code == 0
    r = cli("doctor", env={"VPSAGENT_SECRET": "other-secret-0123456789"})
    assert r.exit_code == 1 and "FAIL  credentials" in r.stdout


def test_a_broken_config_file_is_reported_not_fatal(cli, home):
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "config.toml").write_text("modle = 'typo'\n")
    r = cli("doctor")
    assert r.exit_code == 1 and "FAIL  config" in r.stdout and "modle" in r.stdout
    (home / "config" / "config.toml").unlink()
    (home / "config" / "policy.yaml").write_text("rules: []\n")
    r = cli("doctor")
    assert r.exit_code == 1 and "FAIL  policy" in r.stdout
