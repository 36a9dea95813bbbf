#!/usr/bin/env python3
"""Refresh tests/fakes/openapi/github-subset.json from GitHub's official OpenAPI description.

The description ships in the npm package ``@octokit/openapi``; this script fetches it
with ``npm pack`` (or reads ``--source``: the package tarball or its
``api.github.com.json``), keeps only the operations PAO calls (``OPERATIONS``),
and writes them with every schema they reference, as plain JSON Schema
(OpenAPI 3.0's ``nullable`` becomes a ``null`` type; descriptions and examples
are dropped). ``tests/fakes/openapi_check.py`` validates requests against it.

Add an operation to ``OPERATIONS`` when PAO starts calling it, then run:
    python scripts/refresh_github_openapi.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from npm_json import load_package_json

PACKAGE = "@octokit/openapi"
MEMBER = "package/generated/api.github.com.json"
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "openapi" / "github-subset.json"
SUBSET_ID = "urn:pao:github-openapi-subset"

# "METHOD /path" of every GitHub operation PAO (or the fake's tests) calls.
OPERATIONS = [
    "GET /app",
    "GET /app/hook/deliveries",
    "GET /app/hook/deliveries/{delivery_id}",
    "POST /app/hook/deliveries/{delivery_id}/attempts",
    "GET /app/installations/{installation_id}",
    "POST /app/installations/{installation_id}/access_tokens",
    "GET /installation/repositories",
    "GET /repos/{owner}/{repo}",
    "GET /repos/{owner}/{repo}/installation",
    "GET /users/{username}/starred",
    "POST /repos/{owner}/{repo}/check-runs",
    "GET /repos/{owner}/{repo}/check-runs/{check_run_id}",
    "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
    "GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations",
    "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
    "POST /app-manifests/{code}/conversions",
    "GET /user",
    "GET /user/teams",
    "POST /repos/{owner}/{repo}/issues",
    "GET /repos/{owner}/{repo}/issues",
    "GET /repos/{owner}/{repo}/issues/{issue_number}",
    # Service request steps GitHubWorkflow and TerraformFile (app/requests/steps/).
    "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
    "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
    "GET /repos/{owner}/{repo}/actions/runs",
    "GET /repos/{owner}/{repo}/actions/runs/{run_id}",
    "POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
    "GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
    "GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}",
    "GET /repos/{owner}/{repo}/contents/{path}",
    "PUT /repos/{owner}/{repo}/contents/{path}",
    "GET /repos/{owner}/{repo}/git/ref/{ref}",
    "POST /repos/{owner}/{repo}/git/refs",
    "GET /repos/{owner}/{repo}/pulls",
    "POST /repos/{owner}/{repo}/pulls",
    "GET /repos/{owner}/{repo}/pulls/{pull_number}",
    # Cancelling a request whose TerraformFile pull request is open: comment, close, delete the branch.
    "PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
    "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
    "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    "DELETE /repos/{owner}/{repo}/git/refs/{ref}",
    "GET /repos/{owner}/{repo}/commits/{ref}/check-suites",
    # Missed-delivery recovery in token mode (app/deliveries/hooks.py): a repository's or an
    # organisation's webhook, found by its URL, its delivery log and redelivery.
    "GET /repos/{owner}/{repo}/hooks",
    "GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries",
    "POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
    "GET /orgs/{org}/hooks",
    "GET /orgs/{org}/hooks/{hook_id}/deliveries",
    "POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
]

# Operations GitHub serves but leaves out of its description, each checked as a documented one
# answering in the same shape, with its own path parameters. ``GET /repositories/{id}`` is the
# repository by its id (where GitHub redirects a renamed repository's old URL); the periodic
# mirror refresh reads names by it (app/mirror/identity.py).
UNDOCUMENTED = {
    "GET /repositories/{repository_id}": (
        "GET /repos/{owner}/{repo}",
        [{"name": "repository_id", "in": "path", "required": True, "schema": {"type": "integer"}}]),
}

# Schema keywords that only document; dropping them keeps the subset small.
_ANNOTATIONS = {"description", "example", "examples", "externalDocs", "x-github", "deprecated",
                "readOnly", "writeOnly", "title", "default"}
_SCHEMA_MAPS = ("properties", "patternProperties")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONE = ("items", "additionalProperties", "not")


def load_description(source: str | None) -> dict[str, Any]:
    return load_package_json(PACKAGE, MEMBER, source)


class Extractor:
    """Copies schemas out of the description, following $refs into ``components``."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.schemas: dict[str, Any] = {}

    def deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.lookup(node["$ref"])
        return node

    def lookup(self, ref: str) -> Any:
        node: Any = self.spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def schema(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            name = ref.rsplit("/", 1)[-1]
            if ref.startswith("#/components/schemas/") and name not in self.schemas:
                self.schemas[name] = {}  # placeholder first: schemas may be recursive
                self.schemas[name] = self.schema(self.lookup(ref))
            return {"$ref": f"#/components/schemas/{name}"}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _ANNOTATIONS or key == "nullable":
                continue
            if key in _SCHEMA_MAPS:
                out[key] = {k: self.schema(v) for k, v in value.items()}
            elif key in _SCHEMA_LISTS:
                out[key] = [self.schema(v) for v in value]
            elif key in _SCHEMA_ONE:
                out[key] = self.schema(value)
            else:
                out[key] = value
        if node.get("nullable"):
            out = _nullable(out)
        return out

    def operation(self, key: str) -> dict[str, Any]:
        method, path = key.split(" ", 1)
        item = self.spec["paths"][path]
        op = item[method.lower()]
        params = []
        for raw in [*item.get("parameters", []), *op.get("parameters", [])]:
            param = self.deref(raw)
            params.append({"name": param["name"], "in": param["in"],
                           "required": bool(param.get("required")),
                           "schema": self.schema(param.get("schema", {}))})
        result: dict[str, Any] = {"operationId": op["operationId"], "parameters": params}
        if "requestBody" in op:
            body = self.deref(op["requestBody"])
            media = body.get("content", {}).get("application/json")
            if media is not None:
                result["requestBody"] = {"required": bool(body.get("required")),
                                         "schema": self.schema(media.get("schema", {}))}
        responses = {}
        for status, raw in op.get("responses", {}).items():
            response = self.deref(raw)
            media = response.get("content", {}).get("application/json")
            if media is not None and "schema" in media:
                responses[status] = self.schema(media["schema"])
        result["responses"] = responses
        return result


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "enum" in schema and None not in schema["enum"]:
        schema = {**schema, "enum": [*schema["enum"], None]}
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def build(spec: dict[str, Any]) -> dict[str, Any]:
    extractor = Extractor(spec)
    operations = {key: extractor.operation(key) for key in OPERATIONS}
    for key, (like, path_params) in UNDOCUMENTED.items():
        documented = extractor.operation(like)
        others = [p for p in documented["parameters"] if p["in"] != "path"]
        operations[key] = {**documented, "operationId": f"{documented['operationId']} (undocumented: {key})",
                           "parameters": [*path_params, *others]}
    return {
        "$id": SUBSET_ID,
        "info": {"source": f"{PACKAGE} (generated/api.github.com.json)",
                 "openapi": spec.get("openapi"), "version": spec.get("info", {}).get("version")},
        "operations": operations,
        "components": {"schemas": dict(sorted(extractor.schemas.items()))},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="the package tarball or api.github.com.json (default: npm pack)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    subset = build(load_description(args.source))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(subset['operations'])} operations, {len(subset['components']['schemas'])} "
          f"schemas to {args.output.name} ({args.output.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
