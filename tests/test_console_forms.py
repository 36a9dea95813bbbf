"""The request form generated from ``presentation``: inputs, hints, values kept, 422 errors placed."""

from __future__ import annotations

from app.console.forms import build_form, describe_constraints, parse_submission

EKS_FIELDS = [
    {"name": "app_name", "type": "string", "required": True, "max_length": 50, "min_length": 3,
     "regexp": "^[a-z][a-z0-9-]*$", "help_text": "Application name"},
    {"name": "environment", "type": "selection", "oneof": ["dev", "staging", "prod"], "required": True},
    {"name": "replicas", "type": "integer", "min_value": 1, "max_value": 10, "default": 2},
    {"name": "token", "type": "secret", "label": "Deploy token"},
    {"name": "zones", "type": "multiselect", "oneof": ["a", "b", "c"]},
    {"name": "extra", "type": "json", "default": {"k": 1}},
    {"name": "public", "type": "boolean", "default": False, "order": 1},
]


def by_name(form, name):
    return next(f for f in form.fields if f.name == name)


def test_each_type_becomes_its_input_with_constraints_as_html_attributes():
    form = build_form({"fields": EKS_FIELDS})
    app_name = by_name(form, "fields.app_name")
    assert (app_name.widget, app_name.required, app_name.hint) == ("text", True, "Application name")
    assert app_name.attrs == {"minlength": "3", "maxlength": "50"}
    env = by_name(form, "fields.environment")
    assert env.widget == "select" and env.options == ["dev", "staging", "prod"] and not env.multiple
    replicas = by_name(form, "fields.replicas")
    assert replicas.widget == "number" and replicas.attrs == {"min": "1", "max": "10", "step": "1"}
    assert replicas.value == 2  # the default fills an empty form
    assert by_name(form, "fields.token").widget == "password"
    assert by_name(form, "fields.token").label == "Deploy token"
    assert by_name(form, "fields.zones").multiple
    assert by_name(form, "fields.extra").widget == "textarea"
    assert by_name(form, "fields.extra").value == '{\n  "k": 1\n}'


def test_fields_with_an_order_come_first():
    form = build_form({"fields": EKS_FIELDS})
    assert form.fields[0].name == "fields.public"
    assert [f.name for f in form.fields[1:3]] == ["fields.app_name", "fields.environment"]


def test_422_errors_land_on_their_fields_and_submitted_values_are_kept_but_never_secrets():
    submitted = {"fields.app_name": "Bad_Name", "fields.token": "s3cret"}
    errors = [
        {"path": "/fields/app_name", "code": "regexp", "message": "must match ^[a-z][a-z0-9-]*$"},
        {"path": "fields.environment", "code": "required", "message": "is required"},
        {"path": "/bundle_fields/solution_name", "code": "required", "message": "is required"},
        {"path": "/items", "code": "conflict", "message": "redis-cache needs postgres"},
    ]
    form = build_form({"fields": EKS_FIELDS, "bundle_fields": [{"name": "solution_name", "type": "string"}]},
                      submitted=submitted, errors=errors)
    assert by_name(form, "fields.app_name").errors == ["must match ^[a-z][a-z0-9-]*$"]
    assert by_name(form, "fields.app_name").value == "Bad_Name"
    assert by_name(form, "fields.environment").errors == ["is required"]
    assert by_name(form, "bundle_fields.solution_name").errors == ["is required"]
    assert by_name(form, "fields.token").value is None
    assert form.errors == ["/items: redis-cache needs postgres"] and form.has_errors


def test_an_error_path_naming_only_the_field_finds_it_when_unambiguous():
    form = build_form({"fields": EKS_FIELDS}, errors=[{"path": "replicas", "message": "too many"}])
    assert by_name(form, "fields.replicas").errors == ["too many"] and not form.errors


def test_submission_is_typed_and_bad_numbers_or_json_are_reported_on_their_field():
    values, problems = parse_submission({"fields": EKS_FIELDS}, {
        "fields.app_name": "web", "fields.environment": "dev", "fields.replicas": "3",
        "fields.zones": ["a", "c"], "fields.extra": '{"x": [1]}', "fields.public": "on"})
    assert values == {"fields": {"app_name": "web", "environment": "dev", "replicas": 3,
                                 "zones": ["a", "c"], "extra": {"x": [1]}, "public": True}}
    assert problems == []
    values, problems = parse_submission({"fields": EKS_FIELDS},
                                        {"fields.replicas": "three", "fields.extra": "{"})
    assert values["fields"] == {"public": False}
    assert [p["path"] for p in problems] == ["fields.replicas", "fields.extra"]


def test_constraints_in_words():
    assert describe_constraints(EKS_FIELDS[2]) == "≥ 1; ≤ 10; default 2"


def test_a_bundle_form_places_errors_on_member_item_fields_and_keeps_unticked_boxes_unticked():
    sections = {"bundle_parameters": [{"name": "solution_name", "type": "string"}],
                "item_parameters.redis-cache": [{"name": "enabled", "type": "boolean", "default": True},
                                                {"name": "replicas", "type": "integer"}],
                "item_parameters.redis": [{"name": "replicas", "type": "integer"}]}
    submitted = {"bundle_parameters.solution_name": "x"}  # the box left unticked: not posted
    form = build_form(sections, submitted=submitted, errors=[
        {"path": "item_parameters.redis-cache.replicas", "code": "max_value", "message": "too many"},
        {"path": "item_parameters.redis.replicas", "code": "min_value", "message": "too few"}])
    assert by_name(form, "item_parameters.redis-cache.replicas").errors == ["too many"]
    assert by_name(form, "item_parameters.redis.replicas").errors == ["too few"]
    assert by_name(form, "item_parameters.redis-cache.enabled").value is False
    assert by_name(build_form(sections), "item_parameters.redis-cache.enabled").value is True
