"""FrameWritingProtocol on uvicorn's real handshake over a fake transport: direct
frame writes, and a detached socket's messages reaching its receiver."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send
from test_fastws_uvicorn import Peer, serving
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

from app.fastws.protocol import FrameWritingProtocol


def protocol_of(peer: Peer) -> FrameWritingProtocol:
    assert isinstance(peer.protocol, FrameWritingProtocol)
    return peer.protocol


def texts(peer: Peer) -> list[str]:
    frames = [e for e in peer.received() if isinstance(e, Frame)]
    return [bytes(f.data).decode() for f in frames if f.opcode is Opcode.TEXT]


class Recorder:
    """A Receiver that keeps what it is handed; fails on the text "boom"."""

    def __init__(self) -> None:
        self.texts: list[str | None] = []
        self.closed_count = 0
        self.done = asyncio.Event()

    async def receive(self, text: str | None) -> None:
        if text == "boom":
            raise RuntimeError("boom")
        self.texts.append(text)

    async def closed(self) -> None:
        self.closed_count += 1
        self.done.set()


class Detaching(Peer):
    """An app that accepts, detaches the socket to a Recorder and returns."""

    def __init__(self, protocol_class: type[WebSocketsSansIOProtocol]) -> None:
        super().__init__(protocol_class)
        self.recorder = Recorder()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        protocol_of(self).detach(self.recorder)
        self.accepted.set()


async def settle(peer: Peer) -> None:
    """Until the server's tasks (ASGI, inbox) have run."""
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.gather(*peer.state.tasks)


async def test_write_frame_writes_the_bytes_once_open_and_not_after_close() -> None:
    async with serving(FrameWritingProtocol) as peer:
        protocol = protocol_of(peer)
        peer.received()  # the 101
        assert protocol.request is None and protocol.response is None
        assert protocol.write_frame(Frame(Opcode.TEXT, b"one").serialize(mask=False))
        assert texts(peer) == ["one"]
        protocol.pause_writing()  # the transport's buffer is full
        assert not protocol.write_frame(Frame(Opcode.TEXT, b"two").serialize(mask=False))
        protocol.resume_writing()
        await protocol.close(1000)
        assert not protocol.write_frame(Frame(Opcode.TEXT, b"three").serialize(mask=False))
        assert texts(peer) == []


async def test_a_detached_socket_stays_open_and_hands_over_each_message() -> None:
    async with serving(FrameWritingProtocol, Detaching) as peer:
        assert isinstance(peer, Detaching)
        await settle(peer)
        assert not peer.transport.closed  # the ASGI app has returned
        peer.received()  # the 101
        for text in ("a", "b"):
            peer.send(lambda text=text: peer.client.send_text(text.encode()))
        peer.send(lambda: peer.client.send_binary(b"\x00"))
        await settle(peer)
        assert peer.recorder.texts == ["a", "b", None]
        assert peer.transport.reading  # paused per message, resumed once handed over
        peer.send(lambda: peer.client.send_close(1000))
        await asyncio.wait_for(peer.recorder.done.wait(), 5)
        assert peer.recorder.closed_count == 1


async def test_a_failing_receiver_closes_the_socket_with_1011() -> None:
    async with serving(FrameWritingProtocol, Detaching) as peer:
        assert isinstance(peer, Detaching)
        await settle(peer)
        peer.received()  # the 101
        peer.send(lambda: peer.client.send_text(b"boom"))
        await asyncio.wait_for(peer.recorder.done.wait(), 5)
        closes = [e for e in peer.received() if isinstance(e, Frame) and e.opcode is Opcode.CLOSE]
        assert [int.from_bytes(bytes(f.data)[:2]) for f in closes] == [1011]
        assert peer.recorder.closed_count == 1
