from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from support import Browser, Server, drop_created_databases, running_server

_names = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One talkroom on the embedded default (SQLite, in-process broker), shared."""
    with running_server(tmp_path_factory.mktemp("server"), message_rate="0") as srv:
        yield srv


@pytest.fixture
def unique() -> str:
    """A name no other test uses, valid as a username or room name."""
    return f"n{next(_names)}"


@pytest.fixture
def room(server: Server, unique: str) -> int:
    return server.create_room(f"room-{unique}")


@pytest.fixture
async def make_user(server: Server) -> AsyncIterator[Callable[..., Awaitable[Browser]]]:
    """Registers a fresh user in a browser profile of their own."""
    made: list[Browser] = []

    async def make(name: str | None = None, target: Server | None = None) -> Browser:
        browser = Browser(target or server)
        made.append(browser)
        response = await browser.register(name or f"user{next(_names)}")
        assert response.status_code == 303, response.text
        return browser

    yield make
    for browser in made:
        await browser.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_created_databases()


# The files that take longest, longest first (`.ci/run` lists the slowest tests).
# With one file per worker at a time (--dist loadfile), a long file handed out last
# is the whole run's tail: started first, the short ones fill in around it.
SLOW_FIRST = (
    "integration/test_webhooks.py",
    "integration/test_scale.py",
    "integration/test_websocket.py",
    "integration/test_api.py",
    "integration/test_attachments.py",
    "integration/test_schemathesis.py",
    "integration/test_schemathesis_admin_pg.py",
    "integration/test_tokens.py",
    "integration/test_hardening_soak.py",
    "integration/test_schemathesis_admin.py",
    "integration/test_hardening_input.py",
    "integration/test_bots.py",
    "integration/test_room_page_window.py",
    "integration/test_run_script.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def slowness(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(root).as_posix(), len(rank))

    items.sort(key=slowness)  # stable: the rest keep their order
