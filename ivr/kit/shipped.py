"""The kit's files as the package ships them (ivr/kit/files/).

Read through importlib.resources, so a wheel install finds them as a checkout does.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


def files() -> Traversable:
    return resources.files("ivr.kit").joinpath("files")


def read(name: str) -> str:
    """A shipped file by its path under files/, e.g. "dialplans/extensions_ivr.conf"."""
    node = files()
    for part in name.split("/"):
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


def directory() -> Path:
    """files/ on disk, for what needs a path (the lab's Asterisk, the demo's Prometheus,
    promtool in the tests).  pip always installs a wheel unpacked, so this holds there too."""
    root = files()
    if not isinstance(root, Path):     # a zipped install: nothing of ivr's supports one
        raise RuntimeError(f"ivr's kit files are not on disk ({root})")
    return root
