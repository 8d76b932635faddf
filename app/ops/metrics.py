"""Prometheus metrics: requests by route template and status, the compile cache, compile time.

Each application has its own registry, so apps made in tests do not collide. Compile time
is measured where the work happens (a compile worker times parse+build and trace+compile,
the server times loading the executable) and reported by ``record_compile``; one
histogram, shared by every registry, counts them.
With several workers each worker has its own metrics (see the README's Operations section).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class CacheStats(Protocol):
    """What the metrics read of the executable cache."""

    hits: int
    misses: int
    capacity: int

    def __len__(self) -> int: ...


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)
COMPILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0, 300.0)
COMPILE_SECONDS = Histogram(
    "nabla_compile_seconds", "Seconds of cold compiles, by phase (parse, compile, load)",
    ["phase"], buckets=COMPILE_BUCKETS, registry=None,
)


WORKER_POOL_REBUILDS = Counter(
    "nabla_worker_pool_rebuilds", "Worker pools torn down and started again after a fault "
    "(a worker killed or stopped, a broken pool)", ["pool"], registry=None,
)


def record_pool_rebuild(pool: str) -> None:
    """Count one rebuild of the worker pool ``pool`` (compile, parse)."""
    WORKER_POOL_REBUILDS.labels(pool=pool).inc()


PERSISTENT_CACHE = Counter(
    "nabla_persistent_cache_compiles", "Cold compiles with the persistent compile cache on, "
    "by outcome: hit (XLA's executable read from the cache folder) or miss (compiled and "
    "written there)", ["outcome"], registry=None,
)


def record_compile(phases: Mapping[str, float], persistent_hit: bool | None = None) -> None:
    """Count the seconds of one cold compile, by phase (parse, compile, load), and whether
    the persistent cache had its executable (None: that cache is off)."""
    for phase, seconds in phases.items():
        COMPILE_SECONDS.labels(phase=phase).observe(seconds)
    if persistent_hit is not None:
        PERSISTENT_CACHE.labels(outcome="hit" if persistent_hit else "miss").inc()


class CompileCacheCollector(Collector):
    """Reads the hit and miss counters and the size of a ``CacheStats`` at scrape time."""

    def __init__(self, cache: CacheStats) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("nabla_compile_cache_hits",
                                  "Requests whose compiled kernels were in the cache",
                                  value=self.cache.hits)
        yield CounterMetricFamily("nabla_compile_cache_misses",
                                  "Requests whose kernels had to be built and compiled",
                                  value=self.cache.misses)
        yield GaugeMetricFamily("nabla_compile_cache_entries", "Compiled kernels in the cache",
                                value=len(self.cache))
        yield GaugeMetricFamily("nabla_compile_cache_capacity",
                                "Compiled kernels the cache keeps (LRU)",
                                value=self.cache.capacity)


class Metrics:
    """The metrics of one application, in a registry of its own."""

    def __init__(self, cache: CacheStats) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._in_progress: dict[str, Any] = {}
        labels = ["method", "route", "status"]
        self.requests = Counter("nabla_http_requests", "HTTP requests answered",
                                labels, registry=self.registry)
        self.latency = Histogram("nabla_http_request_duration_seconds",
                                 "Time from request to the end of the response", labels,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_progress = Gauge("nabla_http_requests_in_progress", "HTTP requests being served",
                                 ["method"], registry=self.registry)
        self.registry.register(CompileCacheCollector(cache))
        self.registry.register(COMPILE_SECONDS)
        self.registry.register(WORKER_POOL_REBUILDS)
        self.registry.register(PERSISTENT_CACHE)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def in_progress_of(self, method: str) -> Any:
        """The in-progress gauge of ``method`` (its label looked up once)."""
        child = self._in_progress.get(method)
        if child is None:
            child = self.in_progress.labels(method)
            if len(self._in_progress) < 100:  # methods are client text: keep it bounded
                self._in_progress[method] = child
        return child

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # label lookups take a lock: do each once per label set
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            if len(self._children) < 1000:  # methods are client text: keep the memo bounded
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
