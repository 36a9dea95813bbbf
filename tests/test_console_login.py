"""Sign in with GitHub (OAuth user-to-server against the fake) → a signed session → the PAO identity."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from app.console import registration
from app.console.login import safe_next
from app.console.session import decide_identity
from app.web import create_app
from tests.console_support import point_at_github, sync_examples


@pytest.fixture
async def pao(aiohttp_client, runtime, github_fake, tmp_path):
    await sync_examples(runtime, tmp_path)
    point_at_github(runtime, github_fake, admin_teams=frozenset({"acme/platform"}))
    github_fake.oauth_clients["Iv23client"] = {"secret": "oauth-client-secret", "callback_urls": []}
    runtime.extra[registration.OAUTH_CLIENT] = registration.OAuthClient("Iv23client", "oauth-client-secret")
    github_fake.add_team("acme", "customer-experience", ["sarah"])
    github_fake.add_team("acme", "platform", ["pat"])
    return await aiohttp_client(create_app(runtime))


async def sign_in_through_github(pao, login: str, next_path: str = "/catalog") -> aiohttp.ClientResponse:
    """What a browser does: PAO → GitHub's authorize page → "Authorize" → PAO's callback."""
    resp = await pao.get(f"/login/github?next={next_path}", allow_redirects=False)
    assert resp.status == 303
    authorize = resp.headers["Location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["redirect_uri"] == [str(pao.make_url("/login/callback"))]
    async with aiohttp.ClientSession() as browser:
        page = await (await browser.get(authorize)).text()
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
        fields = {k: html.unescape(v) for k, v in fields.items()}
        approve = urlsplit(authorize)._replace(path="/login/oauth/authorize", query="").geturl()
        back = await browser.post(approve, data={**fields, "login": login}, allow_redirects=False)
    assert back.status == 302
    callback = urlsplit(back.headers["Location"])
    return await pao.get(f"{callback.path}?{callback.query}", allow_redirects=False)


async def test_sign_in_makes_the_github_login_and_team_the_pao_identity(pao, github_fake):
    resp = await sign_in_through_github(pao, "sarah", "/catalog/items/redis-cache")
    assert resp.status == 303 and resp.headers["Location"] == "/catalog/items/redis-cache"
    cookie = resp.cookies["pao_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    page = await (await pao.get("/catalog")).text()
    assert "sarah" in page and "(customer-experience)" in page
    assert 'href="/admin/jobs"' not in page  # not an admin
    # PAO asked GitHub who she is with the user token; that token is not in the cookie.
    assert github_fake.api_requests("GET", "/user")[0].auth == "user"
    assert "ghu_" not in cookie.value


async def test_a_member_of_an_admin_team_is_an_admin(pao):
    await sign_in_through_github(pao, "pat")
    page = await (await pao.get("/catalog")).text()
    assert "pat" in page and 'href="/admin/jobs"' in page


async def test_a_forged_state_or_a_bad_code_signs_nobody_in(pao, runtime):
    resp = await pao.get("/login/callback?code=abc&state=forged", allow_redirects=False)
    assert resp.status == 403
    await pao.get("/login/github", allow_redirects=False)  # sets the state cookie
    keys = registration.keys_for(runtime.settings)
    assert keys is not None
    cookie = pao.session.cookie_jar.filter_cookies(pao.make_url("/login/callback"))["pao_oauth"].value
    real_state = keys.unsign("oauth", cookie)["state"]
    resp = await pao.get(f"/login/callback?code=not-a-code&state={real_state}", allow_redirects=False)
    assert resp.status == 403  # GitHub refused the person's code: theirs to retry, not a gateway error
    assert "The code passed is incorrect or expired." in html.unescape(await resp.text())
    assert "pao_session" not in resp.cookies
    for query in ("", "&code=", "&code=%00", "&code=a%20b", "&code=" + "a" * 200):
        resp = await pao.get(f"/login/callback?state={real_state}{query}", allow_redirects=False)
        assert resp.status == 400 and "no valid sign-in code" in html.unescape(await resp.text())
        assert "pao_session" not in resp.cookies


async def test_sign_out_needs_the_csrf_token(pao):
    await sign_in_through_github(pao, "sarah")
    page = await (await pao.get("/catalog")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert (await pao.post("/logout", data={}, allow_redirects=False)).status == 403
    assert (await pao.post("/logout", data={"csrf_token": "x" + token}, allow_redirects=False)).status == 403
    resp = await pao.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.cookies["pao_session"].value == ""


async def test_without_an_app_the_login_page_says_what_is_missing(pao, runtime):
    runtime.extra.pop(registration.OAUTH_CLIENT)
    resp = await pao.get("/login")
    assert resp.status == 503 and "/setup" in await resp.text()


def test_identity_rules():
    admins = {"admin_users": frozenset({"root"}), "admin_teams": frozenset({"acme/platform"})}
    assert decide_identity("sarah", ["acme/web", "acme/customer-experience"], **admins) == \
        ("customer-experience", False)
    assert decide_identity("pat", ["acme/Platform"], **admins) == ("platform", True)
    assert decide_identity("Root", [], **admins) == (None, True)


@pytest.mark.parametrize(("given", "expected"), [
    ("/catalog/items/x", "/catalog/items/x"), ("//evil.example", "/catalog"),
    ("https://evil.example", "/catalog"), ("/\\evil.example", "/catalog"), (None, "/catalog"),
    # Browsers (and yarl, writing the Location header) drop tabs and newlines: "//evil.example".
    ("/\t/evil.example", "/catalog"), ("/\n/evil.example", "/catalog"), ("/\r/evil.example", "/catalog"),
    ("/ /evil.example", "/catalog"), ("/\x00", "/catalog"), ("/catalog?q=a%20b", "/catalog?q=a%20b"),
    ("/catalog?q=" + "a" * 5000, "/catalog")])  # too long for the sign-in cookie
def test_after_sign_in_only_paths_on_this_site(given, expected):
    assert safe_next(given) == expected


async def test_a_next_with_a_tab_never_redirects_off_site(pao):
    resp = await sign_in_through_github(pao, "sarah", "/%09/evil.example")
    assert resp.status == 303 and resp.headers["Location"] == "/catalog"
    for hidden in ("%09", "%0a", "%0d"):  # signed in now: /login sends on at once
        resp = await pao.get(f"/login?next=/{hidden}/evil.example", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/catalog"
