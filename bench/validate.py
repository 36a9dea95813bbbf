"""Benchmark: validate 1,000 generated catalog files with `pao-cli validate`.

Prints the wall time of the CLI (a fresh process, as a user or CI runs it; goal
under 1 s), the in-process parse + cross-file time, and, side by side, the same
files through `check-jsonschema` with the generated JSON Schemas (shape only; it
knows none of the semantic rules). check-jsonschema is optional:

    pip install check-jsonschema     # into the same environment, or on PATH

Usage: python bench/validate.py [--files N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CATEGORIES = ("databases", "compute", "caching", "observability", "networking")

ITEM = """\
name: "{name}"
version: "1.{n}.0"
description: "Generated item {n}"
owner: "team-{team}"
tags: ["generated", "{category}", "bench"]

presentation:
  fields:
    - name: "resource_name"
      type: "string"
      required: true
      min_length: 3
      max_length: 63
      regexp: "^[a-z][a-z0-9-]*$"
      help_text: "Name of the resource"
    - name: "size"
      type: "selection"
      oneof: ["small", "medium", "large"]
      default: "medium"
      required: true
    - name: "replicas"
      type: "integer"
      min_value: 1
      max_value: 10
      default: 2
    - name: "public"
      type: "boolean"
      default: false

fulfillment:
  automation:
    steps:
      - id: "provision"
        type: "TerraformFile"
        on_failure: "manual"
        config:
          repository: "platform/infrastructure"
          path: "{category}/{{{{ resource_name }}}}.tf"
          template: |
            module "{{{{ resource_name }}}}" {{
              size     = "{{{{ size }}}}"
              replicas = {{{{ replicas }}}}
              team     = "{{{{ requester.team }}}}"
            }}
        outputs: ["endpoint"]
      - id: "notify"
        type: "HttpPost"
        depends_on: ["provision"]
        config:
          url: "https://hooks.example.com/created"
          body:
            endpoint: "{{{{ steps.provision.outputs.endpoint }}}}"
  manual:
    system: "jira"
    template:
      project: "PLATFORM"
      issue_type: "Service Request"
      summary: "Create {name} {{{{ resource_name }}}}"
      description: |
        Size: {{{{ size }}}}
        Replicas: {{{{ replicas }}}}
        Requester: {{{{ requester.user_id }}}}
"""

BUNDLE = """\
name: "bundle-{n}"
version: "1.0.0"
description: "Generated bundle {n}"
owner: "team-bundles"
bundle:
  required_items:
    - catalog_item: "item-{a}"
      version: ">=1.0.0"
      parameters:
        size: "large"
  optional_items:
    - catalog_item: "item-{b}"
      version: "^1.0.0"
      default_enabled: true
presentation:
  bundle_fields:
    - name: "solution_name"
      type: "string"
      required: true
"""


def generate(root: Path, count: int) -> tuple[list[Path], list[Path]]:
    items, bundles = [], []
    n_bundles = max(1, count // 20)
    for n in range(count - n_bundles):
        category = CATEGORIES[n % len(CATEGORIES)]
        path = root / "catalog" / category / f"item-{n}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ITEM.format(name=f"item-{n}", n=n, team=n % 7, category=category))
        items.append(path)
    for n in range(n_bundles):
        path = root / "catalog" / "bundles" / f"bundle-{n}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BUNDLE.format(n=n, a=n, b=n + 1))
        bundles.append(path)
    return items, bundles


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start, result


def best_of(runs: int, cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    results = [timed(cmd, cwd) for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="best of N runs")
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="pao-bench-"))
    try:
        items, bundles = generate(root, args.files)
        print(f"{len(items) + len(bundles)} files ({len(items)} items, {len(bundles)} bundles), "
              f"best of {args.runs} runs")

        seconds, result = best_of(args.runs, [sys.executable, "-m", "app.cli", "validate", "catalog"], root)
        summary = result.stdout.strip().splitlines()[-1] if result.stdout else result.stderr
        print(f"pao-cli validate (process):     {seconds:6.3f} s  exit {result.returncode}  {summary}")
        seconds, _ = best_of(args.runs, [sys.executable, "-c", "import app.catalog.cli"], root)
        print(f"  of which interpreter+imports: {seconds:6.3f} s")

        from app.catalog.parse import parse_catalog_file, validate_catalog

        data = {p.relative_to(root).as_posix(): p.read_bytes() for p in items + bundles}
        start = time.perf_counter()
        files = {rel: parse_catalog_file(rel, raw) for rel, raw in data.items()}
        parsed = time.perf_counter() - start
        validate_catalog(files)
        total = time.perf_counter() - start
        print(f"in process: parse {parsed:6.3f} s, + cross-file {total - parsed:6.3f} s "
              f"({total / len(data) * 1e3:.2f} ms per file)")

        tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
        if not Path(tool).exists():
            print("check-jsonschema: not installed (pip install check-jsonschema) - skipped")
            return 0
        schema_dir = ROOT / "docs" / "schema"
        t_items, r1 = best_of(args.runs, [tool, "--schemafile", str(schema_dir / "catalog-item.schema.json"),
                                          *map(str, items)], root)
        t_bundles, r2 = best_of(args.runs, [tool, "--schemafile",
                                            str(schema_dir / "catalog-bundle.schema.json"),
                                            *map(str, bundles)], root)
        ok = "ok" if r1.returncode == 0 and r2.returncode == 0 else (r1.stdout + r2.stdout)[-300:]
        print(f"check-jsonschema (2 processes): {t_items + t_bundles:6.3f} s  {ok}  (shape only)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
