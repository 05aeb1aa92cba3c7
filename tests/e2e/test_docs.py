"""/docs in headless Chromium: Swagger UI renders from the app's own files, with
nothing fetched beyond 127.0.0.1, and a logged-in admin can use it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from e2e_support import open_page, register_in_page
from playwright.async_api import expect
from support import Server


def operation_count(server: Server) -> int:
    """Swagger UI draws one block per operation in the app's own schema."""
    with urllib.request.urlopen(f"{server.base}/openapi.json", timeout=10) as response:
        schema = json.load(response)
    return sum(len(item) for item in schema["paths"].values())


async def test_docs_render_offline(browser, server: Server, artifacts: Path) -> None:
    page, watch = await open_page(browser, server)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto("/docs")
    assert response is not None and response.status == 200
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("talkroom")
    await expect(page.locator(".opblock")).to_have_count(operation_count(server))
    for tag in ("account", "rooms", "messages", "users"):
        await expect(page.locator(f'.opblock-tag[data-tag="{tag}"]')).to_be_visible()
    await expect(page.locator(".auth-wrapper .authorize")).to_be_visible()  # security schemes
    await page.screenshot(path=str(artifacts / "docs.png"), full_page=True)
    assert f"{server.base}/docs/assets/swagger-ui-bundle.js" in requested
    assert f"{server.base}/openapi.json" in requested
    assert watch.foreign == []
    assert watch.errors == []


async def test_a_logged_in_admin_creates_a_room_from_docs(
    browser, server: Server, artifacts: Path
) -> None:
    page, watch = await open_page(browser, server)
    await register_in_page(page, server, "docs_admin")
    server.set_admin("docs_admin")
    await page.goto("/docs")
    operation = page.locator("#operations-rooms-create_room")
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    body = {"name": "made-from-docs", "description": "Try it out works"}
    await operation.locator("textarea.body-param__text").fill(json.dumps(body))
    await operation.get_by_role("button", name="Execute").click()
    # The cookie rides along and docs.js adds the CSRF header: 201, not 403.
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    await expect(status).to_have_text("201")
    await page.screenshot(path=str(artifacts / "docs-try-it-out.png"), full_page=True)
    rooms = await page.request.get("/api/rooms")
    assert "made-from-docs" in [room["name"] for room in await rooms.json()]
    assert watch.foreign == []
    assert watch.errors == []
