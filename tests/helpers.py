"""Test helpers shared by the layers: poll with a deadline, never sleep-and-hope."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from typing import Callable

import pytest


async def eventually(condition: Callable[[], bool], timeout: float = 5.0,
                     interval: float = 0.02, what: str | Callable[[], str] = "condition") -> None:
    """Poll `condition`; `what` names it in the failure, or tells the state then."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            told = what() if callable(what) else what
            raise AssertionError(f"{told} not met within {timeout} s")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str) -> tuple[int, str]:
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def require(condition: bool, why: str) -> None:
    """Skip when a part is missing; in CI (CI=true) a missing part fails instead."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must have every part")
    pytest.skip(why)


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (Debian package {package}; make setup)")
    assert path is not None
    return path
