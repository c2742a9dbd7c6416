"""OpenTelemetry traces, opt-in with OTEL_ENABLED=true: a server span for each request,
with a child span for each SQL statement it ran.

The packages come with the `otel` extra (`pip install '.[otel]'`) and are imported
only when tracing is on. Spans are batched to an OTLP/HTTP collector that the
standard variables configure (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
...); OTEL_SERVICE_NAME names the service.
Docs: https://opentelemetry-python-contrib.readthedocs.io/en/latest/instrumentation/fastapi/fastapi.html
      https://opentelemetry-python-contrib.readthedocs.io/en/latest/instrumentation/sqlalchemy/sqlalchemy.html
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

MISSING_EXTRA = (
    "OTEL_ENABLED=true needs the otel extra: uv sync --extra otel, or pip install '.[otel]'"
)


def trace_requests(
    app: FastAPI, settings: Settings, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A server span per request. `exporter` replaces the OTLP exporter (tests)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise RuntimeError(MISSING_EXTRA) from exc

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    return provider


def trace_statements(provider: TracerProvider, engines: Iterable[AsyncEngine]) -> None:
    """A child span per SQL statement, on the engines of this process."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its declared range stops below SQLAlchemy 2.1, whose engine events it uses
    # unchanged; tests/test_tracing.py proves the spans on the SQLAlchemy installed.
    SQLAlchemyInstrumentor().instrument(
        engines=[engine.sync_engine for engine in engines],
        tracer_provider=provider,
        skip_dep_check=True,
    )


def stop_tracing(provider: TracerProvider) -> None:
    """Remove the statement spans' listeners and send the spans still buffered."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().uninstrument()
    provider.shutdown()
