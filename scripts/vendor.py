"""Fetch the pinned front-end libraries from the npm registry into app/static/vendor/.

python scripts/vendor.py          # download, verify integrity + sha256, write files
python scripts/vendor.py --check  # verify the committed files offline (exit 0/1)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

REGISTRY = "https://registry.npmjs.org"
VENDOR = Path(__file__).resolve().parent.parent / "app" / "static" / "vendor"


class Entry(NamedTuple):
    package: str
    version: str
    member: str  # path inside the tarball
    dest: str  # file name under app/static/vendor/
    sha256: str


PINS: tuple[Entry, ...] = (
    Entry(
        "htmx.org",
        "2.0.11",
        "package/dist/htmx.min.js",
        "htmx.min.js",
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
    ),
    Entry(
        "htmx.org",
        "2.0.11",
        "package/LICENSE",
        "htmx.LICENSE",
        "d3d2456f76414f2456104660ebd65aff1c04cd7966b942bdabd63f3cdb316a38",
    ),
    Entry(
        "htmx-ext-ws",
        "2.0.4",
        "package/ws.js",
        "ext-ws.js",
        "dab17ec53b42135cc90ca3657a9be5e2aae6cceb3dbbf1952541aa4650fcb59e",
    ),
    Entry(
        "htmx-ext-ws",
        "2.0.4",
        "package/LICENSE",
        "ext-ws.LICENSE",
        "a17d224ce9afdc21ec9491b76a2f5d036d19aa641ac4f85ca29c21f9f7e54fdf",
    ),
)


class VendorError(Exception):
    pass


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as resp:
        data: bytes = resp.read()
    return data


def fetch_tarball(package: str, version: str) -> bytes:
    meta = json.loads(_get(f"{REGISTRY}/{package}/{version}"))
    integrity: str = meta["dist"]["integrity"]
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise VendorError(f"{package}@{version}: unsupported integrity {integrity!r}")
    name = package.rsplit("/", 1)[-1]
    data = _get(f"{REGISTRY}/{package}/-/{name}-{version}.tgz")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise VendorError(
            f"{package}@{version}: tarball integrity mismatch "
            f"(registry sha512-{expected}, got sha512-{actual})"
        )
    return data


def download() -> None:
    tarballs: dict[tuple[str, str], bytes] = {}
    out: dict[str, bytes] = {}
    for e in PINS:
        key = (e.package, e.version)
        if key not in tarballs:
            tarballs[key] = fetch_tarball(*key)
        with tarfile.open(fileobj=io.BytesIO(tarballs[key]), mode="r:gz") as tar:
            fh = tar.extractfile(e.member)
            if fh is None:
                raise VendorError(f"{e.package}@{e.version}: {e.member} is not a file")
            content = fh.read()
        digest = hashlib.sha256(content).hexdigest()
        if digest != e.sha256:
            raise VendorError(
                f"{e.package}@{e.version}:{e.member}: sha256 mismatch "
                f"(pinned {e.sha256}, got {digest})"
            )
        out[e.dest] = content
    VENDOR.mkdir(parents=True, exist_ok=True)
    for dest, content in out.items():  # write only after everything verified
        (VENDOR / dest).write_bytes(content)
        print(f"wrote {VENDOR / dest}")


def check() -> bool:
    ok = True
    for e in PINS:
        path = VENDOR / e.dest
        if not path.is_file():
            print(f"MISSING  {e.dest}")
            ok = False
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != e.sha256:
            print(f"MISMATCH {e.dest}: expected {e.sha256}, got {digest}")
            ok = False
        else:
            print(f"ok       {e.dest}  {e.package}@{e.version}  {digest}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify committed files, no network")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if check() else 1
    try:
        download()
    except (VendorError, OSError, KeyError, ValueError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if check() else 1


if __name__ == "__main__":
    sys.exit(main())
