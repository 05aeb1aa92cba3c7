"""A bounded soak: two servers sharing PostgreSQL and a Redis of the test's own, 32
clients sending, editing, deleting and reacting at once, while the fault script
restarts Redis and SIGKILLs one server and starts it again.

At the end (Zulip's "live state equals a fresh fetch"):
- every client's list of new messages is the database's history: nothing lost,
  nothing twice, the same order;
- every client's rendered message list (each element as its frames left it:
  ids, texts, edit and delete marks, reactions) equals a fresh render of the room
  (the room page and its older history pages), element for element;
- that render agrees with the API and with what the clients meant to do (the
  last text of each edit, each delete, each reaction added and taken back);
- every client's unread and mention counts, held as a page holds them (the
  counts its user channel sends, and a fresh room list fetched whenever the
  room's activity moves), equal the ones a fresh ``GET /api/rooms`` computes.

Clients behave like the page (app.js): every frame is applied to a model of
``#messages`` (new messages appended, a changed message swapped in place by id,
``#room-seq`` kept); on a close they reconnect (to either server) with ``?after=``
the highest seq they have applied (of their messages' seqs and revs and
``#room-seq``), and resend what they have not seen come back with the same client
id. Edits, deletes and reactions go through the API, as the page's do, to
whichever server answers; each is safe to repeat. Clients read the room (``{"read":
seq}``) as they go; a quarter of them stop halfway, as hidden tabs, and follow the
room's activity instead. Once the room is quiet, each reads once more (the hidden
ones stop short of the end), then the first client deletes and edits a message
unread by the hidden tabs, with no new message after: their badges must follow.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from scale_support import RedisProcess, history, servers, tab, user_on
from support import Browser, Server, postgres_url, query

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CLIENTS, EACH, PACE = 32, 20, 0.3
# A page fetches its room list at most this often (app.js REFRESH_EVERY), 0.3 s at
# the soonest after the activity that asked for it.
REFRESH_EVERY, REFRESH_AFTER = 2.0, 0.3
EMOJI = ("👍", "🎉", "❤️")
CHANGES = ("edit", "delete", "react", "unreact")
# A frame's pieces, in order: the wrapper that appends to (or replaces) #messages, a
# message's element, and the seq the page holds.
TOKEN_RE = re.compile(
    r'(?P<wrap><div id="messages" hx-swap-oob="(?P<mode>beforeend|innerHTML)">)'
    r'|(?P<article><article\b[^>]*?\bid="message-(?P<id>\d+)"[^>]*>.*?</article>)'
    r'|<span id="room-seq" data-seq="(?P<room_seq>\d+)"',
    re.S,
)
SEQ_RE = re.compile(r'data-seq="(\d+)" data-rev="(\d+)"')
BASE_RE = re.compile(r'<div class="text"><p>([^<\s]+)')  # "soak3:12", the client id
HTML_ARTICLE_RE = re.compile(r'<article\b[^>]*?\bid="message-(\d+)"[^>]*>.*?</article>', re.S)
OLDER_RE = re.compile(r'class="older" hx-get="[^"?]*\?before=(\d+)"')


@dataclass
class Finish:
    """What every client waits for: all of them done, then the room's final seq."""

    clients: int
    arrived: int = 0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    target: int | None = None  # the room's last_seq once nobody changes anything
    targeted: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived == self.clients:
            self.all_done.set()


@dataclass
class SoakClient:
    """One user with a tab on each server, sending ``EACH`` messages of its own and
    changing some of them, and others' reactions."""

    index: int
    name: str
    tabs: list[Browser]  # its home server first
    room: int
    finish: Finish
    # The page's #messages: message id -> its element as last swapped in, in order.
    articles: dict[int, str] = field(default_factory=dict)
    received: list[tuple[int, int]] = field(default_factory=list)  # appended (id, seq)
    duplicates: list[int] = field(default_factory=list)  # appended while already there
    seen: dict[str, int] = field(default_factory=dict)  # client id -> message id
    applied: int = 0  # the highest seq applied (app.js appliedSeq)
    reconnects: int = 0
    sent: int = 0  # how many of its messages it has sent at least once
    total: int = CLIENTS * EACH
    back: asyncio.Event = field(default_factory=asyncio.Event)  # all its messages came back
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    # What it meant: its messages' last texts (None: deleted), its reactions.
    texts: dict[str, str | None] = field(default_factory=dict)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    planned: list[tuple[str, int]] = field(default_factory=list)  # (what, message index)
    changes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGES, 0))
    # Unread counts as its page would show them, and what keeps them fresh.
    counts: tuple[int, int] | None = None
    activity: int = 0
    refresher: asyncio.Task[None] | None = None
    dirty: bool = False
    refreshed_at: float = float("-inf")
    read_seq: int = 0  # the read position its last counts were computed at
    read_sent: int = 0  # where its last quiet-room read went

    @property
    def hidden(self) -> bool:
        """A quarter of the clients are hidden tabs after their first half: they stop
        reading (but once, see read_to) and follow the room's counts in the sidebar."""
        return self.index % 4 == 3

    def __post_init__(self) -> None:
        room = self.room
        self.unread_re = re.compile(
            rf'id="unread-{room}" data-unread="(\d+)" data-mentions="(\d+)" data-read="(\d+)"'
        )
        self.activity_re = re.compile(rf'id="activity-{room}" data-room="{room}" data-seq="(\d+)"')

    # The page's model

    def take(self, frame: str) -> None:
        """Apply one frame as htmx and app.js would."""
        mode: str | None = None
        wrap_end = -1
        for token in TOKEN_RE.finditer(frame):
            if token["wrap"]:
                mode, wrap_end = token["mode"], token.end()
                if mode == "innerHTML":
                    self.articles.clear()  # a fresh list (too far behind)
            elif token["article"]:
                message_id, html = int(token["id"]), token["article"]
                inside = mode == "innerHTML" or (
                    mode == "beforeend" and not frame[wrap_end : token.start()].strip()
                )
                if inside:
                    wrap_end = token.end()
                    if mode == "beforeend":
                        if message_id in self.articles:
                            self.duplicates.append(message_id)
                        self.received.append((message_id, int(SEQ_RE.search(html)[1])))  # type: ignore[index]
                    self.articles[message_id] = html
                else:
                    mode = None
                    # Swapped in place of the element with its id; one the page does
                    # not hold lands on a stand-in that is dropped (app.js).
                    if message_id in self.articles:
                        self.articles[message_id] = html
                    else:
                        continue
                seq, rev = map(int, SEQ_RE.search(html).groups())  # type: ignore[union-attr]
                self.applied = max(self.applied, seq, rev)
                if (base := BASE_RE.search(html)) is not None:
                    self.seen[base[1]] = message_id
            else:
                mode = None
                self.applied = max(self.applied, int(token["room_seq"]))
        for found in self.unread_re.finditer(frame):
            self.counts = (int(found[1]), int(found[2]))
            self.read_seq = int(found[3])
        for found in self.activity_re.finditer(frame):
            if int(found[1]) > self.activity:
                self.activity = int(found[1])
                if self.hidden:  # a visible page reads its open room instead
                    self.refresh_soon()
        if not self.back.is_set() and all(f"{self.name}:{i}" in self.seen for i in range(EACH)):
            self.back.set()
        if len(self.received) >= self.total:
            target = self.finish.target
            if target is not None and self.applied >= target:
                self.settled.set()

    def refresh_soon(self) -> None:
        """The page fetches its room list (with its counts) soon after activity."""
        self.dirty = True
        if self.refresher is None or self.refresher.done():
            self.refresher = asyncio.create_task(self.refresh())

    async def refresh(self) -> None:
        while self.dirty:
            wait = max(REFRESH_AFTER, self.refreshed_at + REFRESH_EVERY - time.monotonic())
            await asyncio.sleep(wait)
            self.dirty = False
            self.refreshed_at = time.monotonic()
            self.counts = await self.fetch_counts()

    async def fetch_counts(self) -> tuple[int, int]:
        response = await self.request("GET", "/api/rooms")
        mine = next(r for r in response.json() if r["id"] == self.room)
        return mine["unread"], mine["mentions"]

    # Talking to the servers

    async def connect(self) -> websockets.ClientConnection:
        """A socket on the first server that answers, resuming after what it holds."""
        while True:
            for browser in self.tabs:
                try:
                    return await browser.socket(self.room, after=self.applied, max_queue=None)
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    continue
            await asyncio.sleep(0.1)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An API request to the first server that answers it (without a 5xx)."""
        while True:
            for browser in self.tabs:
                try:
                    response = await browser.api(method, path, **kwargs)
                except httpx.HTTPError:
                    continue
                if response.status_code < 500:
                    return response
            await asyncio.sleep(0.1)

    async def read(self, ws: websockets.ClientConnection) -> None:
        try:
            async for frame in ws:
                self.take(frame if isinstance(frame, str) else frame.decode())
        except websockets.ConnectionClosed:
            pass

    def read_to(self) -> int:
        """Where it reads to once the room is quiet: a visible page all of it; a
        hidden tab stops short of the last ten messages and of the first client's last
        two, which the last changes delete and edit (so its badges must follow them,
        below the 99+ where counts stop)."""
        if not self.hidden:
            return self.applied
        last_two = self.articles[self.seen[f"soak0:{EACH - 2}"]]
        return min(int(SEQ_RE.search(last_two)[1]), self.received[-10][1]) - 1  # type: ignore[index]

    def text(self, i: int) -> str:
        mention = f" hi @soak{(self.index + 1) % CLIENTS}" if i % 7 == 3 else ""
        return f"{self.name}:{i}{mention}"

    async def send(self, ws: websockets.ClientConnection, i: int) -> None:
        cid = f"{self.name}:{i}"
        self.texts.setdefault(cid, self.text(i))
        await ws.send(json.dumps({"message": self.text(i), "client_id": cid}))

    async def edit(self, i: int, text: str) -> bool:
        """Edit its message ``i``; False while that has not come back yet."""
        cid = f"{self.name}:{i}"
        message_id = self.seen.get(cid)
        if message_id is None:
            return False
        if self.texts.get(cid) is not None:  # not deleted
            path = f"/api/rooms/{self.room}/messages/{message_id}"
            response = await self.request("PATCH", path, json={"text": text})
            assert response.status_code == 200, response.text
            self.texts[cid] = text
            self.changes["edit"] += 1
        return True

    async def delete(self, i: int) -> bool:
        cid = f"{self.name}:{i}"
        message_id = self.seen.get(cid)
        if message_id is None:
            return False
        response = await self.request("DELETE", f"/api/rooms/{self.room}/messages/{message_id}")
        assert response.status_code == 204, response.text
        self.texts[cid] = None
        self.changes["delete"] += 1
        return True

    async def react(self, i: int) -> bool:
        """Put a reaction on one of the latest messages of others, or take one back;
        False while it sees no message of others."""
        if i % 9 == 7 and self.reactions:
            message_id, emoji = self.reactions.pop(0)
            path = f"/api/rooms/{self.room}/messages/{message_id}/reactions/{emoji}"
            response = await self.request("DELETE", path)
            assert response.status_code in (200, 409), response.text  # 409: deleted since
            self.changes["unreact"] += 1
            return True
        others = [
            mid
            for mid, html in reversed(self.articles.items())
            if "data-deleted" not in html and f'data-author="{self.name}"' not in html
        ]
        if not others:
            return False
        message_id, emoji = others[min(i % 4, len(others) - 1)], EMOJI[(self.index + i) % 3]
        path = f"/api/rooms/{self.room}/messages/{message_id}/reactions/{emoji}"
        response = await self.request("PUT", path)
        assert response.status_code in (200, 409), response.text
        if response.status_code == 200 and (message_id, emoji) not in self.reactions:
            self.reactions.append((message_id, emoji))
            self.changes["react"] += 1
        return True

    def plan_after(self, i: int) -> None:
        """What the user does after sending message ``i``: edit, delete and react."""
        if i % 5 == 4:
            self.planned.append(("edit", i - 2))
        if i % 8 == 6:
            self.planned.append(("delete", i - 3))
        if i % 3 == 1:
            self.planned.append(("react", i))

    async def act(self) -> None:
        """Do what was planned, in order, as far as the messages it needs are back."""
        while self.planned:
            kind, i = self.planned[0]
            if kind == "edit":
                done = await self.edit(i, f"{self.name}:{i} edited")
            elif kind == "delete":
                done = await self.delete(i)
            else:
                done = await self.react(i)
            if not done:
                return
            self.planned.pop(0)

    async def run(self, deadline: float) -> None:
        """Send and change everything, then stay until the room is final and the
        test says stop."""
        arrived = read_all = False
        while time.monotonic() < deadline:
            ws = await self.connect()
            reader = asyncio.create_task(self.read(ws))
            try:
                # After a reconnect: resend whatever did not come back (same client id).
                for i in range(self.sent):
                    if f"{self.name}:{i}" not in self.seen:
                        await self.send(ws, i)
                while self.sent < EACH:
                    await self.send(ws, self.sent)
                    i, self.sent = self.sent, self.sent + 1
                    self.plan_after(i)
                    await self.act()
                    if i % 3 == 0 and not (self.hidden and i >= EACH // 2):
                        await ws.send(json.dumps({"read": self.applied}))
                    await asyncio.sleep(PACE)
                if not arrived:
                    # Done once its messages are back: committed, and so in the room.
                    back = asyncio.create_task(self.back.wait())
                    await asyncio.wait((reader, back), return_when=asyncio.FIRST_COMPLETED)
                    back.cancel()
                    if not self.back.is_set():
                        raise websockets.ConnectionClosed(None, None)
                    await self.act()  # what waited for messages to come back
                    assert not self.planned, self.planned
                    arrived = True
                    self.finish.arrive()
                if not read_all:
                    settled = asyncio.create_task(self.settled.wait())
                    await asyncio.wait((reader, settled), return_when=asyncio.FIRST_COMPLETED)
                    settled.cancel()
                    if not self.settled.is_set():
                        raise websockets.ConnectionClosed(None, None)
                    self.read_sent = self.read_to()
                    await ws.send(json.dumps({"read": self.read_sent}))
                    read_all = True
                stop = asyncio.create_task(self.finish.stop.wait())
                await asyncio.wait((reader, stop), return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if self.finish.stop.is_set():
                    await ws.close()
                    return
            except websockets.ConnectionClosed:
                pass
            finally:
                await reader
            self.reconnects += 1
        raise AssertionError(
            f"{self.name} got {len(self.received)} of {self.total} messages, "
            f"applied seq {self.applied} of {self.finish.target}"
        )


@pytest.fixture
def soak_db() -> str:
    return postgres_url("talkroom_hardening_soak")


async def fault_script(redis_server: RedisProcess, victim: Server, log: list[str]) -> None:
    """Redis dies and comes back; then one server is SIGKILLed and started again."""
    await asyncio.sleep(2)
    await asyncio.to_thread(redis_server.stop)
    log.append("redis killed")
    await asyncio.sleep(1.5)
    await asyncio.to_thread(redis_server.start)
    log.append("redis restarted")
    await asyncio.sleep(2)
    await asyncio.to_thread(victim.stop, signal.SIGKILL)
    log.append("server SIGKILLed")
    await asyncio.sleep(1)
    await asyncio.to_thread(victim.start)
    log.append("server restarted")


async def settle(clients: list[SoakClient], finish: Finish, srv: Server) -> None:
    """Every client reaches the room's seq now, and its counts have had time to follow
    (activity goes out every 0.5 s, and a page fetches its counts soon after)."""
    ((finish.target,),) = await query(
        srv, "SELECT last_seq FROM rooms WHERE id = :r", r=clients[0].room
    )
    for client in clients:
        client.settled.clear()
        client.take("")  # settles the ones already there
    await asyncio.wait_for(asyncio.gather(*(c.settled.wait() for c in clients)), timeout=120)
    await asyncio.sleep(0.5 + REFRESH_EVERY + 0.5)
    await asyncio.gather(*(c.refresher for c in clients if c.refresher is not None))


async def last_changes(clients: list[SoakClient], finish: Finish, srv: Server) -> None:
    """Once everyone is done and the room is quiet: a delete of a message the hidden
    tabs have not read and an edit that mentions one of them, with no new message
    after (their badges must follow these alone); then, once everybody has them and
    their counts have had time to follow, stop."""
    await finish.all_done.wait()
    await settle(clients, finish, srv)
    # The hidden tabs' reads have been answered (a busy server may take a while).
    hidden_tabs = [c for c in clients if c.hidden]
    deadline = time.monotonic() + 60
    while any(c.read_seq < c.read_sent or not c.read_sent for c in hidden_tabs):
        assert time.monotonic() < deadline, [(c.read_seq, c.read_sent) for c in hidden_tabs]
        await asyncio.sleep(0.1)  # noqa: ASYNC110
    first, hidden = clients[0], clients[3]
    await first.delete(EACH - 1)
    await first.edit(EACH - 2, f"{first.name}:{EACH - 2} edited for @{hidden.name}")
    await settle(clients, finish, srv)
    finish.stop.set()


async def test_soak_two_servers_thirty_two_clients_under_faults(
    tmp_path: Path, soak_db: str
) -> None:
    started = time.monotonic()
    redis_server = RedisProcess(tmp_path / "redis.log")
    redis_server.start()
    try:
        # A client away through both faults may miss more than the default re-render
        # limit; a higher one keeps every client's list comparable message by message.
        with servers(
            tmp_path, 2, soak_db, redis_server.url, message_rate="0", resync_limit="100000"
        ) as pair:
            room = pair[0].create_room("soak")
            finish = Finish(CLIENTS)
            clients = []
            for n in range(CLIENTS):
                home, other = pair[n % 2], pair[1 - n % 2]
                browser = await user_on(home, f"soak{n}")
                clients.append(
                    SoakClient(n, browser.username, [browser, tab(browser, other)], room, finish)
                )
            total = CLIENTS * EACH
            faults: list[str] = []
            deadline = time.monotonic() + 400  # a guard against a hang: a busy machine is slow
            await asyncio.gather(
                fault_script(redis_server, pair[0], faults),
                last_changes(clients, finish, pair[1]),
                *(client.run(deadline) for client in clients),
            )
            viewer = clients[1].tabs[0]
            expected = await history(viewer, room)
            fresh, fresh_seq = await fresh_render(viewer, room)
            api = await api_messages(viewer, room)
            unread = {c.name: await c.fetch_counts() for c in clients}
    finally:
        redis_server.stop()
    assert faults == ["redis killed", "redis restarted", "server SIGKILLed", "server restarted"]

    # Nothing lost, nothing twice, in order: each client's new messages are the history.
    meant = {cid: text for c in clients for cid, text in c.texts.items()}
    assert len(expected) == total == len(meant)
    seqs = [seq for _, seq in expected]
    assert seqs == sorted(set(seqs))
    for client in clients:
        assert client.duplicates == [], client.name
        assert client.received == expected, client.name

    # Live state equals a fresh fetch: every element, as the room page renders it now.
    assert fresh_seq == finish.target
    assert list(fresh) == [message_id for message_id, _ in expected]
    for client in clients:
        assert client.applied >= finish.target, client.name  # type: ignore[operator]
        assert not (problem := differences(client.articles, fresh)), f"{client.name}: {problem}"

    # The render (and the API) is what the clients did.
    by_cid = {m["client_id"]: m for m in api}
    for cid, text in meant.items():
        message = by_cid[cid]
        assert message["deleted"] == (text is None), cid
        assert message["text"] == text, cid
        assert ("data-deleted" in fresh[message["id"]]) == (text is None)
    reacted: dict[int, set[tuple[str, str]]] = {}
    for client in clients:
        for message_id, emoji in client.reactions:
            reacted.setdefault(message_id, set()).add((emoji, client.name))
    for message in api:
        got = {(r["emoji"], name) for r in message["reactions"] for name in r["usernames"]}
        want = set() if message["deleted"] else reacted.get(message["id"], set())
        assert got == want, message["id"]
        for emoji, _ in got:
            assert f'data-emoji="{emoji}"' in fresh[message["id"]]

    # Every page's badges equal a fresh count: those of hidden tabs are not zero.
    for client in clients:
        assert client.counts == unread[client.name], client.name
        assert (unread[client.name][0] > 0) == client.hidden, client.name
    assert unread[clients[3].name][1] > 0  # mentioned by the last edit, unread

    reconnects = sum(c.reconnects for c in clients)
    changes = {k: sum(c.changes[k] for c in clients) for k in clients[0].changes}
    print(
        f"\nsoak: {CLIENTS} clients on 2 servers, {total} messages saved and "
        f"{changes['edit']} edits, {changes['delete']} deletes, {changes['react']} reactions "
        f"added, {changes['unreact']} taken back (room seq {finish.target}); "
        f"{total * CLIENTS} deliveries and {len(fresh) * CLIENTS} rendered elements checked, "
        f"{reconnects} reconnects, faults: {', '.join(faults)}; lost 0, duplicated 0, "
        f"reordered 0, stale 0; unread counts equal a fresh GET /api/rooms for all "
        f"{CLIENTS}; {time.monotonic() - started:.0f} s"
    )


def differences(live: dict[int, str], fresh: dict[int, str]) -> str:
    """A short account of how a client's list differs from the fresh render."""
    if list(live) != list(fresh):
        missing, extra = set(fresh) - set(live), set(live) - set(fresh)
        return f"ids differ: missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
    stale = [i for i in fresh if live[i] != fresh[i]]
    if not stale:
        return ""
    first = stale[0]
    return f"{len(stale)} stale elements, e.g. live {live[first]!r} vs fresh {fresh[first]!r}"


async def fresh_render(browser: Browser, room: int) -> tuple[dict[int, str], int]:
    """Every message element of the room as a reload renders it (the room fragment,
    then each older page its sentinel loads), oldest first; and the page's seq."""
    headers = {"HX-Request": "true"}
    html = (await browser.client.get(f"/rooms/{room}", headers=headers)).text
    seq = int(re.search(r'<span id="room-seq" data-seq="(\d+)"', html)[1])  # type: ignore[index]
    pages = []
    while True:
        pages.append([(int(i), m[0]) for m in HTML_ARTICLE_RE.finditer(html) for i in [m[1]]])
        older = OLDER_RE.search(html)
        if older is None:
            break
        path = f"/rooms/{room}/messages?before={older[1]}"
        html = (await browser.client.get(path, headers=headers)).text
    return {i: article for page in reversed(pages) for i, article in page}, seq


async def api_messages(browser: Browser, room: int) -> list[dict[str, Any]]:
    """Every message of the room through the API (each with its client id, read
    from the database's history by seq), oldest first."""
    got: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        params = {"limit": 100, **({"before": before} if before else {})}
        page = (await browser.client.get(f"/api/rooms/{room}/messages", params=params)).json()
        if not page:
            break
        got += page
        before = page[-1]["seq"]
    sql = "SELECT id, client_id FROM messages WHERE room_id = :r"
    client_ids = dict(await query(browser.server, sql, r=room))
    for message in got:
        message["client_id"] = client_ids[message["id"]]
    return list(reversed(got))
