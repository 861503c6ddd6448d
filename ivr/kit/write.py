"""Writing a kit into its folder, never half-way.

The kit is written whole into a new folder beside DIR, then renamed to DIR: DIR is
either the whole kit or as it was.  An existing DIR must be empty, unless --force:
then each of the kit's own files replaces its namesake (a rename, so each file is
whole), and nothing else in DIR is touched.  A secret-bearing file is created 0600,
never readable by others for an instant; the new folder is 0700 (it holds secrets).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from ivr.kit.build import KitFile
from ivr.kit.render import KitError


def write(out: Path, files: Sequence[KitFile], force: bool = False) -> None:
    out = Path(os.path.abspath(out))
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise KitError(f"cannot create {out}: {blocked} is not a folder")
    try:
        occupied = _occupied(out)
        if occupied and not force:
            raise KitError(f"{out} is not empty: give a new or empty folder, or --force to "
                           "replace the kit's files in it")
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise KitError(f"cannot create {out}: {exc.strerror or exc}") from None
    try:
        for f in files:
            _put(staging / f.path, f)
        if occupied:
            _replace_each(staging, out, files)
        else:
            os.replace(staging, out)       # onto a missing or an empty folder
    except OSError as exc:
        raise KitError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _occupied(out: Path) -> bool:
    if not out.exists():
        return False
    if not out.is_dir():
        raise KitError(f"{out} exists and is not a folder")
    return any(out.iterdir())


def _put(path: Path, f: KitFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if f.secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, mode)                # exactly, whatever the umask
        out.write(f.text.encode("utf-8"))


def _replace_each(staging: Path, out: Path, files: Sequence[KitFile]) -> None:
    for f in files:
        target = out / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise KitError(f"cannot write {target}: a folder is in the way")
        os.replace(staging / f.path, target)
