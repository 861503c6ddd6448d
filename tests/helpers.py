"""Test helpers shared by the layers: poll with a deadline, never sleep-and-hope."""

from __future__ import annotations

import asyncio
import time
from typing import Callable


async def eventually(condition: Callable[[], bool], timeout: float = 5.0,
                     interval: float = 0.02, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(interval)
