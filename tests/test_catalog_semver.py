"""Semantic versions and bundle version constraints."""

from __future__ import annotations

import pytest

from app.catalog.semver import Constraint, Version


@pytest.mark.parametrize(("constraint", "version", "ok"), [
    (">=1.2.0", "1.2.0", True),
    (">=1.2.0", "1.1.9", False),
    (">=1.2.0, <2.0.0", "1.9.9", True),
    (">=1.2.0, <2.0.0", "2.0.0", False),
    (">=1.2.0 <2.0.0", "2.0.0", False),
    ("^1.2.0", "1.99.0", True),
    ("^1.2.0", "2.0.0", False),
    ("^0.2.3", "0.2.9", True),
    ("^0.2.3", "0.3.0", False),
    ("~1.2.0", "1.2.7", True),
    ("~1.2.0", "1.3.0", False),
    ("1.2.0", "1.2.0", True),
    ("=1.2.0", "1.2.1", False),
    ("!=1.2.0", "1.2.1", True),
    ("*", "0.0.1", True),
    (">=1.0.0", "2.0.0-rc.1", False),  # pre-releases only when asked for
    (">=2.0.0-rc.1", "2.0.0-rc.2", True),
])
def test_constraints(constraint: str, version: str, ok: bool) -> None:
    assert Constraint.parse(constraint).allows(Version.parse(version)) is ok


def test_ordering_follows_semver() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0"]
    assert sorted(order, key=Version.parse) == order


@pytest.mark.parametrize("bad", ["", ">=1.x", "=>1.0.0", "1.0", "latest"])
def test_bad_constraints_say_why(bad: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        Constraint.parse(bad)
