"""`{{ name }}` substitution for test plans.

Deliberately tiny: a plan is a public contract read by people and CI, so there are
no expressions, filters or code — only variable names. An unknown name is a
validation error (schema.py), never an empty string at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from vpsagent.jsondata import JSON

# `{{` ... `}}` with anything inside; the inside is checked separately so that
# `{{ a b }}` is reported as a bad reference instead of being left in the text.
_REF = re.compile(r"\{\{(.*?)\}\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TemplateError(ValueError):
    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable  # the undefined variable, when that is the problem


def references(text: str) -> list[str]:
    """Variable names used in `text`, in order; raises TemplateError on a bad `{{ }}`."""
    names = []
    for m in _REF.finditer(text):
        inner = m.group(1).strip()
        if not _NAME.fullmatch(inner):
            raise TemplateError(f"bad variable reference {m.group(0)!r}: use {{{{ name }}}}")
        names.append(inner)
    return names


def has_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def render(text: str, context: Mapping[str, object]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        if name not in context:
            raise TemplateError(f"undefined variable {name!r}", variable=name)
        value = context[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _REF.sub(sub, text)


def render_tree(value: JSON, context: Mapping[str, object]) -> JSON:
    """Render every string inside dicts/lists (keys stay as written)."""
    if isinstance(value, str):
        return render(value, context) if "{{" in value else value
    if isinstance(value, list):
        return [render_tree(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render_tree(v, context) for k, v in value.items()}
    return value
