"""Everything app.fastws.protocol takes from uvicorn, in one place.

None of it is documented API: a uvicorn release may rename or rework any of it.
tests/unit/test_fastws_uvicorn.py walks these lists against the installed uvicorn,
so an upgrade that breaks the protocol fails that test, naming what changed,
instead of breaking sockets. Edit the lists whenever protocol.py or inbox.py
start (or stop) using something of uvicorn's.
"""

from __future__ import annotations

# Names imported from uvicorn's modules, as "module:name".
IMPORTS = (
    "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol",
    "uvicorn.protocols.utils:ClientDisconnected",
    "uvicorn._types:ASGIReceiveEvent",
    "uvicorn._types:ASGISendEvent",
)

# Methods of WebSocketsSansIOProtocol that FrameWritingProtocol calls or overrides.
METHODS = ("run_asgi", "send", "receive", "send_500_response", "on_task_complete")

# Attributes a WebSocketsSansIOProtocol has once its handshake is in, that
# FrameWritingProtocol reads or replaces.
ATTRIBUTES = (
    "app",
    "scope",
    "logger",
    "loop",
    "tasks",
    "transport",
    "conn",
    "queue",
    "request",
    "response",
    "handshake_complete",
    "close_sent",
    "disconnected",
    "close_timer",
    "writable",
    "read_paused",
)

# What it uses of those attributes' own (conn is websockets' ServerProtocol; the
# rest are asyncio's and logging's, but which object uvicorn keeps there is its choice).
NESTED = (
    "conn.state",
    "writable.is_set",
    "queue.empty",
    "queue.get_nowait",
    "tasks.add",
    "loop.create_task",
    "logger.error",
    "logger.exception",
)

# What FrameWritingProtocol redefines on purpose; everything else it defines must
# be new to uvicorn, or uvicorn would call ours by mistake.
OVERRIDES = ("run_asgi", "send")

# Its run_asgi is a copy of upstream's with these edits, each as (ours, upstream)
# in ast.unparse's spelling (four-space indents), docstring and comments aside:
# 1. the protocol goes into the scope, for the app to find under DIRECT;
# 2. a detached socket stays open when its ASGI coroutine returns.
RUN_ASGI_EDITS = (
    ("    self.scope['extensions'][DIRECT] = self\n", ""),
    ("if self.close_timer is None and (not self.detached):", "if self.close_timer is None:"),
)

# detach() replaces the queue with an Inbox, which has only these: outside
# receive() (which a detached socket's app no longer calls) uvicorn may call no other.
QUEUE_CALLS = ("put_nowait",)

# send() drops the handshake's request and response once accepted: uvicorn may
# touch them only in these methods, which read them before the handshake completes.
HANDSHAKE_ONLY = {"request": ("handle_connect",), "response": ("handle_connect", "send")}
