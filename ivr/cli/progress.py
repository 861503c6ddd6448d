"""Progress on a terminal, for a command that runs for a while: a bar for `ivr ledger
reconcile` (bytes of queue_log read, or its time through the period for the
realtime table, with what was found so far), a spinner with the time elapsed for a
report.  Shown only when stderr is a terminal and the output is not JSON; else
nothing is shown and rich is not even imported.  It is drawn on stderr and
cleared at the end (transient), so stdout holds the report alone.

rich draws it: typed (mypy --strict takes it as it is), refreshed from a thread of
its own (the display moves while a file read blocks the event loop), and it knows
a terminal's width and a redirected stream by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def wanted(args: argparse.Namespace) -> bool:
    """A terminal on stderr, and output for a person (not --json, not --format json)."""
    machine = getattr(args, "json", False) or getattr(args, "format", None) == "json"
    return not machine and sys.stderr.isatty()


class Bar:
    """sources.Progress on a rich Progress task."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def begin(self, total: int | None, unit: str) -> None:
        self._progress.update(self._task, total=total, unit=unit)

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)

    def status(self, text: str) -> None:
        self._progress.update(self._task, status=text)


@contextlib.contextmanager
def bar(args: argparse.Namespace, what: str) -> Iterator[Bar | None]:
    """A bar while the block runs, or None when none is wanted."""
    if not wanted(args):
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn(),
                          TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield Bar(progress, progress.add_task(what, total=None, status="", unit=""))


@contextlib.contextmanager
def spinner(args: argparse.Namespace, what: str) -> Iterator[None]:
    """A spinner with the time elapsed while the block runs, when wanted."""
    if not wanted(args):
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        progress.add_task(what, total=None)
        yield
