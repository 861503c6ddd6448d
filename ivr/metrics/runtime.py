"""The process's own series on ivr's registry: what any exporter's watcher expects.

prometheus_client puts its process, platform and GC collectors on its global
registry, which ivr does not serve: ivr's one registry gets its own.  The
`_created` series (a timestamp per counter and histogram series, 82 of them on an
idle PBX) are switched off: no rule or panel reads them, and they double the
series Prometheus stores for ivr.  `ivr_build_info{version}` says which ivr runs.
"""

from __future__ import annotations

from prometheus_client import (CollectorRegistry, GCCollector, Info, PlatformCollector,
                               ProcessCollector, disable_created_metrics)

from ivr import __version__


def install(registry: CollectorRegistry) -> None:
    """process_*, python_info, python_gc_* and ivr_build_info on `registry`; no
    `_created` series anywhere in this process (prometheus_client's switch is global)."""
    disable_created_metrics()      # type: ignore[no-untyped-call]   # untyped upstream
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    Info("ivr_build", "The ivr that runs: its version", registry=registry).info(
        {"version": __version__})
