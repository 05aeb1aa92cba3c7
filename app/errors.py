"""What the chat domain refuses, as errors whose message is shown to the user.

In one module of their own so that rooms, the writer and chat can all raise them,
and the web layer map them to responses, without importing one another.
"""

from __future__ import annotations


class ChatError(Exception):
    """Something the user can fix; the message is shown to them."""


class RoomNotFound(ChatError):
    def __init__(self) -> None:
        super().__init__("That room does not exist (any more).")


class RoomExists(ChatError):
    def __init__(self, name: str) -> None:
        super().__init__(f"A room named {name!r} exists already.")


class RateLimited(ChatError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"You are sending too fast; try again in {retry_after:.1f} s.")
        self.retry_after = retry_after


class UserNotFound(ChatError):
    def __init__(self, name: str = "") -> None:
        super().__init__(f"There is no user named {name!r}." if name else "There is no such user.")


class Conflict(ChatError):
    """The request is well formed but cannot apply to the thing as it is now (409):
    a schema cannot say which rooms are private or who the caller is."""


class NotAllowed(ChatError):
    """The caller can see the room but may not do this to it."""


class MessageNotFound(ChatError):
    """No such message in this room (one of another room is not found either)."""

    def __init__(self) -> None:
        super().__init__("That message does not exist in this room.")


class UploadTooLarge(ChatError):
    """An upload over the size limit (413); nothing of it was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Uploads can be at most {limit / 1024 / 1024:g} MB.")
