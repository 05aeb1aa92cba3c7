"""Password hashing: the cost a deployment gets, and hashes made at another cost."""

from __future__ import annotations

from app.auth import Passwords
from app.settings import Settings


async def test_the_default_cost_is_rfc_9106s_64_mib_three_passes_four_lanes() -> None:
    hashed = await Passwords.of(Settings(_env_file=None)).hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_a_hash_keeps_its_own_cost_so_changing_it_locks_nobody_out() -> None:
    cheap = Passwords(1, memory_kib=8, passes=1, lanes=1)
    dear = Passwords(1, memory_kib=65536, passes=3, lanes=4)
    made_cheap = await cheap.hash("correct horse battery")
    assert made_cheap.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert await dear.verify("correct horse battery", made_cheap)
    assert await cheap.verify("correct horse battery", await dear.hash("correct horse battery"))
    assert not await dear.verify("wrong horse battery", made_cheap)
