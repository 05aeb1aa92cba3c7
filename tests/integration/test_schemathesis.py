"""Schemathesis, plain user, SQLite (fuzz_support.py says what is checked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_support import FUZZ_TIMEOUT_S, fuzz_as_a_plain_user, fuzzed_server

pytestmark = pytest.mark.timeout(FUZZ_TIMEOUT_S)


def test_fuzz_as_a_plain_user_with_cookie_and_csrf(tmp_path_factory, tmp_path: Path) -> None:
    with fuzzed_server("sqlite", tmp_path_factory) as server:
        fuzz_as_a_plain_user(server, tmp_path)
