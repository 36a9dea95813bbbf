"""``pao doctor`` against real PostgreSQL, real git, and the GitHub and OneDev fakes."""

from __future__ import annotations

import asyncio

import pytest

from app import doctor
from app.cli import main
from tests.conftest import WEBHOOK_SECRET
from tests.mirror_support import ONEDEV_TOKEN


@pytest.fixture
def env(github_fake, onedev, settings, github_app_key) -> dict[str, str]:
    """A complete, healthy App-mode configuration."""
    inst = github_fake.install("acme", repos=["acme/catalog"])
    repo = github_fake.create_repo("acme/catalog", private=True, installation=inst,
                                   files={"catalog/x.yaml": "name: x\n"})
    return {"PAO_DB_URL": settings.db_url, "PAO_DATA_DIR": str(settings.data_dir),
            "PAO_WEBHOOK_SECRET": WEBHOOK_SECRET, "PAO_APP_ID": str(github_app_key.app_id),
            "PAO_PRIVATE_KEY": github_app_key.private_pem, "PAO_GITHUB_API_URL": github_fake.url,
            "PAO_REPO_URL": repo.clone_url, "PAO_ONEDEV_URL": onedev.url,
            "PAO_ONEDEV_TOKEN": ONEDEV_TOKEN}


def failures(findings: list[doctor.Finding]) -> list[tuple[str, str, str]]:
    return [(f.check, f.detail, f.fix) for f in findings if not f.ok]


async def test_a_healthy_setup_passes_every_check(env):
    findings = await doctor.diagnose(env)
    assert failures(findings) == []
    assert {f.check for f in findings} == {"configuration", "secret key", "database", "GitHub App",
                                           "catalog repository", "webhook deliveries", "OneDev"}
    assert "all checks passed" in doctor.report(findings)


async def test_the_secret_keys_source_and_a_damaged_key_file(env, tmp_path):
    from app.secret_key import KEY_FILE

    data_dir = tmp_path / "doctor-data"
    env = {**env, "PAO_DATA_DIR": str(data_dir)}
    [before] = [f for f in await doctor.diagnose(env) if f.check == "secret key"]
    assert before.ok and "generated at the first start" in before.detail
    data_dir.mkdir(exist_ok=True)
    (data_dir / KEY_FILE).write_text("cut short\n")
    [damaged] = [f for f in failures(await doctor.diagnose(env)) if f[0] == "secret key"]
    assert str(data_dir / KEY_FILE) in damaged[1] and "backup" in damaged[2]
    [explicit] = [f for f in await doctor.diagnose({**env, "PAO_SECRET_KEY": "k" * 40})
                  if f.check == "secret key"]
    assert explicit.ok and explicit.detail == "from PAO_SECRET_KEY"


async def test_token_mode_checks_the_repository_webhook_recovery_reads(env, github_fake):
    token_env = {k: v for k, v in env.items() if k not in ("PAO_APP_ID", "PAO_PRIVATE_KEY")}
    token_env.update({"PAO_REPO_TOKEN": github_fake.personal_token,
                      "PAO_PUBLIC_URL": "https://pao.acme.dev"})
    findings = await doctor.diagnose(token_env)
    [missing] = failures(findings)
    assert missing[0] == "webhook deliveries" and "PAO_DELIVERY_HOOK=repos/acme/catalog/hooks/" in missing[1]
    hook = github_fake.add_hook("acme", "catalog", "https://pao.acme.dev/api/v1/webhooks/github",
                                WEBHOOK_SECRET)
    findings = await doctor.diagnose(token_env)
    assert failures(findings) == []
    [ok] = [f for f in findings if f.check == "webhook deliveries"]
    assert ok.detail.endswith(f"repos/acme/catalog/hooks/{hook.id}")


async def test_invalid_configuration_names_each_variable_and_stops_there(env):
    findings = await doctor.diagnose({**env, "PAO_PORT": "http", "PAO_APP_ID": "abc"})
    problems = failures(findings)
    assert {c for c, _, _ in problems} == {"configuration"}
    assert any("PAO_PORT" in detail for _, detail, _ in problems)
    assert any("PAO_APP_ID" in detail for _, detail, _ in problems)


async def test_a_wrong_app_key_is_reported_with_its_fix(env):
    from tests.fakes.github import AppKey

    other = AppKey.generate()
    problems = failures(await doctor.diagnose({**env, "PAO_PRIVATE_KEY": other.private_pem}))
    [(check, detail, fix)] = problems
    assert check == "GitHub App" and "401" in detail and "PAO_PRIVATE_KEY" in fix
    assert other.private_pem not in detail + fix


async def test_the_app_not_installed_on_the_catalog_or_missing_permissions(env, github_fake):
    github_fake.create_repo("acme/elsewhere", files={"a": "1"})
    [(check, detail, fix)] = failures(await doctor.diagnose(
        {**env, "PAO_REPO_URL": f"{github_fake.url}/acme/elsewhere.git"}))
    assert check == "catalog repository" and "not installed" in detail and "acme/elsewhere" in fix
    inst = next(iter(github_fake.installations.values()))
    inst.permissions["checks"] = "read"
    [(check, detail, _)] = failures(await doctor.diagnose(env))
    assert check == "catalog repository" and "checks: write" in detail


async def test_a_missing_branch_and_pending_migrations(env, pool):
    [(check, _, fix)] = failures(await doctor.diagnose({**env, "PAO_REPO_BRANCH": "trunk"}))
    assert check == "catalog repository" and "PAO_REPO_BRANCH" in fix
    await pool.execute("DELETE FROM schema_migrations WHERE version = 7")
    [(check, detail, fix)] = failures(await doctor.diagnose(env))
    assert check == "database" and "7" in detail and fix == "run `pao migrate`"


async def test_onedev_refusing_the_token_or_unreachable(env):
    [(check, detail, fix)] = failures(await doctor.diagnose({**env, "PAO_ONEDEV_TOKEN": "wrong"}))
    assert check == "OneDev" and "refused the token" in detail and "PAO_ONEDEV_TOKEN" in fix
    assert "wrong" not in detail.split("refused")[0]
    [(check, _, fix)] = failures(await doctor.diagnose(
        {**env, "PAO_ONEDEV_URL": "http://127.0.0.1:9"}))
    assert check == "OneDev" and "PAO_ONEDEV_URL" in fix
    [(check, detail, fix)] = failures(await doctor.diagnose({**env, "PAO_ONEDEV_PARENT": "nowhere"}))
    assert check == "OneDev" and "nowhere" in detail and "PAO_ONEDEV_PARENT" in fix


async def test_the_exit_code_says_whether_all_is_well(env, monkeypatch, capsys):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["doctor"]) == 0
    assert "all checks passed" in capsys.readouterr().out
    monkeypatch.delenv("PAO_WEBHOOK_SECRET")
    assert await asyncio.to_thread(main, ["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  configuration: PAO_WEBHOOK_SECRET is unset" in out and "fix: set PAO_WEBHOOK_SECRET" in out


async def test_an_unreachable_database_is_reported_without_its_password(env):
    findings = await doctor.diagnose({**env, "PAO_DB_URL": "postgresql://pao:hunter2-pw@127.0.0.1:9/pao"})
    [(_, detail, fix)] = [p for p in failures(findings) if p[0] == "database"]
    assert "PAO_DB_URL" in fix and "hunter2-pw" not in detail + fix
    # The checks that need no database still ran.
    assert {f.check for f in findings} >= {"GitHub App", "OneDev"}
