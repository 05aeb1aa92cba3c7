"""Register, log in, log out, CSRF and redirects, against a real server."""

from __future__ import annotations

from support import CSRF_RE, PASSWORD, Browser, Server


async def test_register_starts_a_session_and_opens_the_chat(server: Server, make_user) -> None:
    alice = await make_user()
    page = await alice.client.get("/")
    assert page.status_code == 200
    assert alice.username in page.text
    me = await alice.client.get("/api/me")
    assert me.json()["username"] == alice.username


async def test_anonymous_chat_page_redirects_to_login(server: Server) -> None:
    browser = Browser(server)
    response = await browser.client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"
    await browser.close()


async def test_duplicate_username_in_any_case_is_refused(server: Server, make_user) -> None:
    first = await make_user()
    other = Browser(server)
    response = await other.register(first.username.upper())
    assert response.status_code == 400
    assert "taken" in response.text
    assert 'name="username"' in response.text  # the form is shown again
    await other.close()


async def test_bad_usernames_and_short_passwords_are_explained(server: Server) -> None:
    browser = Browser(server)
    for name, password in [("ab", PASSWORD), ("bad name!", PASSWORD), ("x" * 33, PASSWORD)]:
        response = await browser.register(name, password)
        assert response.status_code == 400
        assert "3–32 characters" in response.text
    response = await browser.register("goodname_pw", "short")
    assert response.status_code == 400
    assert "at least 8" in response.text
    await browser.close()


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    server: Server, make_user
) -> None:
    alice = await make_user()
    stranger = Browser(server)
    wrong = await stranger.login(alice.username, "not the password")
    unknown = await stranger.login("nobody_here_at_all", "not the password")
    assert wrong.status_code == unknown.status_code == 400
    assert CSRF_RE.sub("", wrong.text).replace(alice.username, "X") == CSRF_RE.sub(
        "", unknown.text
    ).replace("nobody_here_at_all", "X")
    assert "Wrong username or password." in wrong.text
    await stranger.close()


async def test_login_follows_same_site_next_and_ignores_off_site(server: Server, make_user) -> None:
    alice = await make_user()
    for target, expected in [
        ("/rooms/1", "/rooms/1"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ]:
        browser = Browser(server)
        response = await browser.login(alice.username, next=target)
        assert response.status_code == 303
        assert response.headers["location"] == expected, target
        await browser.close()


async def test_post_without_csrf_is_refused_and_changes_nothing(server: Server) -> None:
    browser = Browser(server)
    await browser.fetch_csrf()
    response = await browser.client.post(
        "/register", data={"username": "csrf_victim", "password": PASSWORD}
    )
    assert response.status_code == 403
    response = await browser.client.post(
        "/register", data={"username": "csrf_victim", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    # Nothing was created: the name is still free.
    assert (await browser.register("csrf_victim")).status_code == 303
    await browser.close()


async def test_logout_ends_the_session_even_for_a_copied_cookie(server: Server, make_user) -> None:
    alice = await make_user()
    copied = dict(alice.client.cookies)
    response = await alice.client.post("/logout", data={"csrf_token": alice.csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    thief = Browser(server)
    thief.client.cookies.update(copied)
    assert (await thief.client.get("/api/me")).status_code == 401
    assert (await thief.client.get("/")).status_code == 303
    await thief.close()


async def test_each_login_gets_a_new_session_id(server: Server, make_user) -> None:
    alice = await make_user()
    before = alice.client.cookies.get("talkroom_session")
    await alice.login(alice.username)
    after = alice.client.cookies.get("talkroom_session")
    assert before and after and before != after
    old = Browser(server)
    old.client.cookies.set("talkroom_session", before)
    assert (await old.client.get("/api/me")).status_code == 401
    await old.close()


async def test_session_cookie_is_httponly_and_lax(server: Server) -> None:
    browser = Browser(server)
    response = await browser.register("cookie_flags")
    header = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "session" in v
    )
    assert "HttpOnly" in header
    assert "SameSite=lax" in header or "SameSite=Lax" in header
    await browser.close()


async def test_healthz(server: Server) -> None:
    browser = Browser(server)
    response = await browser.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    await browser.close()


async def test_security_headers_on_pages_and_api(server: Server, make_user) -> None:
    alice = await make_user()
    for path in ["/", "/login", "/api/me", "/static/app.js"]:
        response = await alice.client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


async def test_repeated_failed_logins_are_throttled_per_account(tmp_path, make_user) -> None:
    from support import running_server

    with running_server(tmp_path) as srv:
        alice = await make_user(target=srv)
        attacker = Browser(srv)
        for _ in range(5):
            assert (await attacker.login(alice.username, "wrong password")).status_code == 400
        blocked = await attacker.login(alice.username)  # even the right password waits
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["retry-after"]) <= 300
        assert "Too many failed logins" in blocked.text
        other = await make_user(target=srv)
        assert (await Browser(srv).login(other.username)).status_code == 303
        await attacker.close()


async def test_huge_password_is_refused_before_hashing(server: Server, make_user) -> None:
    alice = await make_user()
    browser = Browser(server)
    response = await browser.login(alice.username, "p" * 1_000_000)
    assert response.status_code == 400
    registered = await browser.register("huge_pw_user", "p" * 1_000_000)
    assert registered.status_code == 400
    assert "at most 1024" in registered.text  # refused before hashing
    await browser.close()
