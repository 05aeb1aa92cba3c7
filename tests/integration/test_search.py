"""GET /api/search over a real server, on SQLite and PostgreSQL: prefix, case and
accent folding, filters, paging, escaped snippets, access scoping, hostile queries."""

from __future__ import annotations

import statistics
import time
import uuid
from urllib.parse import quote

from support import Browser, Server
from test_hardening_input import VECTORS, assert_inert
from test_private_rooms import private_world

# FTS5 and tsquery syntax, and the hostile strings of Part 1, as queries.
HOSTILE = [
    '"',
    "*",
    "NEAR(a b)",
    "a OR b",
    "a AND b",
    "NOT a",
    "-x",
    "^a",
    '"unbalanced',
    'a "b',
    ":",
    "a:b",
    "text:a",
    "(a",
    "a)",
    "a & b | !c",
    "a:*",
    "'",
    "\\",
    "''; DROP TABLE messages; --",
    "<script>alert(1)</script>",
    "%",
    "_",
    "from:",
    "in:",
    "from:x'y in:\"z",
    "\u202e\u0301\ufeff",
    "👍🏽 " * 20,
    "a" * 1000,
]


def word() -> str:
    return "zq" + uuid.uuid4().hex[:10]


async def post(browser: Browser, room: int, text: str) -> dict:
    response = await browser.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()


async def search(browser: Browser, q: str, **params: object) -> list[dict]:
    response = await browser.api("GET", "/api/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def test_words_match_by_prefix_ignoring_case_and_accents_newest_first(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    key = word()
    first = await post(alice, room, f"Meet at the Café {key} at <b>noon</b>")
    second = await post(alice, room, f"{key.upper()}suffix and more")
    await post(alice, room, "nothing to see")
    hits = await search(alice, key)
    assert [h["message_id"] for h in hits] == [second["id"], first["id"]]
    hit = hits[1]
    assert hit["room_id"] == room and hit["seq"] == first["seq"]
    assert hit["author"] == alice.username and hit["room_name"].startswith("room-")
    # Escaped text, the match in <mark>; nothing of the message's markup survives.
    assert f"<mark>{key}</mark>" in hit["snippet"]
    assert "&lt;b&gt;noon&lt;/b&gt;" in hit["snippet"] and "<b>" not in hit["snippet"]
    # Prefix, case and accents, both ways round.
    assert [h["message_id"] for h in await search(alice, f"cafe {key[:6]}")] == [first["id"]]
    assert [h["message_id"] for h in await search(alice, f"CAFÉ {key}")] == [first["id"]]
    marked = (await search(alice, f"cafe {key}"))[0]["snippet"]
    assert "<mark>Café</mark>" in marked
    # A phrase keeps its words in order.
    assert [h["message_id"] for h in await search(alice, f'"the café {key}"')] == [first["id"]]
    assert await search(alice, f'"café the {key}"') == []


async def test_from_and_in_filters_paging_and_one_room(
    server: Server, make_user, room: int, unique: str
) -> None:
    alice, bob = await make_user(), await make_user()
    other = server.create_room(f"other-{unique}")
    key = word()
    a = await post(alice, room, f"{key} one")
    b = await post(bob, room, f"{key} two")
    c = await post(bob, other, f"{key} three")
    assert [h["message_id"] for h in await search(alice, key)] == [c["id"], b["id"], a["id"]]
    by_bob = await search(alice, f"{key} from:{bob.username.upper()}")
    assert [h["message_id"] for h in by_bob] == [c["id"], b["id"]]
    assert [h["message_id"] for h in await search(alice, f"in:other-{unique} {key}")] == [c["id"]]
    # Filters alone list the newest messages they allow.
    only = await search(alice, f"from:{alice.username} in:room-{unique}")
    assert [h["message_id"] for h in only] == [a["id"]]
    assert [h["message_id"] for h in await search(alice, key, room_id=room)] == [b["id"], a["id"]]
    page = await search(alice, key, limit=2)
    assert [h["message_id"] for h in page] == [c["id"], b["id"]]
    rest = await search(alice, key, limit=2, before=page[-1]["message_id"])
    assert [h["message_id"] for h in rest] == [a["id"]]
    assert await search(alice, key, before=a["id"]) == []
    assert await search(alice, "   ") == []


async def test_private_rooms_and_directs_of_others_never_appear(
    server: Server, make_user, unique: str
) -> None:
    owner, friend, outsider, private, dm = await private_world(server, make_user, unique)
    secret, whisper = word(), word()
    await post(owner, private, f"the {secret} plan")
    await post(friend, dm, f"psst {whisper}")
    assert [h["room_id"] for h in await search(friend, secret)] == [private]
    assert [h["room_id"] for h in await search(owner, whisper)] == [dm]
    assert (await search(owner, whisper))[0]["room_name"] == friend.username
    # A prefix long enough that no other test's word shares it ("zq" and 2 hex
    # digits did, 1 in 256, on the shared server).
    for q in (secret, whisper, secret[:8], f"in:secret-{unique}", f"from:{owner.username}"):
        assert await search(outsider, q) == [], q
    for room in (private, dm, 2_000_000_000):
        response = await outsider.api("GET", "/api/search", params={"q": secret, "room_id": room})
        assert response.status_code == 404 and response.json() == {"detail": "No such room."}

    # The outsider waits as long for the private word as for one that is nowhere.
    async def median(q: str) -> float:
        took = []
        for _ in range(7):
            start = time.perf_counter()
            await outsider.api("GET", "/api/search", params={"q": q})
            took.append(time.perf_counter() - start)
        return statistics.median(took)

    nowhere = await median(word())
    assert await median(secret) < 10 * nowhere + 0.05


async def test_hostile_queries_are_plain_text(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    await post(alice, room, "a b near or and not x text unbalanced z <script>alert(1)</script>")
    for q in HOSTILE:
        for hit in await search(alice, q):  # a 200 with a list, never a 500
            assert "<script" not in hit["snippet"], q
    found = await search(alice, "a OR b")  # OR is a word to look for, not an operator
    assert [h["message_id"] for h in found] != [] and "<mark>or</mark>" in found[0]["snippet"]
    assert "<mark>script</mark>" in (await search(alice, "<script>"))[0]["snippet"]


async def test_a_query_over_1000_characters_is_refused(server: Server, make_user) -> None:
    alice = await make_user()
    response = await alice.api("GET", "/api/search", params={"q": "a" * 1001})
    assert response.status_code == 422
    assert (await alice.api("GET", "/api/search", params={"q": "a\x00b"})).status_code == 422
    assert (await alice.api("GET", "/api/search")).status_code == 422
    anonymous = Browser(server)
    try:
        assert (await anonymous.client.get("/api/search", params={"q": "a"})).status_code == 401
    finally:
        await anonymous.close()


async def test_part_1_hostile_strings_as_queries_and_in_hits_stay_inert(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    key = word()
    for name, vector in VECTORS.items():
        if name not in ("nul-byte", "lone-surrogate"):  # refused as messages (422)
            await post(alice, room, f"{vector} {key}")
    page = await alice.client.get("/search", params={"q": key})
    assert page.status_code == 200
    assert_inert(page.text, None)
    assert page.text.count('class="hit"') == len(VECTORS) - 2
    for name, vector in VECTORS.items():
        # Sent as the raw bytes a browser would: a lone surrogate is invalid UTF-8.
        raw = quote(vector.encode("utf-8", "surrogatepass"))
        api = await alice.api("GET", f"/api/search?q={raw}")
        assert api.status_code == (422 if name == "nul-byte" else 200), (name, api.text)
        shown = await alice.client.get(f"/search?q={raw}")
        assert shown.status_code == 200, (name, shown.status_code)
        assert_inert(shown.text, None)
