"""`vpsagent cp we<Tab>` in a real bash: server names and local paths together.

Found by a new-user walkthrough: click's bash script drops every other candidate when one
is of type "file", so `cp` completed local files only. (Fixtures from the acceptance file.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.everyday.test_everyday_acceptance import Vps, _show, fleet, vps  # noqa: F401 - fixtures


def _bash_complete(fleet: Vps, tmp_path: Path, words: list[str]) -> set[str]:  # noqa: F811
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "vpsagent"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m vpsagent \"$@\"\n")
    wrapper.chmod(0o755)
    (tmp_path / "vpsagent.bash").write_text(fleet.ok("completion", "bash").stdout.decode())
    line = " ".join(words)
    driver = f"""
source {tmp_path / 'vpsagent.bash'}
fn=$(complete -p vpsagent | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')
COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
"$fn" vpsagent {words[-1]} {words[-2]}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = dict(fleet.env, PATH=f"{bindir}{os.pathsep}{fleet.env.get('PATH', '')}")
    r = subprocess.run(["bash", "-c", driver], capture_output=True, env=env, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, _show(r)
    return set(r.stdout.decode().split())


def test_cp_completes_servers_and_local_paths_in_bash(fleet: Vps, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "weather.txt").write_text("sunny\n")
    (tmp_path / "webroot").mkdir()
    got = _bash_complete(fleet, tmp_path, ["vpsagent", "cp", "we"])
    assert {"web1:", "web2:"} <= got, got
    assert {"weather.txt", "webroot/"} <= got, got
    assert not any(g.startswith("db1") for g in got)
