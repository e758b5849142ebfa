"""The architecture as tests (docs/architecture.md): layers point down, only the CLI and
the renderer talk to the terminal, only the entry point ends the process."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vpsagent"
# Layers below the CLI: they report through return values and callbacks, never the terminal.
QUIET = ("services", "agent", "plans", "remote", "db", "safety")
TERMINAL_LIBRARIES = ("click", "rich")
TERMINAL_CALLS = {"print", "input", "breakpoint"}
TERMINAL_ATTRS = {("sys", "stdout"), ("sys", "stderr"), ("sys", "stdin"), ("click", "echo"),
                  ("click", "prompt"), ("click", "confirm"), ("click", "secho"), ("getpass", "getpass")}


def _modules(*parts: str) -> list[Path]:
    return sorted(p for part in parts for p in (PACKAGE / part).rglob("*.py"))


def _terminal_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TERMINAL_CALLS:
            found.append(f"{node.func.id}() at line {node.lineno}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and (node.value.id, node.attr) in TERMINAL_ATTRS:
            found.append(f"{node.value.id}.{node.attr} at line {node.lineno}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"import {n} at line {node.lineno}" for n in names
                      if n.split(".")[0] in TERMINAL_LIBRARIES]
    return found


@pytest.mark.parametrize("path", _modules(*QUIET), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_lower_layers_never_touch_the_terminal(path: Path) -> None:
    assert _terminal_uses(path) == [], "print, prompt or write to the terminal in a layer below the CLI"


def test_the_check_itself_finds_a_print(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport click\ndef f():\n    print('x')\n    sys.stdout.write('y')\n")
    assert len(_terminal_uses(bad)) == 3


def test_only_the_entry_point_ends_the_process() -> None:
    allowed = {PACKAGE / "cli" / "__init__.py", PACKAGE / "__main__.py"}
    offenders = []
    for path in _modules("."):
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and (getattr(node.value, "id", None), node.attr) in (
                    ("sys", "exit"), ("os", "_exit"), ("os", "abort")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_import_contracts_hold() -> None:
    """pyproject.toml [tool.importlinter]: cli → render → services → (agent, plans) →
    (remote, db, safety) → (crypto, redact, settings) → (outcomes, secret) → errors."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    p = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert p.returncode == 0, p.stdout[-3000:]
