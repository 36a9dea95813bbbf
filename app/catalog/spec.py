"""The catalog YAML format as data: one source for the validator, the JSON Schema and the docs.

The shapes here say which keys a mapping may have, which it must have and what type
each value is. Rules that need more than a shape (a default that violates its own
constraints, a template naming an unknown field, step cycles...) live in
``app.catalog.rules``; their codes and summaries are listed in ``RULES`` so the
spec document and the validator cannot drift apart.

The sync engine needs none of this: it asks ``app.catalog.parse`` for a ``ParsedFile``
and stores ``ParsedFile.record()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

# An identifier is what the API uses in URLs and bundles use in references.
IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
# Field names become template variables, so they must be valid Jinja2 names.
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
STEP_ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

MAX_FILE_BYTES = 256 * 1024  # a catalog file is a form and a template, not a data set
MAX_NODES = 20_000  # YAML nodes after alias expansion; stops "billion laughs" files
MAX_DEPTH = 100  # nested mappings and lists; a catalog needs about ten
MAX_FINDINGS_PER_FILE = 100  # more are counted in one closing finding (PAO090)
# PostgreSQL indexes owner (with the name) and the file path; an index entry holds at most
# 2,704 bytes, and one longer value failed the whole sync's transaction.
MAX_OWNER_LENGTH = 200  # characters
MAX_PATH_BYTES = 1024

FIELD_TYPES = ("string", "integer", "number", "boolean", "selection", "multiselect", "secret", "json")
# Constraint keys each field type allows; every other constraint key is an error there.
TYPE_CONSTRAINTS: dict[str, tuple[str, ...]] = {
    "string": ("min_length", "max_length", "regexp"),
    "secret": ("min_length", "max_length", "regexp"),
    "integer": ("min_value", "max_value"),
    "number": ("min_value", "max_value"),
    "boolean": (),
    "selection": ("oneof",),
    "multiselect": ("oneof", "min_items", "max_items"),
    "json": (),
}
ALL_CONSTRAINTS = ("min_length", "max_length", "regexp", "min_value", "max_value", "oneof",
                   "min_items", "max_items")

STEP_TYPES = ("HttpPost", "GitHubWorkflow", "TerraformFile")
MANUAL_SYSTEMS = ("jira", "servicenow", "github", "email")
# Keys a manual template must have, per system (all systems need a summary).
MANUAL_TEMPLATE_KEYS: dict[str, tuple[str, ...]] = {
    "jira": ("summary", "project", "issue_type"),
    "servicenow": ("summary",),
    "github": ("summary", "repository"),
    "email": ("summary", "to"),
}
# What a template may use besides the fields: who asked, and (in steps) earlier outputs.
REQUESTER_ATTRIBUTES = ("user_id", "team", "email")
REQUEST_ATTRIBUTES = ("id", "created_at")


# -- shapes -------------------------------------------------------------------

@dataclass(frozen=True)
class Scalar:
    """A scalar of one JSON type: string, integer, number, boolean, or any (anything at all)."""

    type: str
    enum: tuple[str, ...] = ()
    pattern: str | None = None  # documented as JSON Schema pattern
    min_length: int | None = None
    max_length: int | None = None  # characters


@dataclass(frozen=True)
class ListOf:
    item: Shape
    min_items: int = 0


@dataclass(frozen=True)
class MapOf:
    """A mapping with free (string) keys, all values of one shape."""

    value: Shape


@dataclass(frozen=True)
class Key:
    shape: Shape
    doc: str
    required: bool = False


@dataclass(frozen=True)
class Obj:
    """A mapping with known keys; any other key is an unknown-key finding."""

    title: str
    keys: dict[str, Key] = field(default_factory=dict)


Shape = Union[Scalar, ListOf, MapOf, Obj]  # noqa: UP007 (forward references in a runtime alias)

STRING = Scalar("string")
NONEMPTY = Scalar("string", min_length=1)
INTEGER = Scalar("integer")
NUMBER = Scalar("number")
BOOLEAN = Scalar("boolean")
ANY = Scalar("any")

FIELD = Obj("field", {
    "name": Key(Scalar("string", pattern=FIELD_NAME_RE.pattern), "Variable name: lowercase letters, "
                "digits and underscores, starting with a letter; used in templates.", True),
    "type": Key(Scalar("string", enum=FIELD_TYPES), "One of " + ", ".join(FIELD_TYPES) + ".", True),
    "label": Key(NONEMPTY, "What the portal shows; defaults to the name."),
    "help_text": Key(STRING, "One line of help under the input."),
    "placeholder": Key(STRING, "Greyed example text inside an empty input."),
    "order": Key(INTEGER, "Sort key in the form; fields without one keep file order, after those with."),
    "required": Key(BOOLEAN, "The request is rejected without a value (default false)."),
    "default": Key(ANY, "Value used when the requester gives none; must satisfy the constraints. "
                   "Not allowed for secret fields."),
    "min_length": Key(INTEGER, "string, secret: shortest allowed length."),
    "max_length": Key(INTEGER, "string, secret: longest allowed length."),
    "regexp": Key(STRING, "string, secret: Python regular expression the whole value must match."),
    "min_value": Key(NUMBER, "integer, number: smallest allowed value."),
    "max_value": Key(NUMBER, "integer, number: largest allowed value."),
    "oneof": Key(ListOf(ANY), "selection, multiselect: the allowed choices (non-empty, distinct)."),
    "min_items": Key(INTEGER, "multiselect: fewest choices."),
    "max_items": Key(INTEGER, "multiselect: most choices."),
})

HEADER_KEYS: dict[str, Key] = {
    "name": Key(NONEMPTY, "Identifier (lowercase letters, digits, hyphens; starts with a letter; "
                "at most 63 characters). A human title here is accepted with a warning: the "
                "identifier is then the file name.", True),
    "version": Key(Scalar("string", pattern=SEMVER_RE.pattern),
                   "Semantic version, quoted: \"1.2.0\". Bump it with every change.", True),
    "description": Key(NONEMPTY, "One or two sentences.", True),
    "owner": Key(Scalar("string", min_length=1, max_length=MAX_OWNER_LENGTH),
                 "The team that fulfils requests.", True),
    "display_name": Key(NONEMPTY, "Human title shown by portals; defaults to the name."),
    "tags": Key(ListOf(NONEMPTY), "Search tags."),
}

TEMPLATE_VALUE = MapOf(ANY)

MANUAL = Obj("manual fulfillment", {
    "system": Key(Scalar("string", enum=MANUAL_SYSTEMS), "Ticket system: "
                  + ", ".join(MANUAL_SYSTEMS) + ".", True),
    "template": Key(TEMPLATE_VALUE, "Ticket fields; every string is a Jinja2 template over the "
                    "fields and requester.user_id/team/email. jira needs summary, project, "
                    "issue_type; servicenow summary; github summary, repository; email summary, to.",
                    True),
})

STEP_CONFIGS: dict[str, Obj] = {
    "HttpPost": Obj("HttpPost config", {
        "url": Key(NONEMPTY, "Endpoint (template).", True),
        "headers": Key(MapOf(STRING), "Extra request headers (templates)."),
        "body": Key(ANY, "JSON body; strings are templates."),
        "timeout": Key(NUMBER, "Seconds before the step fails."),
    }),
    "GitHubWorkflow": Obj("GitHubWorkflow config", {
        "repository": Key(NONEMPTY, "owner/name of the repository holding the workflow.", True),
        "workflow": Key(NONEMPTY, "Workflow file name or id, e.g. deploy.yml.", True),
        "ref": Key(NONEMPTY, "Branch or tag to run on (default: the default branch)."),
        "inputs": Key(MapOf(ANY), "workflow_dispatch inputs (templates; sent as strings, at most 24: "
                      "PAO adds pao_step_id)."),
    }),
    "TerraformFile": Obj("TerraformFile config", {
        "repository": Key(NONEMPTY, "owner/name of the infrastructure repository.", True),
        "path": Key(NONEMPTY, "File to write, e.g. stacks/{{ app_name }}/main.tf (template).", True),
        "template": Key(NONEMPTY, "File content (template).", True),
        "branch": Key(NONEMPTY, "Target branch (default: the default branch)."),
        "mode": Key(Scalar("string", enum=("pull_request", "commit")),
                    "pull_request (default): a branch and a pull request; commit: straight to the branch."),
    }),
}

STEP = Obj("automation step", {
    "id": Key(Scalar("string", pattern=STEP_ID_RE.pattern), "Step id, unique in the item.", True),
    "name": Key(NONEMPTY, "Human name."),
    "type": Key(Scalar("string", enum=STEP_TYPES), "One of " + ", ".join(STEP_TYPES) + ".", True),
    "config": Key(MapOf(ANY), "Type-specific settings (see below); strings are templates that may "
                  "also use steps.<id>.outputs.<name> of the steps it depends on.", True),
    "depends_on": Key(ListOf(STRING), "Ids of steps that must complete first."),
    "outputs": Key(ListOf(Scalar("string", pattern=FIELD_NAME_RE.pattern)),
                   "Names of the values the step produces."),
    "on_failure": Key(Scalar("string", enum=("fail", "manual")),
                      "fail (default) or manual: open the manual ticket instead."),
})

FULFILLMENT = Obj("fulfillment", {
    "manual": Key(MANUAL, "Open a ticket. Required when automation is absent or a step "
                  "falls back to manual."),
    "automation": Key(Obj("automation", {
        "steps": Key(ListOf(STEP, min_items=1), "Steps; run in dependency order.", True),
    }), "Steps the service runs."),
})

ITEM = Obj("catalog item", {
    **HEADER_KEYS,
    "presentation": Key(Obj("presentation", {
        "fields": Key(ListOf(FIELD), "The request form."),
    }), "What the portal asks the requester."),
    "fulfillment": Key(FULFILLMENT, "How a request is fulfilled: manual, automation or both.", True),
})

BUNDLE_ITEM_KEYS = {
    "catalog_item": Key(Scalar("string", pattern=IDENTIFIER_RE.pattern),
                        "Identifier of an existing item.", True),
    "version": Key(NONEMPTY, "Version constraint: >=1.2.0, <2.0.0, =1.0.0, ^1.2.0, ~1.2.0, * "
                   "(comma-separate to combine).", True),
    "parameters": Key(MapOf(ANY), "Fixed values for the item's fields."),
}

BUNDLE = Obj("bundle", {
    **HEADER_KEYS,
    "bundle": Key(Obj("bundle contents", {
        "required_items": Key(ListOf(Obj("required item", dict(BUNDLE_ITEM_KEYS))),
                              "Items always requested."),
        "optional_items": Key(ListOf(Obj("optional item", {
            **BUNDLE_ITEM_KEYS,
            "default_enabled": Key(BOOLEAN, "Pre-selected in the form (default false)."),
        })), "Items the requester may add."),
    }), "The items the bundle combines (at least one).", True),
    "presentation": Key(Obj("bundle presentation", {
        "bundle_fields": Key(ListOf(FIELD), "Fields asked once for the whole bundle."),
    }), "The bundle's own form."),
    "fulfillment": Key(FULFILLMENT, "The bundle's own steps, run after the items' steps they "
                       "depend on (depends_on: [<item>.<step>]); templates see the bundle fields and "
                       "items.<item>.steps.<id>.outputs.<name> (hyphens in <item> may be written _)."),
})


# -- rules --------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    summary: str


RULES: tuple[Rule, ...] = (
    Rule("PAO001", "error", "The file, or its name, is not valid UTF-8."),
    Rule("PAO002", "error", f"The file is larger than {MAX_FILE_BYTES // 1024} KiB."),
    Rule("PAO003", "error", "The file is not valid YAML (or holds more than one document)."),
    Rule("PAO004", "error", "The document is not a mapping."),
    Rule("PAO005", "error", f"The document holds more than {MAX_NODES} values, aliases expand it "
         f"beyond that, an alias refers to itself, or it nests deeper than {MAX_DEPTH} levels."),
    Rule("PAO006", "error", "A mapping has the same key twice (YAML would keep only the last)."),
    Rule("PAO007", "error", "A mapping key is not a plain string (numbers, null, merge keys '<<')."),
    Rule("PAO008", "error", "A value has an explicit tag PAO does not support (e.g. !!binary, !custom)."),
    Rule("PAO009", "error", "A string holds the NUL character (\\0), which cannot be stored."),
    Rule("PAO010", "error", "A required key is missing."),
    Rule("PAO011", "error", "A value has the wrong type."),
    Rule("PAO012", "error", "Unknown key (the message suggests the closest known key)."),
    Rule("PAO013", "error", "An identifier (name, field name, step id, output) is malformed."),
    Rule("PAO014", "error", "The version is not a semantic version such as \"1.2.0\"."),
    Rule("PAO015", "warning", "name is a human title; the identifier comes from the file name."),
    Rule("PAO016", "error", "name is a title and the file name is not a valid identifier either."),
    Rule("PAO017", "error", "A value is not one of the allowed choices."),
    Rule("PAO018", "error", "A string or list is empty where a value is needed."),
    Rule("PAO019", "warning", "A tag is listed twice."),
    Rule("PAO020", "error", "Two fields have the same name."),
    Rule("PAO021", "error", "A constraint does not apply to the field's type."),
    Rule("PAO022", "error", "A minimum is greater than its maximum (or a bound is negative)."),
    Rule("PAO023", "error", "regexp does not compile, or backtracks without end on its default."),
    Rule("PAO024", "error", "oneof is missing, empty or has duplicates on a selection/multiselect."),
    Rule("PAO025", "error", "default violates the field's own type or constraints."),
    Rule("PAO026", "error", "A secret field has a default (secrets never live in the catalog)."),
    Rule("PAO027", "error", f"A value is longer than PAO can store (owner: {MAX_OWNER_LENGTH} "
         f"characters), or the file's path is longer than {MAX_PATH_BYTES} bytes."),
    Rule("PAO030", "error", "A template is not valid Jinja2."),
    Rule("PAO031", "error", "A template uses a variable that no field defines."),
    Rule("PAO032", "error", "fulfillment has neither manual nor automation."),
    Rule("PAO033", "error", "Two steps have the same id."),
    Rule("PAO034", "error", "depends_on names an unknown step (or the step itself)."),
    Rule("PAO035", "error", "Steps depend on each other in a cycle."),
    Rule("PAO036", "error", "on_failure: manual without fulfillment.manual."),
    Rule("PAO037", "error", "A manual template lacks a key its system needs."),
    Rule("PAO038", "warning", "A template reads a step's output without depending on that step."),
    Rule("PAO040", "error", "Two files declare the same identifier (the later path is reported)."),
    Rule("PAO041", "error", "A bundle names an item that does not exist."),
    Rule("PAO042", "error", "A bundle's version constraint excludes the item's current version."),
    Rule("PAO043", "error", "A version constraint does not parse."),
    Rule("PAO044", "error", "A bundle sets a parameter the item has no field for."),
    Rule("PAO045", "error", "A bundle lists the same item twice, or no item at all."),
    Rule("PAO050", "error", "A changed item or bundle kept its base version."),
    Rule("PAO051", "error", "The version is lower than the base version."),
    Rule("PAO090", "notice", f"More findings than the first {MAX_FINDINGS_PER_FILE} of a file; "
         "this one counts the rest and carries the worst severity among them."),
    Rule("PAO099", "error", "PAO could not finish checking the file (a library or PAO itself failed "
         "on it); the file is rejected, the others are checked as usual."),
)
RULES_BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}


def shape_for(kind: str) -> Obj:
    """The top-level shape for ``"item"`` or ``"bundle"``."""
    return BUNDLE if kind == "bundle" else ITEM


def describe(shape: Shape) -> str:
    """A short type name for messages: 'a string', 'a list', 'a mapping'..."""
    if isinstance(shape, Scalar):
        return {"string": "a string", "integer": "an integer", "number": "a number",
                "boolean": "true or false", "any": "a value"}[shape.type]
    if isinstance(shape, ListOf):
        return "a list"
    return "a mapping"


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
