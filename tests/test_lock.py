"""The lock files agree with pyproject.toml.

Both README commands install from `requirements/*.txt`; pyproject.toml keeps the ranges
for people who install PAO as a package. When someone widens, narrows or adds a
dependency in pyproject.toml without running ./scripts/lock, these tests say so.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"run": ROOT / "requirements" / "run.txt", "test": ROOT / "requirements" / "test.txt"}

# The environments PAO supports; a requirement whose marker excludes all of them
# (none today) need not be locked.
ENVIRONMENTS = [
    {"python_version": py, "python_full_version": f"{py}.0", "sys_platform": plat,
     "platform_system": system, "platform_machine": machine,
     "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    for py in ("3.11", "3.12", "3.13")
    for plat, system, machine in (("linux", "Linux", "x86_64"), ("darwin", "Darwin", "arm64"))
]


def locked(path: Path) -> dict[str, tuple[str, bool]]:
    """Package name → (pinned version, has hashes) for every entry of a lock file."""
    entries: dict[str, tuple[str, bool]] = {}
    name = None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line.startswith(" "):
            req = Requirement(stripped.rstrip("\\").strip())
            specs = list(req.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: {stripped!r} is not pinned"
            name = canonicalize_name(req.name)
            entries[name] = (specs[0].version, False)
        elif stripped.startswith("--hash=sha256:") and name:
            entries[name] = (entries[name][0], True)
    return entries


def pyproject_requirements(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    if extra:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    return reqs + [Requirement(r) for r in build]


def needed(req: Requirement) -> bool:
    return req.marker is None or any(req.marker.evaluate(env) for env in ENVIRONMENTS)


@pytest.mark.parametrize(("lock", "extra"), [("run", None), ("test", "test")])
def test_every_declared_dependency_is_locked_at_a_version_its_range_allows(lock: str, extra: str | None):
    pins = locked(LOCKS[lock])
    problems = []
    for req in filter(needed, pyproject_requirements(extra)):
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name} is in pyproject.toml but not in requirements/{lock}.txt")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{req.name}=={pins[name][0]} in requirements/{lock}.txt is outside "
                            f"pyproject.toml's {req.specifier}")
    assert not problems, "run ./scripts/lock:\n" + "\n".join(problems)


@pytest.mark.parametrize("lock", ["run", "test"])
def test_every_locked_package_carries_hashes(lock: str):
    unhashed = [name for name, (_, hashed) in locked(LOCKS[lock]).items() if not hashed]
    assert not unhashed, f"requirements/{lock}.txt entries without --hash: {unhashed}"


def test_run_and_test_locks_pin_the_same_versions():
    run, test = locked(LOCKS["run"]), locked(LOCKS["test"])
    assert set(run) <= set(test), f"only in run.txt: {sorted(set(run) - set(test))}"
    differ = {name: (run[name][0], test[name][0]) for name in run if run[name][0] != test[name][0]}
    assert not differ, f"run.txt and test.txt disagree (run ./scripts/lock): {differ}"

