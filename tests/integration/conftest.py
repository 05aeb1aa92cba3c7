from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import Server, postgres_url, running_server

# Modules whose tests run on PostgreSQL as well as SQLite: those where the
# database's own behaviour shows (seq allocation under concurrent writers,
# unique constraints, integer and text types it refuses). The rest would only
# repeat the same HTTP paths at twice the cost.
ON_BOTH = {
    "test_account_sessions",
    "test_accounts",
    "test_attachments",
    "test_api",
    "test_edit_delete",
    "test_faces",
    "test_formatting",
    "test_hardening_input",
    "test_private_rooms",
    "test_reactions",
    "test_search",
    "test_search_index",
    "test_search_reindex",
    "test_tokens",
    "test_user_removal",
    "test_websocket",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        module = metafunc.module.__name__.rpartition(".")[2]
        engines = ["sqlite", "postgres"] if module in ON_BOTH else ["sqlite"]
        metafunc.parametrize("server", engines, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One shared server per database engine (see ON_BOTH)."""
    settings = {"message_rate": "0"}
    if request.param == "postgres":
        settings["database_url"] = postgres_url("talkroom_integration")
    with running_server(tmp_path_factory.mktemp(f"server-{request.param}"), **settings) as srv:
        yield srv
