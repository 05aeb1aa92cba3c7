"""Schemathesis, admin, SQLite (fuzz_support.py says what is checked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_support import FUZZ_TIMEOUT_S, fuzz_as_an_admin, fuzzed_server

pytestmark = pytest.mark.timeout(FUZZ_TIMEOUT_S)


def test_fuzz_as_an_admin_with_a_token(tmp_path_factory, tmp_path: Path) -> None:
    with fuzzed_server("sqlite", tmp_path_factory) as server:
        fuzz_as_an_admin(server, tmp_path)
