"""OpenAPI-driven fuzzing (schemathesis) of the REST API served by a real server and database.

Requests are generated from the document the server publishes; every answer must be a
non-5xx whose status and body the document describes. Bounded to a few seconds.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.git.catalog import GitCache
from app.mirror.config import MirrorSettings
from app.sync.engine import sync_repository
from app.sync.source import catalog_source
from app.web import create_app
from tests.conftest import with_settings
from tests.support import serve
from tests.sync_helpers import CatalogRepo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalog"
ADMIN = "fuzz-admin-token"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 10


def fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode, base_url: str,
                   session: requests.Session, failures: list[str]) -> int:
    """Send generated requests for one operation; returns how many, adds failures."""
    sent = 0

    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         derandomize=True, phases=[hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(base_url=base_url, session=session, checks=CHECKS,
                                   headers={"Authorization": f"Bearer {ADMIN}"})
        except Exception as exc:
            failures.append(f"{operation.label} ({mode.value}): {str(exc).strip()[:600]}")

    run()
    return sent


def fuzz(base_url: str) -> tuple[int, list[str]]:
    """Every operation of the served document, with valid and invalid input.

    Returns how many requests were sent and the failures.
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    sent, failures = 0, []
    with requests.Session() as session:  # one kept-alive connection, not one per request
        for result in schema.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                sent += fuzz_operation(result.ok(), mode, base_url, session, failures)
    return sent, failures


async def test_the_api_survives_fuzzing_from_its_own_document(tmp_path, settings, pool, runtime):
    repo = CatalogRepo(tmp_path / "repo")
    shutil.copytree(EXAMPLES, repo.work / "catalog")
    repo.commit_push("catalog")
    runtime.settings = with_settings(
        settings, repo_url=repo.url, admin_token=ADMIN,
        # Mirroring on, towards nothing: the routes run, and a GitHub call fails cleanly.
        extra={**settings.extra,
               "mirror": MirrorSettings(onedev_url="http://127.0.0.1:9", onedev_token="t")})
    source = catalog_source(runtime.settings)
    result = await sync_repository(pool, source, GitCache(source, source.cache_dir(settings.data_dir)),
                                   None)
    assert result.status == "completed"
    async with serve(create_app(runtime)) as (host, port):
        started = time.monotonic()
        sent, failures = await asyncio.to_thread(fuzz, f"http://{host}:{port}")
        print(f"fuzzing: {sent} requests in {time.monotonic() - started:.1f} s")
    assert sent > 60  # every operation was exercised
    assert failures == []


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
