"""app.removal.remove_user: a deadlock PostgreSQL ended is tried once more, nothing else."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from app import removal


class Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def failure(sqlstate: str) -> DBAPIError:
    return DBAPIError("DELETE FROM users", None, Orig(sqlstate))


class FakeDatabase:
    """run_write raises the given errors in turn, then answers."""

    engine = SimpleNamespace(url="sqlite://")

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def run_write(self, fn: Any, *args: Any) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "removed"


async def test_a_deadlock_is_tried_once_more() -> None:
    db = FakeDatabase(failure(removal.DEADLOCK))
    assert await removal.remove_user(db, 7) == "removed"  # type: ignore[arg-type]
    assert db.calls == 2


@pytest.mark.parametrize(
    "errors", [(failure("23503"),), (failure(removal.DEADLOCK), failure(removal.DEADLOCK))]
)
async def test_other_errors_and_a_second_deadlock_are_raised(errors: tuple[Exception]) -> None:
    db = FakeDatabase(*errors)
    with pytest.raises(DBAPIError):
        await removal.remove_user(db, 7)  # type: ignore[arg-type]
    assert db.calls == len(errors)
