"""Bundle-level fulfillment in the catalog spec: validated, and planned after the item steps it uses."""

from __future__ import annotations

import textwrap

from app.catalog.parse import parse_catalog_file

BUNDLE = textwrap.dedent('''\
    name: "web-stack"
    version: "1.0.0"
    description: "App and database"
    owner: "platform-solutions-team"
    bundle:
      required_items:
        - {catalog_item: "eks-container-app", version: ">=1.0.0"}
        - {catalog_item: "postgres-database", version: ">=1.0.0"}
    presentation:
      bundle_fields:
        - {name: "solution_name", type: "string", required: true}
    fulfillment:
      automation:
        steps:
          - id: "wire"
            type: "HttpPost"
            depends_on: ["eks-container-app.provision_eks_app", "postgres-database.provision_postgres"]
            config:
              url: "https://provisioning.example.com/wire"
              body:
                name: "{{ solution_name }}"
                db: "{{ items.postgres_database.steps.provision_postgres.outputs.connection_string }}"
                team: "{{ requester.team }}"
    ''')


def findings(text: str) -> list[tuple[str, str]]:
    pf = parse_catalog_file("catalog/bundles/web-stack.yaml", text.encode())
    return [(f.code, f.message) for f in pf.findings]


def test_a_bundle_step_may_depend_on_item_steps_and_read_their_outputs():
    assert findings(BUNDLE) == []


def test_bundle_steps_are_checked_like_item_steps():
    bad = BUNDLE.replace('"{{ solution_name }}"', '"{{ solution_nam }}"').replace(
        '"eks-container-app.provision_eks_app"', '"nope"')
    codes = [c for c, _ in findings(bad)]
    assert sorted(codes) == ["PAO031", "PAO034"]
