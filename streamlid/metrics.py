"""MetricsServer: `--metrics-port`, the per-stream figures as Prometheus metrics.

Nothing is updated per event: a scrape reads the shared per-stream figures (StreamsReducer)
through a collector on a private registry, so the metrics always agree with the summary and the
live view. The HTTP server binds when built (a port in use is a usage error before the model
loads) and serves on one thread that the supervisor starts and stops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import ThreadingWSGIServer

from .alerts import KINDS
from .errors import ConfigError
from .streams import LATENCY_BUCKETS_S, StreamsReducer
from .threads import join_thread

POLL_S = 0.2  # how often the server thread looks at its stop flag
METRICS_PATH = "/metrics"  # where Prometheus looks by default
INDEX_HTML = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not news on the terminal


class _Families(NamedTuple):
    """One scrape's metric families, in the order they are served."""

    language: InfoMetricFamily
    confidence: GaugeMetricFamily
    ratio: GaugeMetricFamily
    lag: GaugeMetricFamily
    up: GaugeMetricFamily
    reconnects: CounterMetricFamily
    outage: CounterMetricFamily
    active: GaugeMetricFamily
    alerts: CounterMetricFamily
    classified: CounterMetricFamily
    skipped: CounterMetricFamily
    latency: HistogramMetricFamily


def _families() -> _Families:
    """streamlid's metric families, empty: `StreamsCollector` fills them at each scrape."""
    language = InfoMetricFamily(
        "streamlid_language", "current language of each stream", labels=["stream"]
    )
    confidence = GaugeMetricFamily(
        "streamlid_confidence",
        "smoothed probability of the current language",
        labels=["stream"],
    )
    ratio = GaugeMetricFamily(
        "streamlid_speech_ratio",
        "share of the stream's time that was speech",
        labels=["stream"],
    )
    lag = GaugeMetricFamily(
        "streamlid_lag_seconds", "how far the answers are behind live", labels=["stream"]
    )
    up = GaugeMetricFamily(
        "streamlid_stream_up",
        "1 while the stream's audio comes in; 0 while its feed is down, and once its input "
        "has ended (a file read to its end, a feed given up on)",
        labels=["stream"],
    )
    reconnects = CounterMetricFamily(
        "streamlid_reconnects", "times a feed came back after dropping", labels=["stream"]
    )
    outage = CounterMetricFamily(
        "streamlid_outage_seconds", "time feeds had no audio, so far", labels=["stream"]
    )
    active = GaugeMetricFamily(
        "streamlid_alert_active", "1 while an alert holds", labels=["stream", "kind"]
    )
    alerts = CounterMetricFamily("streamlid_alerts", "alerts raised", labels=["stream"])
    classified = CounterMetricFamily(
        "streamlid_windows_classified", "windows the model answered", labels=["stream"]
    )
    skipped = CounterMetricFamily(
        "streamlid_windows_skipped", "windows dropped to keep up with live", labels=["stream"]
    )
    latency = HistogramMetricFamily(
        "streamlid_model_latency_seconds",
        "time from a window's last sample to its answer",
        labels=["stream"],
    )
    return _Families(
        language,
        confidence,
        ratio,
        lag,
        up,
        reconnects,
        outage,
        active,
        alerts,
        classified,
        skipped,
        latency,
    )


class StreamsCollector:
    """Metric families built from the figures at scrape time."""

    def __init__(self, figures: StreamsReducer) -> None:
        self._figures = figures

    def describe(self) -> list[Metric]:
        """The families without samples: what `?name[]=` filters by (the library asks the
        collector for its names, and a collector without this had none to match)."""
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        m = _families()
        for f in self._figures.figures():
            s = [f.stream]
            m.language.add_metric(s, {"language": f.language or "", "name": f.language_name})
            m.confidence.add_metric(s, f.confidence)
            m.ratio.add_metric(s, f.speech_ratio)
            if f.lag_s is not None:
                m.lag.add_metric(s, f.lag_s)
            down = f.ended or f.feed_state in ("disconnected", "retrying")
            m.up.add_metric(s, 0.0 if down else 1.0)
            m.reconnects.add_metric(s, f.reconnects)
            m.outage.add_metric(s, f.outage_s)
            for kind in KINDS:
                m.active.add_metric([f.stream, kind], 1.0 if kind in f.alerts_active else 0.0)
            m.alerts.add_metric(s, f.alerts_total)
            m.classified.add_metric(s, f.windows)
            m.skipped.add_metric(s, f.skipped_windows)
            edges = [repr(edge) for edge in LATENCY_BUCKETS_S] + ["+Inf"]
            m.latency.add_metric(
                s, list(zip(edges, f.latency_buckets, strict=True)), sum_value=f.latency_sum_s
            )
        yield from m


def routed(metrics_app: Wsgi) -> Wsgi:
    """The library's app (content negotiation, gzip, `name[]` filters, its 405 to other
    methods) on /metrics only: it answers every path with the metrics, for backwards
    compatibility, so a typo in a scrape config or a scanner's probe read as a good target.
    / lists /metrics, as exporters' landing pages do; any other path is 404. HEAD is answered
    as GET without the body (the library refuses it), so health checks and `curl -I` work."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "HEAD":
            got: list[Any] = []
            body = b"".join(app({**environ, "REQUEST_METHOD": "GET"}, lambda *a: got.extend(a)))
            status, headers = got[0], list(got[1])
            if not any(name.lower() == "content-length" for name, _ in headers):
                headers.append(("Content-Length", str(len(body))))
            start_response(status, headers)
            return []
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            return metrics_app(environ, start_response)
        if path == "/" and environ["REQUEST_METHOD"] == "GET":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [INDEX_HTML]
        if path == "/":
            return metrics_app(environ, start_response)  # its 405 to other methods, OPTIONS
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [f"# HTTP 404: {path} not found; the metrics are at {METRICS_PATH}\n".encode()]

    return app


class MetricsServer:
    """ThreadOwner: serves /metrics until stopped."""

    def __init__(self, figures: StreamsReducer, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StreamsCollector(figures))
        app = routed(make_wsgi_app(self.registry))
        server_class = ThreadingWSGIServer
        if ":" in host:  # an IPv6 address
            import socket

            class _V6(ThreadingWSGIServer):
                address_family = socket.AF_INET6

            server_class = _V6
        try:
            self._server = make_server(host, port, app, server_class, handler_class=_Quiet)
        except OSError as exc:
            raise ConfigError(
                f"Cannot serve metrics on {host}:{port} ({exc.strerror or exc}); choose another "
                "--metrics-port or --metrics-host."
            ) from None
        self._server.timeout = POLL_S
        self.port = self._server.server_address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="metrics")

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                self._server.handle_request()  # one request, or none within POLL_S
        finally:
            self._server.server_close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        if self._thread.ident is None:
            self._server.server_close()  # never served: still give the port back
        return join_thread(self._thread, timeout_s)
