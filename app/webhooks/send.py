"""One webhook POST: signed, to the checked address, bounded in time and size.

The body is ``{"message": ..., "room": ...}``; ``X-Talkroom-Signature`` is
``sha256=`` HMAC-SHA256(secret, timestamp + "." + body) with the timestamp in
``X-Talkroom-Timestamp`` (Unix seconds), so a receiver can refuse replays
older than a few minutes. Redirects are not followed (one is a failure), the
bot's API token is never sent, and the reply is read up to a cap within one
total deadline, so neither a 2 MB answer nor a byte a second holds anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass

import httpx
import orjson

from app.webhooks.urls import Target

SIGNATURE = "X-Talkroom-Signature"
TIMESTAMP = "X-Talkroom-Timestamp"
DELIVERY = "X-Talkroom-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None  # the HTTP status, None if there was no answer
    reply: str  # the text to post as the bot ("" for none)
    error: str  # what went wrong ("" if nothing)
    retry: bool  # worth trying again later


def new_client() -> httpx.AsyncClient:
    # No proxies or .netrc from the environment (trust_env): the request goes
    # straight to the checked address, with nothing added to it.
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, http2=False)


async def post(
    client: httpx.AsyncClient,
    target: Target,
    payload: dict[str, object],
    *,
    secret: str,
    delivery_id: int,
    deadline: float,
    max_reply: int,
) -> Outcome:
    body = orjson.dumps(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": "talkroom-webhook/1",
        "Accept-Encoding": "identity",
        SIGNATURE: sign(secret, timestamp, body),
        TIMESTAMP: timestamp,
        DELIVERY: str(delivery_id),
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        async with asyncio.timeout(deadline):
            request = client.build_request(
                "POST",
                target.dial_url,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(deadline),
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                return await _answer(response, max_reply)
            finally:
                await response.aclose()
    except TimeoutError:
        return Outcome(False, None, "", f"no complete answer within {deadline:g} s", True)
    except httpx.HTTPError as exc:
        return Outcome(False, None, "", f"{type(exc).__name__}: {exc}"[:200], True)


async def _answer(response: httpx.Response, max_reply: int) -> Outcome:
    status = response.status_code
    if 300 <= status < 400:
        return Outcome(False, status, "", f"redirect ({status}) not followed", False)
    if not 200 <= status < 300:
        # Server errors and "slow down" may pass; any other answer will not.
        again = status >= 500 or status in (408, 429)
        return Outcome(False, status, "", f"answered {status}", again)
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return Outcome(False, status, "", "compressed reply refused", False)
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_reply:
            return Outcome(False, status, "", f"reply over {max_reply} bytes", False)
    return Outcome(
        True, status, reply_text(response.headers.get("content-type", ""), bytes(body)), "", False
    )


def reply_text(content_type: str, body: bytes) -> str:
    """The text a reply asks the bot to post: ``{"text": ...}`` or plain text."""
    text = body.decode("utf-8", errors="replace").strip()
    if content_type.split(";")[0].strip().lower() == "application/json" or text.startswith("{"):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return text
        said = parsed.get("text") if isinstance(parsed, dict) else None
        return said.strip() if isinstance(said, str) else ""
    return text
