"""Read one JSON file out of an npm package: the shared step of the refresh scripts."""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any


def load_package_json(package: str, member: str, source: str | None) -> Any:
    """``member`` of ``package``, from ``source`` (a tarball or the JSON file itself), else
    from the package fetched with ``npm pack``."""
    if source and source.endswith(".json"):
        return json.loads(Path(source).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            out = subprocess.run(["npm", "pack", package, "--silent"], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            source = str(Path(tmp) / out)
        with tarfile.open(source) as tar:
            extracted = tar.extractfile(member)
            if extracted is None:
                raise SystemExit(f"{source}: no {member}")
            return json.load(extracted)
