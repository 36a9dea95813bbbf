"""Pure mirror rules and the settings reader."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings
from app.mirror.config import mirror_settings
from app.mirror.naming import (
    NAME_RE,
    changed_refs,
    described_owner,
    description,
    hook_unsafe,
    mirrored_refs,
    project_name,
    refs_digest,
    suffixed,
)


@pytest.mark.parametrize(("owner", "repo", "expected"), [
    ("fastapi", "fastapi", "fastapi-fastapi"),
    ("-weird", ".dots", "weird-.dots"),
    ("a", "b c/d", "a-b-c-d"),
    ("x", "thing.git", "x-thing-git"),
    # OneDev's pattern is Java's, where \w is ASCII only: é is not a word character there.
    ("café", "naïve", "caf-na-ve"),
])
def test_project_names_follow_onedev_rule(owner, repo, expected):
    name = project_name("{owner}-{repo}", owner, repo)
    assert name == expected and NAME_RE.match(name)


def test_names_are_checked_the_way_java_reads_the_pattern():
    assert NAME_RE.match("a-b.c_1") and not NAME_RE.match("é") and not NAME_RE.match("aé")
    assert project_name("mirrör-{owner}-{repo}", "o", "r") == "mirr-r-o-r"


def test_template_and_the_suffix_for_a_taken_name():
    assert project_name("github-{owner}-{repo}", "o", "r") == "github-o-r"
    # col-x/y and col/x-y clean to one name; the suffix is per repository and stable.
    assert project_name("{owner}-{repo}", "col-x", "y") == project_name("{owner}-{repo}", "col",
                                                                        "x-y") == "col-x-y"
    assert suffixed("col-x-y", 42) == "col-x-y-42" != suffixed("col-x-y", 43)


def test_descriptions_name_the_repository_pao_mirrors_there():
    assert described_owner(description("octo/hello", 42)) == 42
    assert described_owner("Synced from GitHub: octo/hello") == "octo/hello"  # before the id
    assert described_owner("our team's fork") is None and described_owner(None) is None


def test_refs_onedev_hook_cannot_forward():
    assert [r for r in ("refs/heads/a+b", "refs/tags/x&y", "refs/heads/k=v", "refs/heads/50%",
                        "refs/heads/fine-1.0_x/y") if hook_unsafe(r)] == [
        "refs/heads/a+b", "refs/tags/x&y", "refs/heads/k=v", "refs/heads/50%"]


def test_only_branches_and_tags_are_mirrored():
    refs = mirrored_refs("a1 refs/heads/main\nb2 refs/tags/v1\nc3 refs/pull/1/head\nd4 refs/notes/x\n")
    assert refs == {"refs/heads/main": "a1", "refs/tags/v1": "b2"}
    assert changed_refs({"refs/heads/main": "a1", "refs/heads/old": "x"}, refs) == 2
    assert refs_digest(refs) == refs_digest(dict(reversed(list(refs.items()))))


def test_settings_defaults_and_off_without_url():
    ms = mirror_settings(Settings.from_env({}))
    assert not ms.enabled
    assert (ms.poll_interval, ms.refresh_interval, ms.timeout) == (900, 8 * 3600, 1800)
    assert (ms.on_unstar, ms.on_conflict, ms.on_rename, ms.name_template) == (
        "keep", "suffix", "keep", "{owner}-{repo}")


def test_settings_read():
    ms = mirror_settings(Settings.from_env({
        "PAO_ONEDEV_URL": "https://onedev.example.com/", "PAO_ONEDEV_TOKEN": "t0k3n-value",
        "PAO_MIRROR_USERS": "alice, bob", "PAO_MIRROR_POLL_INTERVAL": "5m",
        "PAO_MIRROR_ON_UNSTAR": "delete", "PAO_ONEDEV_PARENT": "/mirrors/",
        "PAO_MIRROR_ON_CONFLICT": "adopt", "PAO_MIRROR_ON_RENAME": "rename",
    }))
    assert (ms.on_conflict, ms.on_rename) == ("adopt", "rename")
    assert ms.enabled and ms.onedev_url == "https://onedev.example.com"
    assert ms.users == ("alice", "bob") and ms.poll_interval == 300
    assert ms.on_unstar == "delete" and ms.onedev_parent == "mirrors"
    assert "t0k3n-value" not in repr(ms)


def test_settings_problems_name_the_variable():
    with pytest.raises(ConfigError) as err:
        Settings.from_env({
            "PAO_ONEDEV_URL": "https://onedev.example.com",
            "PAO_MIRROR_ON_CONFLICT": "use_existing",  # adopting is now asked for by name
            "PAO_MIRROR_ON_RENAME": "follow",
            "PAO_MIRROR_NAME_TEMPLATE": "{org}-{repo}",
            "PAO_MIRROR_TIMEOUT": "soon",
        })
    text = "\n".join(err.value.problems)
    for var in ("PAO_ONEDEV_TOKEN", "PAO_MIRROR_ON_CONFLICT", "PAO_MIRROR_ON_RENAME",
                "PAO_MIRROR_NAME_TEMPLATE",
                "PAO_MIRROR_TIMEOUT"):
        assert var in text
