"""The one test command (issue 11, item 13): the README names it, CI runs it, and it sets up
everything the suite needs on a fresh Debian/Ubuntu machine."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_names_it_and_ci_runs_it() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "```sh\nscripts/test\n```\n\nThat is the test command." in readme
    assert re.search(r"^exec scripts/test\b", (ROOT / ".ci" / "run").read_text(), re.M)
    script = ROOT / "scripts" / "test"
    assert script.stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_it_installs_the_system_parts_the_suite_uses() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    for part in ("openssh-server", "sudo", "bubblewrap", "openssl", "useradd --system", "/run/sshd",
                 "EXTERNALLY-MANAGED", "python3-venv", ".[test]"):
        assert part in script, part


def _imported(node: ast.AST) -> list[str]:
    """Modules an import statement or a `pytest.importorskip("x")` brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "importorskip"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def _third_party_imports() -> set[str]:
    files = list((ROOT / "tests").rglob("*.py"))
    found = {n.split(".")[0] for path in files for node in ast.walk(ast.parse(path.read_text(), str(path)))
             for n in _imported(node)}
    ours = {"tests", "vpsagent", "_typeshed", *(p.stem for p in files)}
    return {m for m in found if m not in sys.stdlib_module_names and m not in ours}


def _requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[\s<>=\[;!~]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_every_library_the_tests_import_is_in_the_test_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"] + project["optional-dependencies"]["test"])
    dists = packages_distributions()
    missing = {}
    for module in _third_party_imports():
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(names)
    assert not missing, f"imported by tests but not in pyproject's test extra: {missing}"
