from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import Server, postgres_url, running_server


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The integration tests run twice: on the embedded default (SQLite) and on
    PostgreSQL, where seq allocation, constraints and types behave differently."""
    settings = {"message_rate": "0"}
    if request.param == "postgres":
        settings["database_url"] = postgres_url("talkroom_integration")
    with running_server(tmp_path_factory.mktemp(f"server-{request.param}"), **settings) as srv:
        yield srv
