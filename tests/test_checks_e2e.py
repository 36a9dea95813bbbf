"""End to end against the GitHub fake: PR webhooks -> job -> check runs with annotations.

Real PostgreSQL, real git over smart HTTP, the real job worker; only GitHub is the
fake, which also checks every request PAO sends against GitHub's OpenAPI description.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from app.github import GitHubClients
from app.service import Runtime, make_worker
from app.web import create_app
from tests.fakes.github import ApiError
from tests.support import webhook

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
URL = "/api/v1/webhooks/github"
REPO = "org/catalog"


@pytest.fixture
async def pao(aiohttp_client, github_fake, github_settings, pool, db_dsn) -> AsyncIterator[SimpleNamespace]:
    inst = github_fake.install("org")
    files = {p.relative_to(EXAMPLES).as_posix(): p.read_text()
             for p in sorted(EXAMPLES.rglob("*.yaml"))}
    repo = github_fake.create_repo(REPO, installation=inst, files=files, private=True)
    settings = dataclasses.replace(github_settings, repo_url=repo.clone_url)
    async with aiohttp.ClientSession() as http:
        rt = Runtime(settings, db_dsn, pool, http, GitHubClients.from_settings(settings, http))
        client = await aiohttp_client(create_app(rt))
        yield SimpleNamespace(fake=github_fake, repo=repo, client=client, worker=make_worker(rt), pool=pool)


async def deliver(pao: SimpleNamespace, event: str, payload: dict) -> None:
    body, headers = webhook(event, payload)
    resp = await pao.client.post(URL, data=body, headers=headers)
    assert resp.status in (200, 202), await resp.text()


async def run_jobs(pao: SimpleNamespace) -> None:
    while await pao.worker.run_one():
        pass
    failed = await pao.pool.fetch("SELECT task, last_error FROM jobs WHERE status <> 'succeeded'")
    assert not failed, [dict(r) for r in failed]


def push_pr(pao: SimpleNamespace, files: dict, *, number: int = 1, branch: str = "feature") -> str:
    """Commit on the PR branch and move refs/pull/N/head like GitHub does."""
    text = {p: pao.repo.read(p, f"refs/heads/{branch}") or pao.repo.read(p) for p in files}
    changed = {}
    for path, edit in files.items():
        if callable(edit):
            changed[path] = edit(text[path].decode())
        else:
            changed[path] = edit
    sha = pao.repo.commit(changed, branch=branch, base="main")
    pao.repo.set_ref(f"refs/pull/{number}/head", sha)
    return sha


def runs(pao: SimpleNamespace) -> list[dict]:
    return sorted(pao.fake.check_runs.values(), key=lambda r: r["id"])


def patches(run: dict) -> list[dict]:
    return run["updates"][1:]  # the first update is the creating POST


MYSQL = "catalog/databases/mysql-database.yaml"
REDIS = "catalog/caching/redis-cache.yaml"


def break_two(pao: SimpleNamespace) -> str:
    return push_pr(pao, {
        MYSQL: lambda t: t.replace("{{ instance_size }}", "{{ instance_sise }}")
                          .replace('"1.0.0"', '"1.0.1"'),
        REDIS: lambda t: t.replace("max_value: 5", "max_value: 6"),  # changed without a version bump
    })


async def test_broken_pr_fails_with_annotations_then_fix_succeeds(pao) -> None:
    head = break_two(pao)
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(pao.repo, number=1, head_ref="feature"))
    await run_jobs(pao)
    [run] = runs(pao)
    assert (run["name"], run["head_sha"], run["status"], run["conclusion"]) == (
        "PAO catalog", head, "completed", "failure")
    assert run["output"]["title"] == "2 errors, 0 warnings in 2 of 2 files"
    assert [(a["path"], a["start_line"], a["start_column"], a["annotation_level"], a["title"])
            for a in run["annotations"]] == [(REDIS, 3, 10, "failure", "PAO050"),
                                             (MYSQL, 35, 29, "failure", "PAO031")]
    assert run["updates"][0]["status"] == "in_progress"
    assert f"| `{MYSQL}` (item) | ❌ | 1 | 0 | 0 |" in run["output"]["summary"]

    fixed = push_pr(pao, {MYSQL: lambda t: t.replace("instance_sise", "instance_size"),
                          REDIS: lambda t: t.replace('"1.1.0"', '"1.2.0"')})
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, action="synchronize", number=1, head_ref="feature"))
    await run_jobs(pao)
    first, second = runs(pao)
    assert first["conclusion"] == "failure"
    assert (second["head_sha"], second["conclusion"], second["annotations"]) == (fixed, "success", [])
    assert second["output"]["title"] == "2 catalog files valid"


async def test_newer_push_supersedes_and_rerequest_creates_a_new_run(pao) -> None:
    break_two(pao)
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(pao.repo, number=1, head_ref="feature"))
    newer = push_pr(pao, {MYSQL: lambda t: t.replace("instance_sise", "instance_size")})
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, action="synchronize", number=1, head_ref="feature"))
    # The check_suite GitHub sends for the same push does not add a second run.
    await deliver(pao, "check_suite", pao.fake.check_suite_payload(pao.repo, head_sha=newer))
    await run_jobs(pao)
    [run] = runs(pao)  # the older head was never checked
    assert run["head_sha"] == newer and run["conclusion"] == "failure"
    assert [a["path"] for a in run["annotations"]] == [REDIS]

    await deliver(pao, "check_run", pao.fake.check_run_payload(run["id"]))
    await run_jobs(pao)
    first, again = runs(pao)
    assert again["id"] != first["id"] and again["head_sha"] == newer
    assert again["conclusion"] == "failure" and len(again["annotations"]) == 1


async def test_a_run_left_open_by_a_failed_attempt_is_closed_when_a_newer_head_is_checked(pao) -> None:
    older = push_pr(pao, {MYSQL: lambda t: t + "\n"})
    # The first attempt opens the run on the older head, then fails (a base it cannot fetch).
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, number=1, head_ref="feature", base_ref="gone"))
    await pao.worker.run_one()
    [stale] = runs(pao)
    assert (stale["head_sha"], stale["status"]) == (older, "in_progress")
    # A newer push arrives before the retry; the retry checks the newer head ...
    newer = break_two(pao)
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, action="synchronize", number=1, head_ref="feature"))
    await pao.pool.execute("UPDATE jobs SET scheduled_at = now() WHERE status = 'todo'")
    await run_jobs(pao)
    stale, run = runs(pao)
    assert (run["head_sha"], run["conclusion"]) == (newer, "failure")
    # ... and the older head's run does not spin "in progress" on GitHub forever.
    assert (stale["status"], stale["conclusion"]) == ("completed", "cancelled")
    assert "superseded" in stale["output"]["summary"]
    pao.fake.assert_openapi_clean()


def _sixty_findings_in_each_of_two_files() -> dict[str, str]:
    # Two files: one file lists at most 100 findings (spec.MAX_FINDINGS_PER_FILE).
    fields = "".join(f"    - {{name: f{i}, type: integer, default: x}}\n" for i in range(60))
    return {f"catalog/misc/{name}.yaml": (
        f'name: {name}\nversion: "1.0.0"\ndescription: d\nowner: o\npresentation:\n  fields:\n'
        + fields + "fulfillment:\n  manual:\n    system: email\n    template: {summary: s, to: t}\n")
        for name in ("many", "more")}


async def test_many_findings_are_sent_in_batches_of_50(pao) -> None:
    push_pr(pao, _sixty_findings_in_each_of_two_files())
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(pao.repo, number=1, head_ref="feature"))
    await run_jobs(pao)
    [run] = runs(pao)
    assert [len(p["output"].get("annotations", [])) for p in patches(run)] == [50, 50, 20]
    assert [p.get("conclusion") for p in patches(run)] == [None, None, "failure"]
    assert [a["start_line"] for a in run["annotations"]] == list(range(7, 67)) * 2
    assert {a["title"] for a in run["annotations"]} == {"PAO025"}


async def test_a_retry_after_a_failed_batch_does_not_repeat_annotations(pao) -> None:
    push_pr(pao, _sixty_findings_in_each_of_two_files())
    apply = pao.fake._apply_check_fields
    failed = []

    def second_batch_fails_once(run: dict, body: dict) -> None:
        # GitHub stores each PATCH's annotations as it gets them; the second one fails here.
        if not failed and len(run["annotations"]) == 50 and (body.get("output") or {}).get("annotations"):
            failed.append(True)
            raise ApiError(502, "Server Error")
        apply(run, body)

    pao.fake._apply_check_fields = second_batch_fails_once
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(pao.repo, number=1, head_ref="feature"))
    await pao.worker.run_one()
    assert failed
    await pao.pool.execute("UPDATE jobs SET scheduled_at = now() WHERE status = 'todo'")
    await run_jobs(pao)
    [run] = runs(pao)  # the retry kept its run ...
    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    # ... and sent only the annotations GitHub did not have yet: each finding once.
    assert [a["start_line"] for a in run["annotations"]] == list(range(7, 67)) * 2
    pao.fake.assert_openapi_clean()


async def test_a_retry_after_a_lost_create_answer_adopts_the_run(pao) -> None:
    # GitHub created the run but PAO never saw the answer (a 502 from a proxy, a worker
    # killed right then): the retry must find that run, not open a second one.
    break_two(pao)
    as_json = pao.fake.check_run_json
    lost = []

    def create_answer_lost(run: dict) -> dict:
        if not lost:
            lost.append(run["id"])
            raise ApiError(502, "Server Error")
        return as_json(run)

    pao.fake.check_run_json = create_answer_lost
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(pao.repo, number=1, head_ref="feature"))
    await pao.worker.run_one()
    assert lost and len(runs(pao)) == 1
    await pao.pool.execute("UPDATE jobs SET scheduled_at = now() WHERE status = 'todo'")
    await run_jobs(pao)
    [run] = runs(pao)
    assert (run["id"], run["status"], run["conclusion"]) == (lost[0], "completed", "failure")
    pao.fake.assert_openapi_clean()


async def test_no_catalog_change_is_neutral(pao) -> None:
    push_pr(pao, {"README.md": "docs\n"})
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(pao.repo, number=1, head_ref="feature"))
    await run_jobs(pao)
    [run] = runs(pao)
    assert (run["conclusion"], run["output"]["title"]) == ("neutral", "No catalog changes")
    pao.fake.assert_openapi_clean()


async def run_every_attempt(pao: SimpleNamespace) -> dict:
    """Run the one job through all its attempts, without waiting out the backoffs; its row
    and the outcome of each attempt."""
    while True:
        await pao.worker.run_one()
        job = await pao.pool.fetchrow("SELECT id, status, attempts, last_error FROM jobs")
        if job["status"] != "todo":
            break
        await pao.pool.execute("UPDATE jobs SET scheduled_at = now() WHERE id = $1", job["id"])
    outcomes = [r["outcome"] for r in await pao.pool.fetch(
        "SELECT outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt", job["id"])]
    return {**job, "outcomes": outcomes}


async def test_run_is_failed_with_the_reason_when_retries_run_out(pao) -> None:
    push_pr(pao, {MYSQL: lambda t: t + "\n"})
    # A base branch that does not exist: every fetch fails, and retrying cannot help.
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, number=1, head_ref="feature", base_ref="gone"))
    job = await run_every_attempt(pao)
    assert (job["status"], job["attempts"]) == ("failed", 5)
    [run] = runs(pao)  # retries reused the run instead of creating one per attempt
    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    assert run["output"]["title"] == "PAO could not check this pull request"
    assert "refs/heads/gone" in run["output"]["summary"]
    assert "x-access-token" not in run["output"]["summary"] and "ghs_" not in run["output"]["summary"]


def force_push_away(pao: SimpleNamespace, head: str) -> None:
    """The PR's ``head`` force-pushed away (back to main) and collected: GitHub has no such commit."""
    main = pao.repo.sha("main")
    pao.repo.set_ref("refs/heads/feature", main)
    pao.repo.set_ref("refs/pull/1/head", main)
    pao.repo.git("reflog", "expire", "--expire=now", "--all")
    pao.repo.git("gc", "--prune=now", "--quiet")
    assert pao.repo.sha(head) is None


def force_pushed_away(pao: SimpleNamespace) -> str:
    """A head pushed to the PR, then force-pushed away before PAO saw it."""
    gone = push_pr(pao, {MYSQL: lambda t: t + "\n"})
    force_push_away(pao, gone)
    return gone


async def test_a_head_force_pushed_away_ends_the_job_as_superseded_without_a_traceback(pao, caplog) -> None:
    caplog.set_level(logging.INFO)
    gone = force_pushed_away(pao)
    # The delivery for the vanished head; the force push's own delivery never came.
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, action="synchronize", number=1, head_ref="feature", head_sha=gone))
    job = await run_every_attempt(pao)
    reason = (f"{REPO}#1 head {gone} is no longer on GitHub (force-pushed away?): nothing to check, "
              "and no check run on it to complete")
    # Looked again on each attempt (a just-pushed commit may not show yet), then ended cleanly.
    assert (job["status"], job["attempts"], job["last_error"]) == ("cancelled", 5, reason)
    assert job["outcomes"] == ["retry"] * 4 + ["superseded"]
    assert runs(pao) == []  # GitHub refused the run: none is left "in progress" on the PR
    row = await pao.pool.fetchrow("SELECT status, conclusion, error FROM catalog_check_runs")
    assert tuple(row) == ("completed", "cancelled", reason)
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    [last] = [r.getMessage() for r in caplog.records if "superseded" in r.getMessage()]
    assert last == f"job {job['id']} (catalog_check) superseded: {reason}"
    pao.fake.assert_openapi_clean()


async def test_a_run_opened_on_a_head_force_pushed_away_later_is_cancelled(pao, caplog) -> None:
    caplog.set_level(logging.INFO)
    head = push_pr(pao, {MYSQL: lambda t: t + "\n"})
    # The first attempt opens the run, then fails (a base it cannot fetch) ...
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, number=1, head_ref="feature", base_ref="gone"))
    await pao.worker.run_one()
    [run] = runs(pao)
    assert (run["head_sha"], run["status"]) == (head, "in_progress")
    # ... and before the retries, the head is force-pushed away.
    force_push_away(pao, head)
    await pao.pool.execute("UPDATE jobs SET scheduled_at = now()")
    job = await run_every_attempt(pao)
    reason = (f"{REPO}#1 head {head} is no longer on GitHub (force-pushed away?): nothing to check, "
              f"its check run {run['id']} completed as cancelled")
    assert (job["status"], job["last_error"]) == ("cancelled", reason)
    assert job["outcomes"] == ["retry"] * 4 + ["superseded"]
    [run] = runs(pao)  # not left "in progress", nor failed: superseded
    assert (run["status"], run["conclusion"], run["output"]["title"]) == (
        "completed", "cancelled", "Superseded")
    assert run["output"]["summary"] == f"Commit {head} is no longer on GitHub: nothing to check."
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    pao.fake.assert_openapi_clean()


async def test_a_newer_head_pushed_after_the_vanished_one_is_checked_by_the_retry(pao) -> None:
    gone = force_pushed_away(pao)
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, action="synchronize", number=1, head_ref="feature", head_sha=gone))
    await pao.worker.run_one()
    job = await pao.pool.fetchrow("SELECT status, last_error FROM jobs")
    assert job["status"] == "todo" and "No commit found for SHA" in job["last_error"]
    newer = break_two(pao)
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(
        pao.repo, action="synchronize", number=1, head_ref="feature"))
    await pao.pool.execute("UPDATE jobs SET scheduled_at = now() WHERE status = 'todo'")
    await run_jobs(pao)
    [run] = runs(pao)
    assert (run["head_sha"], run["status"], run["conclusion"]) == (newer, "completed", "failure")
    pao.fake.assert_openapi_clean()


async def test_another_refusal_of_the_create_still_retries_and_fails(pao, caplog) -> None:
    caplog.set_level(logging.INFO)
    push_pr(pao, {MYSQL: lambda t: t + "\n"})
    apply = pao.fake._apply_check_fields

    def refuse_the_create(run: dict, body: dict) -> None:
        if not run["updates"]:  # the creating POST
            raise ApiError(422, "Validation Failed")
        apply(run, body)

    pao.fake._apply_check_fields = refuse_the_create
    await deliver(pao, "pull_request", pao.fake.pull_request_payload(pao.repo, number=1, head_ref="feature"))
    job = await run_every_attempt(pao)
    assert (job["status"], job["attempts"]) == ("failed", 5)
    assert job["outcomes"] == ["retry"] * 4 + ["failed"]
    assert job["last_error"] == "InvalidField: Validation Failed"
    [failed] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "failed for good" in failed.getMessage() and "Traceback" in failed.getMessage()
