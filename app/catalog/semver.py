"""Semantic versions and the small constraint language bundles use.

Written here rather than taken from a package: PEP 440 (``packaging``) orders
pre-releases differently from SemVer 2.0, and the whole need is ~60 lines.

Constraints: comparators ``>=``, ``>``, ``<=``, ``<``, ``=`` (or none), ``!=``,
``^1.2.3`` (same major; for 0.x same minor), ``~1.2.3`` (same minor), ``*``;
combine with commas or spaces: ``>=1.2.0, <2.0.0``. As in npm, a pre-release
version satisfies a constraint only if some comparator names the same
major.minor.patch with a pre-release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from app.catalog.spec import SEMVER_RE


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        m = SEMVER_RE.match(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre)

    def _key(self) -> tuple:
        # A release sorts after its pre-releases; numeric identifiers before alphanumeric.
        pre_key = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_key)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(map(str, self.pre)) if self.pre else "")

    def bump_patch(self) -> Version:
        return Version(self.major, self.minor, self.patch + 1)


_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|==|!=|\^|~)?\s*v?(\S+)$")


@dataclass(frozen=True)
class Constraint:
    text: str
    comparators: tuple[tuple[str, Version], ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        parts = [p for p in re.split(r"[,\s]+(?=[<>=!^~v\d*])", text.strip()) if p.strip()]
        if not parts:
            raise ValueError("empty version constraint; write e.g. >=1.2.0")
        comps: list[tuple[str, Version]] = []
        for part in parts:
            part = part.strip().rstrip(",").strip()
            if part == "*":
                continue
            m = _COMPARATOR.match(part)
            if not m:
                raise ValueError(f"{part!r} is not a comparator; write e.g. >=1.2.0 or ^1.2.0")
            op = m.group(1) or "="
            op = "=" if op == "==" else op
            try:
                version = Version.parse(m.group(2))
            except ValueError:
                raise ValueError(f"{m.group(2)!r} in {text!r} is not MAJOR.MINOR.PATCH") from None
            comps.extend(_expand(op, version))
        return cls(text, tuple(comps))

    def allows(self, version: Version) -> bool:
        if version.pre and not any(v.pre and _core(v) == _core(version) for _, v in self.comparators):
            return False
        return all(_OPS[op](version, v) for op, v in self.comparators)


def _expand(op: str, v: Version) -> list[tuple[str, Version]]:
    if op == "^":
        upper = (Version(v.major + 1, 0, 0) if v.major else
                 Version(0, v.minor + 1, 0) if v.minor else Version(0, 0, v.patch + 1))
        return [(">=", v), ("<", upper)]
    if op == "~":
        return [(">=", v), ("<", Version(v.major, v.minor + 1, 0))]
    return [(op, v)]


_OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _core(v: Version) -> tuple[int, int, int]:
    return (v.major, v.minor, v.patch)
