"""A person-readable name for the browser behind a session ("Firefox on Windows").

ua-parser carries the uap-core rules every analytics tool uses; it compiles them on
first use (about a second), so ``describe`` runs in a thread and caches its answers.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from ua_parser import parse

UNKNOWN = "Unknown device"


@lru_cache(maxsize=1024)
def _describe(user_agent: str) -> str:
    if not user_agent:
        return UNKNOWN
    found = parse(user_agent)
    browser = found.user_agent.family if found.user_agent else None
    system = found.os.family if found.os else None
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or UNKNOWN


async def describe(user_agents: list[str]) -> dict[str, str]:
    """Each user agent's name, worked out off the event loop."""
    return await asyncio.to_thread(lambda: {ua: _describe(ua) for ua in set(user_agents)})
