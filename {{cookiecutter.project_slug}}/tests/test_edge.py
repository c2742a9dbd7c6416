{%- set example = cookiecutter.include_example_models == "yes" -%}
"""The edge (app/edge.py, docs/security.md), attacked over HTTP against the app under
a real uvicorn: a body over its limit, declared or streamed, is refused before it is
read; a 422 names the field and the rule, never the input, and stays small; CORS
answers listed origins only; the docs exist only when enabled; /metrics wants its
token.

Bodies are sent through raw sockets where httpx would hide what the server did: when
it answered, and whether it kept reading.
"""

import asyncio
import json
import select
import socket
{%- if example %}
import uuid
{%- endif %}
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from app.main import create_app
from app.settings import Settings
from tests.helpers import running_server

LIMIT = 64 * 1024
{%- if example %}
BULK_LIMIT = 256 * 1024
{%- endif %}
ATTEMPT = 32 * 1024 * 1024  # what a client tries to stream past the limit
CHUNK = 16 * 1024
SOCKET_TIMEOUT = 10
BLOB = "/_probe/blob"
ITEMS = "/_probe/items"
ORIGIN = "https://app.example.com"
# email-validator lists each unsafe character it finds: a 561-character message.
UNSAFE_EMAIL = "".join(chr(0xE000 + i) for i in range(60)) + "@example.com"
JSON = {"Content-Type": "application/json"}
EDGE_SETTINGS = (
    "max_request_bytes",
{%- if example %}
    "bulk_max_request_bytes",
{%- endif %}
    "cors_origins",
    "docs_enabled",
    "metrics_token",
)
TOKEN = "a-metrics-token-for-the-tests-only-0123456789"  # noqa: S105 -- a test value


class Blob(BaseModel):
    data: str


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=10)
    email: EmailStr | None = None
    tags: list[int] = []


def configured(settings: Settings, **changes: Any) -> Settings:
    """The tests' settings, the edge's at their defaults (whatever .env says), with
    `changes`; validated as at start-up."""
    fields = Settings.model_fields
    defaults = {name: fields[name].get_default(call_default_factory=True) for name in EDGE_SETTINGS}
    return Settings.model_validate(settings.model_dump() | defaults | changes)


def probe_app(settings: Settings, calls: list[str]) -> FastAPI:
    """The real app, plus two routes whose bodies FastAPI reads before they run
    (each run is recorded in `calls`)."""
    app = create_app(settings)

    @app.post(BLOB)
    async def blob(body: Blob) -> dict[str, int]:
        calls.append(BLOB)
        return {"size": len(body.data)}

    @app.post(ITEMS)
    async def items(item: Item) -> dict[str, str]:
        calls.append(ITEMS)
        return {"name": item.name}

    return app


@asynccontextmanager
async def served(settings: Settings, calls: list[str] | None = None) -> AsyncIterator[str]:
    async with running_server(probe_app(settings, [] if calls is None else calls)) as address:
        host, port = address
        yield f"http://{host}:{port}"


def blob_of(size: int) -> bytes:
    """A JSON body of exactly `size` bytes."""
    body = json.dumps({"data": ""}).encode()
    return json.dumps({"data": "x" * (size - len(body))}).encode()


def _address(base_url: str) -> tuple[str, int]:
    url = httpx.URL(base_url)
    assert url.port is not None
    return url.host, url.port


def _head(path: str, framing: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json", framing]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_to_end(sock: socket.socket) -> bytes:
    """What the server sent, up to its closing the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # closed with our unread bytes in its buffer: the answer came before
    return received


def declare_and_wait(base_url: str, path: str, length: int) -> bytes:
    """Declare a body of `length` bytes, send none of it, and read the answer."""
    with socket.create_connection(_address(base_url), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(_head(path, f"Content-Length: {length}"))
        return _read_to_end(sock)  # a timeout here: the server waits for the body


def stream(base_url: str, path: str, attempt: int) -> tuple[int, bytes]:
    """Stream up to `attempt` bytes, chunked; stop when the server answers or refuses
    more. Returns the bytes sent and the answer."""
    chunk = b"%x\r\n%s\r\n" % (CHUNK, b"x" * CHUNK)
    sent, answer = 0, b""
    with socket.create_connection(_address(base_url), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(_head(path, "Transfer-Encoding: chunked"))
        try:
            while sent < attempt:
                if not answer and select.select([sock], [], [], 0)[0]:
                    answer = _read_to_end(sock)  # then keep sending: is anyone reading?
                sock.sendall(chunk)
                sent += CHUNK
        except ConnectionError:  # a broken pipe, a reset: nothing reads this connection
            pass
        if not answer:
            answer = _read_to_end(sock)
    return sent, answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


# ---------------------------------------------------------------------------
# Request bodies


async def test_a_declared_body_over_the_limit_gets_413_before_it_is_read(
    test_settings: Settings,
) -> None:
    calls: list[str] = []
    async with served(configured(test_settings, max_request_bytes=LIMIT), calls) as url:
        answer = await asyncio.to_thread(declare_and_wait, url, BLOB, LIMIT + 1)
    assert status_of(answer) == 413, answer[:200]
    assert b"connection: close" in answer.lower()  # and the server read to the end: EOF
    assert f"larger than {LIMIT} bytes".encode() in answer
    assert calls == []


async def test_a_streamed_body_over_the_limit_is_cut_off(test_settings: Settings) -> None:
    """No Content-Length: the server counts as the chunks come, answers 413 at the
    limit and closes, so the rest of the stream has nowhere to go."""
    calls: list[str] = []
    async with served(configured(test_settings, max_request_bytes=LIMIT), calls) as url:
        sent, answer = await asyncio.to_thread(stream, url, BLOB, ATTEMPT)
    assert status_of(answer) == 413, answer[:200]
    # Past the limit, only what the sockets' buffers took: nothing read the rest.
    assert sent < ATTEMPT // 4, f"{sent} bytes sent: the server kept reading"
    assert calls == []


async def test_a_body_at_the_limit_passes(test_settings: Settings) -> None:
    calls: list[str] = []
    async with (
        served(configured(test_settings, max_request_bytes=LIMIT), calls) as url,
        httpx.AsyncClient(base_url=url, headers=JSON) as client,
    ):
        declared = await client.post(BLOB, content=blob_of(LIMIT))

        async def chunks() -> AsyncIterator[bytes]:
            body = blob_of(LIMIT)
            for start in range(0, len(body), CHUNK):
                yield body[start : start + CHUNK]

        streamed = await client.post(BLOB, content=chunks())
        over = await client.post(BLOB, content=blob_of(LIMIT + 1))
    assert declared.status_code == 200, declared.text
    assert streamed.status_code == 200, streamed.text
    assert over.status_code == 413
    assert over.json() == {"detail": f"the request body is larger than {LIMIT} bytes"}
    assert calls == [BLOB, BLOB]
{%- if example %}


async def test_the_bulk_endpoints_take_bodies_up_to_their_own_limit(
    test_settings: Settings,
) -> None:
    settings = configured(test_settings, max_request_bytes=LIMIT, bulk_max_request_bytes=BULK_LIMIT)
    user_id = uuid.uuid4()
    bulk = (f"/api/v1/users/{user_id}/posts/bulk", "/api/v1/users/import")
    # Between the two limits: valid JSON that the routes themselves refuse (no rows).
    padded = json.dumps({"pad": "x" * (LIMIT * 2)}).encode()
    async with served(settings) as url, httpx.AsyncClient(base_url=url, headers=JSON) as client:
        for path in bulk:
            passed = await client.post(path, content=padded)
            assert passed.status_code != 413, (path, passed.text)  # the route answered
            over = await asyncio.to_thread(declare_and_wait, url, path, BULK_LIMIT + 1)
            assert status_of(over) == 413, (path, over[:200])
            assert f"larger than {BULK_LIMIT} bytes".encode() in over
        ordinary = await client.post("/api/v1/users", content=padded)
    assert ordinary.status_code == 413


def test_the_openapi_document_states_each_limit(test_settings: Settings) -> None:
    settings = configured(test_settings, bulk_max_request_bytes=BULK_LIMIT)
    paths = create_app(settings).openapi()["paths"]
    for path in ("/api/v1/users/import", "/api/v1/users/{user_id}/posts/bulk"):
        operation = paths[path]["post"]
        assert str(BULK_LIMIT) in operation["responses"]["413"]["description"]
        assert f"up to {BULK_LIMIT} bytes (BULK_MAX_REQUEST_BYTES)" in operation["description"]
        assert "x-body-limit-setting" not in operation
    ordinary = paths["/api/v1/users"]["post"]
    assert str(settings.max_request_bytes) in ordinary["responses"]["413"]["description"]
    assert "413" not in paths["/api/v1/users"]["get"]["responses"]  # no body, no limit
{%- endif %}


# ---------------------------------------------------------------------------
# Validation errors


async def test_a_422_names_the_field_and_the_rule_never_the_input(
    test_settings: Settings,
) -> None:
    long_name = "N" * 900_000  # within MAX_REQUEST_BYTES (1 MiB)
    async with served(configured(test_settings)) as url, httpx.AsyncClient(base_url=url) as client:
        short = await client.post(ITEMS, json={"name": "N" * 11})
        long = await client.post(ITEMS, json={"name": long_name})
        many = await client.post(ITEMS, json={"name": "ok", "tags": ["x"] * 10_000})
        odd = await client.post(ITEMS, json={"name": "ok", "email": UNSAFE_EMAIL, "k" * 100_000: 1})
    assert short.status_code == long.status_code == many.status_code == odd.status_code == 422
    # The same answer whatever the size of the input, without the input.
    assert long.content == short.content
    assert "NNNNNNNNNNNN" not in long.text
    (error,) = long.json()["detail"]
    assert error == {
        "loc": ["body", "name"],
        "msg": "String should have at most 10 characters",
        "type": "string_too_long",
    }
    # 10,000 bad rows: the first 50 errors and how many more.
    detail = many.json()["detail"]
    assert len(detail) == 51
    assert detail[-1] == {"loc": [], "msg": "and 9950 more errors", "type": "too_many_errors"}
    assert len(many.content) < 8_000
    # A message that quotes the input, a key of the client's: both cut short.
    extra, email = sorted(odd.json()["detail"], key=lambda error: error["type"])
    assert (email["loc"], email["type"]) == (["body", "email"], "value_error")
    assert len(email["msg"]) == 200
    assert email["msg"].endswith("\u2026")
    assert (extra["loc"][:1], extra["type"]) == (["body"], "extra_forbidden")
    assert len(extra["loc"][1]) == 100
    assert len(odd.content) < 1_000


# ---------------------------------------------------------------------------
# CORS


def _cors(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def _preflight(client: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await client.options(
        BLOB,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


async def test_no_cors_headers_by_default(test_settings: Settings) -> None:
    async with served(configured(test_settings)) as url, httpx.AsyncClient(base_url=url) as client:
        preflight = await _preflight(client, ORIGIN)
        simple = await client.get("/livez", headers={"Origin": ORIGIN})
    assert _cors(preflight) == {}
    assert preflight.status_code == 405  # no CORS: OPTIONS is just a method no route has
    assert _cors(simple) == {}


async def test_cors_answers_the_listed_origins_only(test_settings: Settings) -> None:
    settings = configured(test_settings, cors_origins=ORIGIN, max_request_bytes=LIMIT)
    async with served(settings) as url, httpx.AsyncClient(base_url=url) as client:
        listed = await _preflight(client, ORIGIN)
        other = await _preflight(client, "https://evil.example.net")
        simple = await client.get("/livez", headers={"Origin": ORIGIN})
        simple_other = await client.get("/livez", headers={"Origin": "https://evil.example.net"})
        too_large = await client.post(
            BLOB, content=blob_of(LIMIT + 1), headers={"Origin": ORIGIN, **JSON}
        )
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in listed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in simple_other.headers
    # A browser on a listed origin can read a 413 too.
    assert too_large.status_code == 413
    assert too_large.headers["access-control-allow-origin"] == ORIGIN


# ---------------------------------------------------------------------------
# The docs


DOCS = ("/docs", "/redoc", "/openapi.json")


async def test_no_docs_unless_enabled(test_settings: Settings) -> None:
    assert test_settings.environment == "test"
    for settings, served_docs in (
        (configured(test_settings), False),
        (configured(test_settings, environment="production"), False),
        (configured(test_settings, docs_enabled=True), True),
        (configured(test_settings, environment="development"), True),
        (configured(test_settings, environment="development", docs_enabled=False), False),
    ):
        # In process (the routes exist or not; nothing here needs a socket).
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path in DOCS:
                response = await client.get(path)
                assert response.status_code == (200 if served_docs else 404), (settings, path)


# ---------------------------------------------------------------------------
# /metrics


async def test_metrics_want_the_token_when_one_is_set(test_settings: Settings) -> None:
    async with served(configured(test_settings)) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/metrics")).status_code == 200  # unset: open
    settings = configured(test_settings, metrics_token=TOKEN)
    async with served(settings) as url, httpx.AsyncClient(base_url=url) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        basic = await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "http_requests_total" not in refused.text
    assert right.status_code == 200
    assert "http_requests_total" in right.text
