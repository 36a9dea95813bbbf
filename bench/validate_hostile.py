"""Benchmark: the validator on hostile files, each within the 256 KiB limit.

Prints, per file, the best of three in-process ``parse_catalog_file`` times and the
findings it produced. Every file should take well under a second (the check run and
the sync parse thousands of files), and none may raise.

Usage: python bench/validate_hostile.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = ('name: demo\nversion: "1.0.0"\ndescription: d\nowner: team\n'
          "presentation:\n  fields:\n    - {name: db, type: string}\n"
          "fulfillment:\n  manual:\n    system: email\n    template:\n      to: ops@example.com\n")


def _files() -> dict[str, bytes]:
    names = [f"v{i}" for i in range(13000)]
    return {
        "13,000 unknown variables, one line": (
            HEADER + '      summary: "' + "".join(f"{{{{ {n} }}}}" for n in names) + '"\n').encode(),
        "13,000 unknown variables, one a line": (
            HEADER + "      summary: |\n" + "".join(f"        {{{{ {n} }}}}\n" for n in names)).encode(),
        "80,000-link attribute chain": (
            HEADER + '      summary: "{{ db' + ".b" * 80000 + ' + 1 }}"\n').encode(),
        "nested counted repeats in a regexp": (
            HEADER.replace("{name: db, type: string}", '{name: db, type: string, default: a, '
                           'regexp: "((a{1000}){1000}){1000}"}')).encode(),
        "oneof of 19,000 choices": (
            HEADER.replace("{name: db, type: string}", "{name: db, type: multiselect, oneof: ["
                           + ",".join(f"c{i}" for i in range(19000)) + "]}")).encode(),
        "60,000 nested lists": b"a: " + b"[" * 60000 + b"]" * 60000 + b"\n",
        "list of 30,000 entries": HEADER.encode() + b"tags: [" + b"t," * 30000 + b"t]\n",
        "alias bomb": (b'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
                       + "".join(f"{c}: &{c} [{','.join(['*' + p] * 10)}]\n"
                                 for p, c in zip("abcdefgh", "bcdefghi", strict=True)).encode()),
    }


def main() -> int:
    from app.catalog import templates
    from app.catalog.parse import parse_catalog_file

    for label, data in _files().items():
        best = float("inf")
        for _ in range(3):
            templates._analyze_cached.cache_clear()  # short templates are cached: time the work
            start = time.perf_counter()
            parsed = parse_catalog_file("catalog/x/hostile.yaml", data)
            best = min(best, time.perf_counter() - start)
        codes = sorted({f.code for f in parsed.findings})
        print(f"{label:40} {len(data) / 1024:6.0f} KiB  {best:7.3f} s  "
              f"{len(parsed.findings)} findings {', '.join(codes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
