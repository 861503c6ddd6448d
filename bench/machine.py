"""What every benchmark prints about the machine, and small statistics."""

from __future__ import annotations

import os
import platform
import statistics
import sys


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {platform.platform()}; CPU {cpu_model()} x{os.cpu_count()}; "
            f"Python {platform.python_version()} ({sys.implementation.name}); load avg {load}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def vm_rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
