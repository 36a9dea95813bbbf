#!/usr/bin/env python3
"""Refresh tests/fakes/webhook-examples.json from GitHub's published webhook examples.

The examples ship in the npm package ``@octokit/webhooks-examples`` (payloads GitHub
really sent, per event and action). This script fetches it with ``npm pack`` (or reads
``--source``: the package tarball or its ``api.github.com/index.json``) and keeps one
example per (event, action) for the events PAO handles (``EVENTS``). The GitHub fake
builds every webhook payload from these, so it sends only events, actions and fields
GitHub sends.

Add an event to ``EVENTS`` when PAO starts handling it, then run:
    python scripts/refresh_webhook_examples.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from npm_json import load_package_json

PACKAGE = "@octokit/webhooks-examples"
MEMBER = "package/api.github.com/index.json"
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "webhook-examples.json"

# Events PAO handles (or may soon) -> the actions worth a copy; None: every action.
EVENTS: dict[str, tuple[str, ...] | None] = {
    "push": None,
    "ping": None,
    "pull_request": ("opened", "synchronize", "reopened", "closed", "edited"),
    "check_suite": None,
    "check_run": None,
    "star": None,
    "watch": None,
    "issues": ("opened", "closed", "edited", "transferred"),
    "workflow_run": None,
    "installation": None,
    "installation_repositories": None,
}


def load_examples(source: str | None) -> list[dict[str, Any]]:
    return load_package_json(PACKAGE, MEMBER, source)


def select(examples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{event: {action or "": first example}} for ``EVENTS``."""
    chosen: dict[str, dict[str, Any]] = {}
    for entry in examples:
        wanted = EVENTS.get(entry["name"], ())
        if wanted == ():
            continue
        per_action = chosen.setdefault(entry["name"], {})
        for example in entry["examples"]:
            action = example.get("action") or ""
            if (wanted is None or action in wanted) and action not in per_action:
                per_action[action] = example
    missing = sorted(set(EVENTS) - set(chosen))
    if missing:
        raise SystemExit(f"{PACKAGE} has no examples for: {', '.join(missing)}")
    return {event: dict(sorted(chosen[event].items())) for event in sorted(chosen)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="the package tarball or its api.github.com/index.json")
    args = parser.parse_args()
    selected = select(load_examples(args.source))
    OUTPUT.write_text(json.dumps(selected, indent=1, sort_keys=True) + "\n")
    counts = ", ".join(f"{event} {len(actions)}" for event, actions in selected.items())
    print(f"wrote {OUTPUT.name}: {counts}")


if __name__ == "__main__":
    main()
