"""app.fastws against the installed uvicorn: what it takes from uvicorn is still there.

Everything checked here is listed in app/fastws/upstream.py. A failure means the
installed uvicorn changed something app.fastws.protocol relies on: port the change
(or pin uvicorn below that release) before serving sockets with it.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import importlib
import inspect
import operator
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.http11 import Response
from websockets.uri import parse_uri

from app.fastws import DIRECT, upstream
from app.fastws.protocol import FrameWritingProtocol

UPSTREAM = WebSocketsSansIOProtocol
HINT = f"uvicorn {uvicorn.__version__} changed what app.fastws.protocol relies on"


class Transport(asyncio.Transport):
    """A socket's transport, minus the socket: what the server writes is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class Peer:
    """The client end of one socket, and the ASGI app at the other: it accepts,
    keeps the scope, and waits until the block ends. Subclasses change the app."""

    def __init__(self, protocol_class: type[WebSocketsSansIOProtocol]) -> None:
        # No log config: uvicorn's would replace the test process's logging. The
        # interface is named: uvicorn cannot tell a bound method is ASGI 3.
        config = Config(
            self.app,
            ws=protocol_class,
            interface="asgi3",
            log_config=None,
            lifespan="off",
            proxy_headers=False,
        )
        config.ws_ping_interval = None  # no keepalive timer left behind
        config.load()
        self.state = ServerState()
        self.protocol = protocol_class(config, self.state, app_state={})
        self.transport = Transport()
        self.client = ClientProtocol(parse_uri("ws://fastws.test/ws"))
        self.seen = 0
        self.scope: Scope | None = None
        self.accepted = asyncio.Event()
        self.release = asyncio.Event()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        self.accepted.set()
        await self.release.wait()

    def send(self, write: Callable[[], None]) -> None:
        """Have the client write something, and hand the bytes to the server."""
        write()
        self.protocol.data_received(b"".join(self.client.data_to_send()))

    def received(self) -> list[Any]:
        """What the client has parsed of the server's writes since last asked."""
        self.client.receive_data(bytes(self.transport.out[self.seen :]))
        self.seen = len(self.transport.out)
        return self.client.events_received()


@asynccontextmanager
async def serving(
    protocol_class: type[WebSocketsSansIOProtocol], peer_class: type[Peer] = Peer
) -> AsyncIterator[Peer]:
    """One socket through the real handshake, with uvicorn's own Config and state,
    accepted by the time the block starts."""
    peer = peer_class(protocol_class)
    peer.protocol.connection_made(peer.transport)
    peer.send(lambda: peer.client.send_request(peer.client.connect()))
    try:
        await asyncio.wait_for(peer.accepted.wait(), 5)
        yield peer
    finally:
        peer.release.set()
        if not peer.protocol.disconnected:
            peer.protocol.connection_lost(None)
        await asyncio.wait_for(asyncio.gather(*peer.state.tasks), 5)


def class_tree(cls: type) -> ast.ClassDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    node = tree.body[0]
    assert isinstance(node, ast.ClassDef)
    return node


def self_attributes(node: ast.AST) -> list[ast.Attribute]:
    """Every ``self.X`` in node."""
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
    ]


def methods(cls: type) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        n.name: n
        for n in class_tree(cls).body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_imports_exist() -> None:
    for spec in upstream.IMPORTS:
        module, name = spec.split(":")
        assert hasattr(importlib.import_module(module), name), f"{HINT}: {spec} is gone"


def test_methods_exist() -> None:
    for name in upstream.METHODS:
        assert callable(getattr(UPSTREAM, name, None)), f"{HINT}: {UPSTREAM.__name__}.{name}"
    assert set(upstream.OVERRIDES) <= set(upstream.METHODS)


async def test_attributes_exist_on_a_live_socket() -> None:
    """Every listed attribute, on uvicorn's own protocol with its handshake in."""
    async with serving(UPSTREAM) as peer:
        missing = [a for a in upstream.ATTRIBUTES if not hasattr(peer.protocol, a)]
        for path in upstream.NESTED:
            try:
                operator.attrgetter(path)(peer.protocol)
            except AttributeError:
                missing.append(path)
        assert not missing, f"{HINT}: no {', '.join(missing)} on {UPSTREAM.__name__}"


def normalised(function: Callable[..., Any]) -> str:
    """A function's code in ast.unparse's spelling: no docstring, comments or layout."""
    node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    assert isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef)
    if ast.get_docstring(node) is not None:
        node.body = node.body[1:]
    return ast.unparse(node) + "\n"


def test_run_asgi_is_upstreams_but_for_the_documented_edits() -> None:
    ours = normalised(FrameWritingProtocol.run_asgi)
    for edited, original in upstream.RUN_ASGI_EDITS:
        assert ours.count(edited) == 1, f"edit not found once in our run_asgi: {edited!r}"
        ours = ours.replace(edited, original)
    theirs = normalised(UPSTREAM.run_asgi)
    diff = "".join(
        difflib.unified_diff(
            ours.splitlines(keepends=True),
            theirs.splitlines(keepends=True),
            "app.fastws run_asgi without its edits",
            f"uvicorn {uvicorn.__version__} run_asgi",
        )
    )
    assert not diff, f"{HINT}: port this into FrameWritingProtocol.run_asgi\n{diff}"


def test_uvicorn_runs_our_run_asgi() -> None:
    calls = [
        a.attr for a in self_attributes(methods(UPSTREAM)["handle_connect"]) if a.attr == "run_asgi"
    ]
    assert calls, f"{HINT}: handle_connect no longer starts self.run_asgi()"


def test_nothing_of_ours_shadows_uvicorn() -> None:
    theirs = {a.attr for a in self_attributes(class_tree(UPSTREAM))} | set(dir(UPSTREAM))
    ours = {name for name in vars(FrameWritingProtocol) if not name.startswith("__")}
    clashes = (ours - set(upstream.OVERRIDES)) & theirs
    assert not clashes, f"{HINT}: uvicorn now has {sorted(clashes)} too"


def test_the_lists_name_everything_the_protocol_touches() -> None:
    """A self.X in protocol.py that is neither ours nor listed is a dependency the
    other tests would not check."""
    ours = set(vars(FrameWritingProtocol))
    listed = set(upstream.METHODS) | set(upstream.ATTRIBUTES)
    tree = class_tree(FrameWritingProtocol)
    unlisted = {a.attr for a in self_attributes(tree)} - ours - listed
    # transport is asyncio's (the loop's), not uvicorn's; conn.* and the rest are not.
    nested = {
        f"{n.value.attr}.{n.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Attribute)
        and n.value in self_attributes(tree)
        and n.value.attr in listed - {"transport", "app", "send", "receive"}
    }
    supers = {
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Call)
        and getattr(n.func.value.func, "id", None) == "super"
    }
    assert not unlisted, f"add to app/fastws/upstream.py: {sorted(unlisted)}"
    assert nested <= set(upstream.NESTED), f"add to NESTED: {sorted(nested - set(upstream.NESTED))}"
    assert supers <= set(upstream.METHODS), f"add to METHODS: {sorted(supers)}"


def test_a_detached_queue_only_ever_gets_put_nowait() -> None:
    for name, method in methods(UPSTREAM).items():
        if name in ("__init__", "receive"):
            continue
        uses = [a for a in self_attributes(method) if a.attr == "queue"]
        calls = [
            n.attr
            for n in ast.walk(method)
            if isinstance(n, ast.Attribute) and any(n.value is use for use in uses)
        ]
        assert len(calls) == len(uses), f"{HINT}: {name} uses self.queue itself"
        odd = set(calls) - set(upstream.QUEUE_CALLS)
        assert not odd, f"{HINT}: {name} calls self.queue.{', '.join(sorted(odd))}"


@pytest.mark.parametrize("attribute", sorted(upstream.HANDSHAKE_ONLY))
def test_the_dropped_handshake_is_read_only_at_the_handshake(attribute: str) -> None:
    readers = {
        name
        for name, method in methods(UPSTREAM).items()
        if any(a.attr == attribute for a in self_attributes(method))
    }
    allowed = set(upstream.HANDSHAKE_ONLY[attribute])
    assert readers <= allowed, f"{HINT}: self.{attribute} is used in {sorted(readers - allowed)}"


async def test_the_handshake_completes_under_frame_writing_protocol() -> None:
    """The harness above is honest: a real handshake, a 101, the protocol in the scope."""
    async with serving(FrameWritingProtocol) as peer:
        (response,) = peer.received()
        assert isinstance(response, Response) and response.status_code == 101
        assert peer.scope is not None and peer.scope["extensions"][DIRECT] is peer.protocol
