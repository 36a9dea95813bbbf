"""``/setup``: the GitHub App manifest flow against the GitHub fake, guarded by a one-time token."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from app.console import registration
from app.console.setup import build_manifest, load_manifest_template
from app.github import GitHubClients
from app.service import Runtime
from app.web import create_app
from tests.conftest import with_settings
from tests.console_support import point_at_github, with_console
from tests.support import webhook


@pytest.fixture
async def pao(aiohttp_client, runtime, github_fake):
    point_at_github(runtime, github_fake)
    return await aiohttp_client(create_app(runtime))


def form_field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} in the page"
    return html.unescape(match.group(1))


def form_action(page: str) -> str:
    return html.unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))


async def unlock(pao, runtime) -> None:
    token = await registration.new_setup_token(runtime.pool)
    resp = await pao.post("/setup/unlock", data={"token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/setup"


async def github_code_for(pao, org: str) -> tuple[str, str, dict]:
    """What a browser does: the manifest page, GitHub's new-App page, "Create"; returns code, state."""
    page = await (await pao.get(f"/setup?account=org&org={org}")).text()
    action, manifest = form_action(page), form_field(page, "manifest")
    async with aiohttp.ClientSession() as browser:
        resp = await browser.post(action, data={"manifest": manifest})
        github_page = await resp.text()
    assert resp.status == 200
    redirect = re.search(r'action="([^"]+)"', github_page).group(1)
    assert urlsplit(redirect).path == "/setup/callback"
    return form_field(github_page, "code"), form_field(github_page, "state"), parse_qs(urlsplit(action).query)


async def test_setup_registers_the_app_and_pao_uses_it_without_a_restart(pao, runtime, github_fake):
    assert (await pao.get("/setup")).status == 200  # the token form
    await unlock(pao, runtime)
    code, state, _ = await github_code_for(pao, "acme")

    [sent] = github_fake.manifests
    assert sent["owner"] == "acme"
    base = str(pao.make_url("")).rstrip("/")
    assert sent["manifest"]["hook_attributes"]["url"] == f"{base}/api/v1/webhooks/github"
    assert sent["manifest"]["redirect_url"] == f"{base}/setup/callback"
    assert sent["manifest"]["default_permissions"]["checks"] == "write"

    resp = await pao.get(f"/setup/callback?code={code}&state={state}")
    body = await resp.text()
    assert resp.status == 200, body
    app_id = github_fake.app_key.app_id
    assert f'href="{github_fake.url}/apps/pao-test/installations/new"' in body
    # In use at once: App mode, JWTs accepted by GitHub, the new webhook secret accepted.
    assert runtime.settings.app_mode and runtime.settings.app_id == str(app_id)
    assert (await runtime.github.app_api().getitem("/app", jwt=runtime.github.jwt()))["id"] == app_id
    body, headers = webhook("ping", {"zen": "hi", "hook_id": 1}, secret=github_fake.registered_webhook_secret)
    resp = await pao.post("/api/v1/webhooks/github", data=body, headers=headers)
    assert resp.status == 200
    # Stored encrypted: nothing secret in the clear.
    row = await runtime.pool.fetchrow("SELECT * FROM github_app_registration")
    assert row["app_id"] == app_id
    stored = " ".join(str(v) for v in row.values())
    assert "PRIVATE KEY" not in stored and github_fake.registered_webhook_secret not in stored
    # Closed once done; the tokens are gone.
    resp = await pao.get("/setup")
    assert resp.status == 404 and "set-up is closed" in await resp.text()
    assert await runtime.pool.fetchval("SELECT count(*) FROM console_setup_tokens") == 0


async def test_a_new_process_reads_the_stored_app(pao, runtime, github_fake, http_session):
    await unlock(pao, runtime)
    code, state, _ = await github_code_for(pao, "acme")
    assert (await pao.get(f"/setup/callback?code={code}&state={state}")).status == 200

    settings = with_console(with_settings(runtime.settings, app_id=None, private_key=None,
                                          webhook_secrets=()))
    fresh = Runtime(settings, runtime.dsn, runtime.pool, http_session,
                    GitHubClients.from_settings(settings, http_session))
    await registration.apply_stored(fresh)
    assert fresh.github.app_mode
    assert fresh.settings.webhook_secrets == (github_fake.registered_webhook_secret,)
    assert fresh.extra[registration.OAUTH_CLIENT].client_id in github_fake.oauth_clients
    # Another PAO_SECRET_KEY cannot read it: PAO says so and stays without an App.
    other = with_console(settings, secret_key="another-secret-key-0123456789-abcdef")
    stranger = Runtime(other, runtime.dsn, runtime.pool, http_session,
                       GitHubClients.from_settings(other, http_session))
    await registration.apply_stored(stranger)
    assert not stranger.github.app_mode


async def test_the_token_works_once_and_a_wrong_one_is_refused(pao, runtime):
    token = await registration.new_setup_token(runtime.pool)
    resp = await pao.post("/setup/unlock", data={"token": "pao_setup_guess"}, allow_redirects=False)
    assert resp.status == 403 and "not a valid set-up token" in await resp.text()
    assert (await pao.post("/setup/unlock", data={"token": token}, allow_redirects=False)).status == 303
    pao.session.cookie_jar.clear()
    assert (await pao.post("/setup/unlock", data={"token": token}, allow_redirects=False)).status == 403
    # Without the set-up cookie the owner step is not shown, only the token form.
    assert 'name="token"' in await (await pao.get("/setup?account=org&org=acme")).text()


async def test_a_callback_this_browser_did_not_start_or_a_replayed_code_is_refused(pao, runtime, github_fake):
    await unlock(pao, runtime)
    code, state, _ = await github_code_for(pao, "acme")
    resp = await pao.get(f"/setup/callback?code={code}&state=forged")
    assert resp.status == 403 and not runtime.settings.app_mode
    github_fake.manifest_codes.clear()  # the code expired on GitHub's side
    resp = await pao.get(f"/setup/callback?code={code}&state={state}")
    assert resp.status == 403 and "start again" in await resp.text()  # the code, not GitHub, failed
    assert not runtime.settings.app_mode
    assert await runtime.pool.fetchval("SELECT count(*) FROM github_app_registration") == 0


async def test_without_a_secret_key_setup_says_which_variable_to_set(aiohttp_client, runtime):
    pao = await aiohttp_client(create_app(runtime))
    resp = await pao.get("/setup")
    assert resp.status == 503 and "PAO_SECRET_KEY" in await resp.text()


async def test_an_org_name_that_is_not_one_is_a_400(pao, runtime):
    await unlock(pao, runtime)
    resp = await pao.get("/setup?account=org&org=../../evil")
    assert resp.status == 400 and "organisation's login" in html.unescape(await resp.text())


def test_the_manifest_is_app_yml_pointed_at_pao():
    manifest = build_manifest(load_manifest_template(), "https://pao.acme.dev")
    assert manifest["hook_attributes"] == {"url": "https://pao.acme.dev/api/v1/webhooks/github",
                                           "active": True}
    assert manifest["redirect_url"] == "https://pao.acme.dev/setup/callback"
    assert manifest["callback_urls"] == ["https://pao.acme.dev/login/callback"]
    assert "installation" in manifest["default_events"]


async def test_another_process_adopts_the_app_registered_elsewhere(pao, runtime, github_fake, http_session):
    from app.console.startup import adopt_registration

    settings = runtime.settings
    other = Runtime(settings, runtime.dsn, runtime.pool, http_session,
                    GitHubClients.from_settings(settings, http_session))
    assert not await adopt_registration(other)  # nothing registered yet
    await unlock(pao, runtime)
    code, state, _ = await github_code_for(pao, "acme")
    assert (await pao.get(f"/setup/callback?code={code}&state={state}")).status == 200
    assert await adopt_registration(other)
    assert other.github.app_mode and github_fake.registered_webhook_secret in other.settings.webhook_secrets


async def test_start_up_prints_a_token_that_unlocks_setup_once(pao, runtime, capsys):
    from app.console.startup import on_startup

    await on_startup(runtime)
    printed = capsys.readouterr().err
    token = re.search(r"One-time set-up token: (\S+)", printed).group(1)
    assert "/setup" in printed
    assert (await pao.post("/setup/unlock", data={"token": token}, allow_redirects=False)).status == 303


async def test_start_up_without_a_secret_key_says_which_variable_to_set(runtime, capsys):
    from app.console.startup import on_startup

    await on_startup(runtime)
    assert "PAO_SECRET_KEY" in capsys.readouterr().err
    assert await runtime.pool.fetchval("SELECT count(*) FROM console_setup_tokens") == 0
