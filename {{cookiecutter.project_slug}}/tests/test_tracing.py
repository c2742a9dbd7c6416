{%- set system = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}[cookiecutter.database] -%}
"""OpenTelemetry, opt-in: each request is a server span with a child span for each
SQL statement it ran, exported in memory here and, with OTEL_ENABLED=true, over
OTLP/HTTP to a collector (a real HTTP server in this test)."""

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from app.db.session import ReadConnection
from app.main import create_app
from app.settings import Settings
from app.tracing import MISSING_EXTRA, trace_requests
from tests.helpers import serve


def probe_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/_probe/read")
    async def read(connection: ReadConnection) -> dict[str, bool]:
        await connection.execute(text("SELECT 1"))
        return {"ok": True}

    return app


async def test_a_request_is_a_server_span_with_a_database_child_span(
    test_settings: Settings,
) -> None:
    app = probe_app(test_settings)
    exporter = InMemorySpanExporter()
    app.state.tracer_provider = trace_requests(app, test_settings, exporter)
    async with serve(app) as client:
        assert (await client.get("/_probe/read")).status_code == 200
    spans = exporter.get_finished_spans()  # the lifespan's end flushed them
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "GET /_probe/read"
    assert server.resource.attributes["service.name"] == test_settings.otel_service_name
    children = [s for s in spans if s.parent and s.parent.span_id == server.context.span_id]
    statements = [s for s in children if s.kind == SpanKind.CLIENT]
    assert statements, [(s.name, s.kind) for s in spans]
    assert all(s.context.trace_id == server.context.trace_id for s in statements)
    [select_one] = [
        s
        for s in statements
        if (s.attributes or {}).get("db.statement", (s.attributes or {}).get("db.query.text"))
        == "SELECT 1"
    ]
    attributes = select_one.attributes or {}
    assert attributes.get("db.system", attributes.get("db.system.name")) == "{{ system }}"


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, bytes]]]:
    """An OTLP/HTTP endpoint on a free port, named by the standard variable."""
    _Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield _Collector.received
    server.shutdown()
    server.server_close()


async def test_otel_enabled_exports_spans_to_the_collector(
    test_settings: Settings, collector: list[tuple[str, str, bytes]]
) -> None:
    traced = test_settings.model_copy(update={"otel_enabled": True})
    async with serve(probe_app(traced)) as client:
        assert (await client.get("/_probe/read")).status_code == 200
    assert collector, "nothing reached the collector"
    names: set[str] = set()
    for path, content_type, body in collector:
        assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert "GET /_probe/read" in names


def test_otel_enabled_without_the_extra_is_a_clear_error(
    test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # not installed
    with pytest.raises(RuntimeError, match="needs the otel extra"):
        create_app(test_settings.model_copy(update={"otel_enabled": True}))
    assert "pip install" in MISSING_EXTRA
