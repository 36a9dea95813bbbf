"""Template rendering for steps and tickets: sandboxed, strict about undefined names."""

from __future__ import annotations

import pytest

from app.requests.render import RenderError, render_value, variables

SCOPE = variables(fields={"app_name": "shop", "zones": ["a", "b"]},
                  requester={"user_id": "sarah-123", "team": "cx", "email": None},
                  request={"id": "req-1", "created_at": "2026-11-30T10:00:00+00:00"},
                  steps={"create": {"endpoint": "https://shop"}},
                  items={"postgres-database": {"provision": {"dsn": "postgresql://db"}}})


def test_nested_configs_render_every_string_over_the_promised_variables():
    config = {"url": "https://x/{{ app_name }}", "body": {"who": "{{ requester.user_id }}",
                                                         "list": ["{{ zones | join(',') }}", 3],
                                                         "req": "{{ request.id }}"},
              "ep": "{{ steps.create.outputs.endpoint }}",
              "db": "{{ items.postgres_database.steps.provision.outputs.dsn }}",
              "db2": "{{ items['postgres-database'].steps.provision.outputs.dsn }}"}
    assert render_value(config, SCOPE) == {
        "url": "https://x/shop", "body": {"who": "sarah-123", "list": ["a,b", 3], "req": "req-1"},
        "ep": "https://shop", "db": "postgresql://db", "db2": "postgresql://db"}


def test_an_undefined_name_is_an_error_naming_where_it_is():
    with pytest.raises(RenderError) as exc:
        render_value({"body": {"x": "{{ steps.create.outputs.missing }}"}}, SCOPE)
    assert str(exc.value).startswith("body.x:") and "missing" in str(exc.value)


def test_the_sandbox_refuses_to_reach_python_internals():
    with pytest.raises(RenderError) as exc:
        render_value("{{ app_name.__class__.__mro__[1].__subclasses__() }}", SCOPE)
    assert "access to attribute '__class__' of 'str' object is unsafe" in str(exc.value)
