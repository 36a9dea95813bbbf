"""Renders step configs and ticket templates: Jinja2 sandbox, undefined names are errors.

A template sees exactly what the catalog spec promises: the owner's fields by name,
``requester.user_id/team/email``, ``request.id/created_at``, ``steps.<id>.outputs.<name>``
of its owner's completed steps, and in a bundle's own steps ``items.<item>.steps.<id>.outputs``
(an item's name with hyphens also works with underscores: ``items.redis_cache``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment


class RenderError(Exception):
    """A template could not be rendered; the message names the template and the problem."""


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    # Output goes to JSON bodies, ticket fields and files, never into HTML.
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


@lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    # The same catalog templates render for every request: compile each once.
    return environment().from_string(text)


def render_value(value: Any, variables: dict[str, Any], path: str = "") -> Any:
    """Every string in ``value`` (nested lists and mappings too) rendered over ``variables``."""
    if isinstance(value, str):
        if "{" not in value:
            return value  # no template syntax: nothing to render
        try:
            return _compiled(value).render(variables)
        except jinja2.TemplateError as exc:
            raise RenderError(f"{path or 'template'}: {exc.message or type(exc).__name__}") from None
    if isinstance(value, list):
        return [render_value(v, variables, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: render_value(v, variables, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    return value


def variables(*, fields: dict[str, Any], requester: dict[str, Any], request: dict[str, Any],
              steps: dict[str, dict[str, Any]] | None = None,
              items: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The template scope; ``steps`` maps a local step id to its outputs."""
    scope: dict[str, Any] = dict(fields)
    scope["requester"] = {k: requester.get(k) for k in ("user_id", "team", "email")}
    scope["request"] = {k: request.get(k) for k in ("id", "created_at")}
    if steps is not None:
        scope["steps"] = {sid: {"outputs": outputs} for sid, outputs in steps.items()}
    if items is not None:
        scope["items"] = {}
        for name, item_steps in items.items():
            entry = {"steps": {sid: {"outputs": o} for sid, o in item_steps.items()}}
            scope["items"][name] = entry
            scope["items"].setdefault(name.replace("-", "_"), entry)
    return scope
