"""The metrics server as a scraper, a browser and a health check meet it: /metrics, / and
nothing else, HEAD as GET without its body."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from streamlid.events import FeedState
from streamlid.metrics import MetricsServer
from streamlid.streams import StreamsReducer


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    figures = StreamsReducer()
    figures.handle(FeedState("radio", 0.0, "disconnected", "connection refused", 0, 0.0))
    served = MetricsServer(figures, "127.0.0.1", 0)
    served.start()
    try:
        yield served
    finally:
        served.stop()
        assert served.join(5.0)


def ask(server: MetricsServer, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_metrics_are_at_metrics_and_listed_at_the_root(server):
    status, headers, body = ask(server, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b'streamlid_stream_up{stream="radio"} 0.0' in body
    status, headers, body = ask(server, "GET", "/")
    assert status == 200 and b'href="/metrics"' in body  # a landing page, not the metrics
    assert b"streamlid_stream_up" not in body


@pytest.mark.parametrize("path", ["/metricz", "/metrics/", "/favicon.ico", "/admin"])
def test_any_other_path_is_not_found(server, path):
    """The library answers every path with the metrics: a typo in a scrape config read as a
    good target, and every scanner's probe cost a scrape."""
    status, _, body = ask(server, "GET", path)
    assert status == 404 and b"/metrics" in body and b"streamlid_" not in body


def test_head_answers_as_get_without_the_body(server):
    _, headers, body = ask(server, "GET", "/metrics")
    head_status, head_headers, head_body = ask(server, "HEAD", "/metrics")
    assert (head_status, head_body) == (200, b"")
    assert head_headers["Content-Type"] == headers["Content-Type"]
    # The length of the metrics HEAD would send, not of the GET before: the feed's outage
    # seconds grow between the two, and a figure can gain or lose digits.
    assert abs(int(head_headers["Content-Length"]) - len(body)) <= 16
    assert ask(server, "HEAD", "/nope")[0] == 404
    with pytest.raises(urllib.error.HTTPError) as refused:  # other methods: still refused
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{server.port}/metrics", b"", method="POST"),
            timeout=5,
        )
    assert refused.value.code == 405


def test_name_filters_serve_the_metrics_asked_for(server):
    """`?name[]=` (prometheus-client's filter, for a federating or a debugging scrape) served
    an empty body: the library filters by the names the collector describes."""
    query = "/metrics?name[]=streamlid_stream_up&name[]=streamlid_reconnects_total"
    status, _, body = ask(server, "GET", query)
    assert status == 200
    names = {line.split("{")[0] for line in body.decode().splitlines() if line[:1] != "#"}
    assert names == {"streamlid_stream_up", "streamlid_reconnects_total"}, body
