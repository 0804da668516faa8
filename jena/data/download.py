"""The real file: download once, cache, verify.

``jena_climate_2009_2016.csv`` is downloaded (as the Keras team's zip) into :func:`cache_dir`
(``$JENA_DATA_DIR``, else ``$XDG_CACHE_HOME/jena`` or ``~/.cache/jena``) and verified (header,
first data row, row count) every time it is used; a file (or the ``.zip``) already in the cache is
used without any network access. Downloads and extractions go to a ``.part`` file that is renamed
when complete, so a crash never leaves half a file.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import zipfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

from .. import schema
from ..errors import DataError
from ..schema import HEADER_LINE, JENA_FILENAME
from .reading import one_line

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "JENA_URLS",
    "JENA_ZIPNAME",
    "cache_dir",
    "fetch_jena",
    "verify_jena_file",
]

JENA_URLS: tuple[str, ...] = (
    "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip",
)
JENA_ZIPNAME = JENA_FILENAME + ".zip"
DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a download attempt is given up


def _user_cache_dir() -> Path:
    env = os.environ.get("JENA_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jena"


def cache_dir() -> Path:
    """Where the real file lives: ``$JENA_DATA_DIR``, else ``$XDG_CACHE_HOME/jena`` or
    ``~/.cache/jena``."""
    return _user_cache_dir()


def _place_hint(folder: Path) -> str:
    return (
        f"put {JENA_FILENAME} (or {JENA_ZIPNAME}) in {folder} by hand"
        f" (or set JENA_DATA_DIR to a folder holding it), or use --data synthetic"
    )


def verify_jena_file(path: Path) -> None:
    """Check that ``path`` is the real Jena file: header, first data row, row count."""
    fix = f"delete it so it is downloaded again, or replace it with the original {JENA_FILENAME}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {one_line(exc)}") from exc
    head = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff").split("\n")
    header = head[0].rstrip("\r")
    if header != HEADER_LINE:
        raise DataError(
            f"{path}:1: not the Jena climate file (line 1 is {header[:60]!r}, expected the Jena"
            f" header); {fix}"
        )
    row1 = head[1].rstrip("\r") if len(head) > 1 else ""
    if row1 != schema.JENA_FIRST_ROW:
        raise DataError(
            f"{path}:2: not the Jena climate file (first data row {row1[:60]!r}, expected"
            f" {schema.JENA_FIRST_ROW[:40]!r}...); {fix}"
        )
    rows = data.rstrip(b"\r\n").count(b"\n")
    if rows != schema.JENA_ROWS:
        raise DataError(
            f"{path}: has {rows:,} data rows, expected {schema.JENA_ROWS:,} (truncated or"
            f" modified?); {fix}"
        )


def _extract(zip_path: Path, target: Path) -> None:
    """Extract the CSV from ``zip_path`` to ``target`` atomically, verified before the rename."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [m for m in zf.namelist() if Path(m).name == JENA_FILENAME]
            members = [m for m in members if not m.startswith("__MACOSX")] or members
            if not members:
                raise DataError(f"{zip_path}: the archive holds no {JENA_FILENAME}")
            fd, tmp_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{JENA_FILENAME}.", suffix=".part"
            )
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, zf.open(members[0]) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                verify_jena_file(tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise DataError(f"{zip_path}: not a valid zip archive ({one_line(exc)})") from exc


def _download(url: str, dest: Path, timeout: float) -> None:
    """Download ``url`` to ``dest`` via a ``.part`` file and a rename."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or parts.path or url


def fetch_jena(
    cache_dir: Path | None = None,
    *,
    urls: Sequence[str] = JENA_URLS,
    download: bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> Path:
    """Path of the verified real file, downloading the zip once into ``cache_dir`` if needed.

    A CSV (or zip) already in the cache is verified and used without network access. Downloads go
    to a ``.part`` file that is renamed when complete, so a crash never leaves half a file.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else _user_cache_dir()
    target = folder / JENA_FILENAME
    zip_path = folder / JENA_ZIPNAME
    if target.is_file():
        verify_jena_file(target)
        return target
    if zip_path.is_file():
        try:
            _extract(zip_path, target)
        except DataError as exc:
            raise DataError(f"{one_line(exc)}; delete {zip_path} and try again") from exc
        return target
    if not download:
        raise DataError(f"{target} not found and downloading is off; {_place_hint(folder)}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data folder {folder}: {one_line(exc)}") from exc
    reasons: list[str] = []
    network_only = True
    for url in urls:
        try:
            _download(url, zip_path, timeout)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            reasons.append(f"{_host(url)}: {one_line(str(reason))}")
            continue
        try:
            _extract(zip_path, target)
        except DataError as exc:
            zip_path.unlink(missing_ok=True)
            network_only = False
            reasons.append(f"{_host(url)}: {one_line(exc)}")
            continue
        return target
    why = "no network?" if network_only else "bad download"
    tried = "; ".join(reasons) or "no download addresses given"
    raise DataError(f"cannot download the Jena climate data ({why} {tried}); {_place_hint(folder)}")


# --------------------------------------------------------------------------- info
