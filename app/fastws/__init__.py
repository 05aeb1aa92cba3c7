"""uvicorn's sans-I/O WebSocket protocol, made lighter for thousands of idle sockets.

Serve with ``ws="app.fastws.protocol:FrameWritingProtocol"``. The protocol hands
itself to the app in the ASGI scope, under ``scope["extensions"][DIRECT]``;
served by anything else, the extension is missing and the app uses plain ASGI.
It adds two things:

- ``write_frame``: a message in a room goes to every socket in it. Through ASGI
  each delivery costs a task switch, a send() coroutine chain and a frame
  encoding per socket; here the caller encodes the frame once and writes the
  same bytes to every socket that can take them at once. Anything that cannot
  (a socket still catching up, one whose buffer is full, one closing) takes the
  ordinary path, so ordering and backpressure stay with the caller.
- ``detach``: once a socket is set up, its ASGI coroutine returns and the socket
  lives on as the protocol object alone. Each message the client sends is then
  handed to a Receiver (``inbox.py``) in a short task, one at a time; while a
  socket is idle no task, coroutine chain, ASGI queue or scope is kept for it.

The package imports nothing from the rest of talkroom, and this file imports
nothing at all: code that only needs DIRECT (the plain-ASGI path) does not pull
in uvicorn's internals. What the protocol takes from uvicorn is listed in
``upstream.py`` and checked against the installed release by
tests/unit/test_fastws_uvicorn.py.
"""

# The ASGI scope extension under which the protocol hands itself to the app.
DIRECT = "talkroom.direct_socket"
