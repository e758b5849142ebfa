"""Confirmation prompts: only ever on a TTY, and never under --json."""

from __future__ import annotations

import sys

import click

from vpsagent.cli._common import App


def can_prompt(app: App) -> bool:
    return (not app.out.json_mode and sys.stdin is not None and sys.stdin.isatty()
            and sys.stderr is not None and sys.stderr.isatty())


def confirm(app: App, question: str) -> bool:
    """Ask on the terminal; without one the answer is no (the caller says what to do instead)."""
    if not can_prompt(app):
        return False
    return click.confirm(question, default=False, err=True)
