"""Schemathesis, admin, PostgreSQL, which refuses what SQLite lets by (ids past 32
bits, NUL in text); fuzz_support.py says what is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_support import FUZZ_TIMEOUT_S, fuzz_as_an_admin, fuzzed_server

pytestmark = pytest.mark.timeout(FUZZ_TIMEOUT_S)


def test_fuzz_as_an_admin_with_a_token_on_postgresql(tmp_path_factory, tmp_path: Path) -> None:
    with fuzzed_server("postgres", tmp_path_factory) as server:
        fuzz_as_an_admin(server, tmp_path)
