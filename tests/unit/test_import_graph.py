"""scripts/check_imports.py: import circles among app modules, and app.fastws alone."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from support import ROOT

SCRIPT = ROOT / "scripts" / "check_imports.py"


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


checker = load_checker()


def package(root: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` under ``root`` with these modules (path → source)."""
    for name, source in {"pkg/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def check(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = checker.main(["--root", str(root), "--package", "pkg", *args])
    return status, capsys.readouterr().out


# Today's shape of app: main → web.ws → web.fastws, and fastws back to main
# from inside the function that builds the app.
TODAY = {
    "pkg/main.py": "from pkg.web import ws\n",
    "pkg/web/__init__.py": "",
    "pkg/web/ws.py": "from pkg.web.fastws import DIRECT\n",
    "pkg/web/fastws.py": """\
        DIRECT = 1

        def create_app():
            from pkg.main import create_app as create_fastapi
            return create_fastapi()
        """,
}
KNOWN = "pkg.main -> pkg.web.ws -> pkg.web.fastws -> pkg.main"


def test_a_module_level_circle_is_found_with_its_path(tmp_path, capsys) -> None:
    root = package(
        tmp_path,
        {
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": "from . import c\n",  # relative, naming a module
            "pkg/c.py": "from .sub.d import thing\n",  # relative, naming a function
            "pkg/sub/__init__.py": "",
            "pkg/sub/d.py": "from pkg.a import x\nthing = x = 1\n",
            "pkg/free.py": "import os\nfrom pkg import a\n",  # into the circle, not on it
        },
    )
    status, out = check(root, capsys=capsys)
    assert status == 1
    assert "import circle: pkg.a -> pkg.b -> pkg.c -> pkg.sub.d -> pkg.a" in out
    assert out.count("import circle") == 1


def test_the_known_circle_is_found_once_its_last_import_moves_to_module_level(
    tmp_path, capsys
) -> None:
    files = dict(TODAY, **{"pkg/web/fastws.py": "import pkg.main\nDIRECT = 1\n"})
    status, out = check(package(tmp_path, files), capsys=capsys)
    assert status == 1
    assert f"import circle: {KNOWN}" in out


def test_imports_in_functions_and_under_type_checking_close_no_circle(tmp_path, capsys) -> None:
    files = dict(
        TODAY,
        **{
            "pkg/typed.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.main import ws
                """,
            "pkg/web/__init__.py": "from pkg import typed\n",
        },
    )
    root = package(tmp_path, files)
    assert check(root, capsys=capsys)[0] == 0

    status, out = check(root, "-v", capsys=capsys)
    assert status == 0
    assert "pkg.web.fastws -> pkg.main  (pkg/web/fastws.py:4, function)" in out
    assert "pkg.typed -> pkg.main  (pkg/typed.py:3, TYPE_CHECKING)" in out
    assert f"circle closed only by those: {KNOWN}" in out

    # --deferred counts what runs in functions, never what runs only for type checkers.
    status, out = check(root, "--deferred", capsys=capsys)
    assert status == 1
    assert f"import circle: {KNOWN}" in out
    assert out.count("import circle") == 1


def test_allow_tolerates_exactly_the_named_circle(tmp_path, capsys) -> None:
    files = dict(TODAY, **{"pkg/web/fastws.py": "import pkg.main\nDIRECT = 1\n"})
    root = package(tmp_path, files)
    # Written from any of its modules, with either arrow.
    for written in (KNOWN, "pkg.web.ws → pkg.web.fastws → pkg.main → pkg.web.ws"):
        status, out = check(root, "--allow", written, capsys=capsys)
        assert status == 0, out
        assert f"allowed import circle: {KNOWN}" in out

    # Another circle still fails.
    package(tmp_path, {"pkg/x.py": "import pkg.y\n", "pkg/y.py": "import pkg.x\n"})
    status, out = check(root, "--allow", KNOWN, capsys=capsys)
    assert status == 1
    assert "import circle: pkg.x -> pkg.y -> pkg.x" in out


def test_an_allowance_for_a_circle_that_is_gone_fails(tmp_path, capsys) -> None:
    status, out = check(package(tmp_path, TODAY), "--allow", KNOWN, capsys=capsys)
    assert status == 1
    assert f"--allow names no circle any more: {KNOWN}; remove it" in out


def test_allow_refuses_what_is_not_a_circle(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        check(package(tmp_path, TODAY), "--allow", "pkg.main", capsys=capsys)


def test_fastws_may_import_only_itself_and_outside_modules(tmp_path, capsys) -> None:
    root = package(
        tmp_path,
        {
            "pkg/db.py": "",
            "pkg/fastws/__init__.py": "import asyncio\nfrom .protocol import Protocol\n",
            "pkg/fastws/protocol.py": "from pkg.fastws import frames\nclass Protocol: ...\n",
            "pkg/fastws/frames.py": "",
        },
    )
    status, out = check(root, capsys=capsys)
    assert status == 0, out
    assert "does not exist yet" not in out

    # Even an import that runs only when called: fastws would still need the app.
    (root / "pkg/fastws/frames.py").write_text("def later():\n    from pkg import db\n")
    status, out = check(root, capsys=capsys)
    assert status == 1
    assert "pkg.fastws must not import pkg.db (pkg/fastws/frames.py:2)" in out


def test_a_missing_fastws_is_skipped_with_a_message(tmp_path, capsys) -> None:
    status, out = check(package(tmp_path, {"pkg/a.py": ""}), capsys=capsys)
    assert status == 0
    assert "pkg.fastws does not exist yet: not checking that it stands alone" in out


# ---- The real tree ----------------------------------------------------------------


def test_app_has_no_module_level_import_circle() -> None:
    # As CI runs it (.ci/run); also checks that app.fastws stands alone once it exists.
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_app_has_no_import_circle_even_through_functions(capsys) -> None:
    status, out = checker.main(["--deferred"]), capsys.readouterr().out
    assert status == 0, out


def test_importing_app_fastws_pulls_in_nothing_else_from_app() -> None:
    if not (ROOT / "app" / "fastws").is_dir():
        pytest.skip("app/fastws does not exist yet (issue 11 creates it)")
    code = (
        "import sys, app.fastws; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'app' "
        "and m != 'app' and not m.startswith('app.fastws')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
