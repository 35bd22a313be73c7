"""Prometheus metrics: every unary RPC counted by method and status and timed; the process,
the build, the ruleset and data being served, reloads, caches and the decision log."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import (CollectorRegistry, Counter, GCCollector, Histogram, Info,
                               PlatformCollector, ProcessCollector)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..version import version


class MetricsInterceptor(grpc.ServerInterceptor):
    """Wraps unary handlers; streams (reflection) pass through untouched."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("cptrules_rpc_requests", "RPCs handled, by method and status code",
                                ["method", "code"], registry=registry)
        self.latency = Histogram("cptrules_rpc_seconds", "RPC handling time in seconds", ["method"],
                                 registry=registry,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0))

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner, method = handler.unary_unary, details.method.rsplit("/", 1)[-1]

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            failed = False
            try:
                return inner(request, context)
            except Exception:
                failed = True
                raise
            finally:
                code = context.code() or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
                self.requests.labels(method, code.name).inc()
                self.latency.labels(method).observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            observed, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


class EngineCollector:
    """Reads the serving snapshot at scrape time: revision, load time, codes per source and
    the hit ratio of its caches (a new snapshot starts with empty caches)."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        engine = self.engine()
        if engine is None:
            return
        snap = engine.snapshot
        info = GaugeMetricFamily("cptrules_ruleset_info", "The ruleset being served (value 1)",
                                 labels=["revision"])
        info.add_metric([snap.ruleset.revision], 1)
        yield info
        yield GaugeMetricFamily("cptrules_ruleset_load_timestamp_seconds",
                                "When the serving ruleset was loaded (Unix time)",
                                value=snap.ruleset.loaded_at.timestamp())
        codes = GaugeMetricFamily("cptrules_codes_loaded", "Codes loaded, by data source",
                                  labels=["source"])
        for release in snap.data.releases:
            codes.add_metric([release.key], len(release.rows))
        for hcpcs in snap.data.hcpcs_files:
            codes.add_metric([hcpcs.key], len(hcpcs.rows))
        codes.add_metric(["catalogue"], len(snap.data.catalogue.entries))
        yield codes
        entries = GaugeMetricFamily("cptrules_cache_entries", "Entries in a cache", labels=["cache"])
        hits = CounterMetricFamily("cptrules_cache_hits", "Cache lookups that found an entry",
                                   labels=["cache"])
        misses = CounterMetricFamily("cptrules_cache_misses", "Cache lookups that found none",
                                     labels=["cache"])
        ratio = GaugeMetricFamily("cptrules_cache_hit_ratio", "Hits / lookups since the snapshot loaded",
                                  labels=["cache"])
        held = GaugeMetricFamily("cptrules_cache_bytes", "Bytes held by a cache sized in bytes",
                                 labels=["cache"])
        budget = GaugeMetricFamily("cptrules_cache_budget_bytes",
                                   "The memory remembered responses may take (serve --cache-mb)")
        budget.add_metric([], snap.budget.megabytes << 20)
        for name, cache in snap.caches().items():
            hit, miss = cache.hits, cache.misses
            entries.add_metric([name], len(cache))
            hits.add_metric([name], hit)
            misses.add_metric([name], miss)
            ratio.add_metric([name], hit / (hit + miss) if hit + miss else 0.0)
            if cache.nbytes is not None:
                held.add_metric([name], cache.nbytes)
        yield from (entries, hits, misses, ratio, held, budget)


class ServiceMetrics:
    """Everything but the per-RPC figures: process and platform, build info, the snapshot
    (EngineCollector), reloads by result, and decision records dropped."""

    def __init__(self, registry: CollectorRegistry, engine: Callable[[], Any]) -> None:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        Info("cptrules_build", "The server build", registry=registry).info(
            {"version": version(), "python": platform.python_version(), "grpc": grpc.__version__})
        registry.register(EngineCollector(engine))
        self.reloads = Counter("cptrules_reloads", "Reloads of rules and data, by result", ["result"],
                               registry=registry)
        for result in ("success", "failure"):
            self.reloads.labels(result)
        self.decisions_dropped = Counter("cptrules_decisions_dropped",
                                         "Decision records dropped because the writer was behind",
                                         registry=registry)
