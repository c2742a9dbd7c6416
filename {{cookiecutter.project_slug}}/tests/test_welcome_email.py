"""The welcome email end to end: the API, the outbox, the relay, RabbitMQ, the worker
(a child process, as in production) and an SMTP server run by the test. Workers
are killed, relays die between publishing and marking, RabbitMQ is cut off: every
email still arrives, and only a task in flight at the failure may arrive twice.
Then SMTP_URL against real TLS servers: implicit TLS, STARTTLS, log-ins only over
TLS, and a certificate checked (one made for the test by the openssl command).
"""

import asyncio
import email
import shutil
import signal
import ssl
import statistics
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.outbox import OutboxMessage
from app.settings import Settings
from app.tasks.broker import worker_capacity
from app.tasks.mail import SmtpServer, send
from tests.tasks import (
    TcpProxy,
    WorkerProcess,
    delete_queues,
    eventually,
    free_port,
    pending,
    queue_settings,
    worker_environment,
)

RABBITMQ_PORT = 5672


class Sink:
    """An SMTP server that keeps the Message-ID of every email it is given, taking
    `delay` seconds over each."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.port = free_port()
        self.message_ids: list[str] = []
        self.receiving = threading.Event()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.receiving.set()
        await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        with self._lock:
            self.message_ids.append(str(message["Message-ID"]))
        return "250 OK"

    def received(self) -> list[str]:
        with self._lock:
            return list(self.message_ids)


@pytest.fixture
def sink() -> Iterator[Sink]:
    sink = Sink(delay=0.05)
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
async def settings(test_settings: Settings, sink: Sink) -> AsyncIterator[Settings]:
    # A small pool, so the worker runs one or two emails at a time and can be
    # caught in the middle of them.
    settings = queue_settings(
        test_settings,
        smtp_url=f"smtp://127.0.0.1:{sink.port}",
        worker_db_pool_size=3,
        worker_db_max_overflow=0,
        relay_lease_seconds=1.0,
    )
    yield settings
    await delete_queues(settings)


def _worker(settings: Settings, test_settings: Settings, log: Path) -> WorkerProcess:
    environment = worker_environment(
        settings, test_settings.database_url, SMTP_URL=settings.smtp_url
    )
    return WorkerProcess(environment, log)


async def _create_users(client: AsyncClient, first: int, count: int) -> list[float]:
    """Create users one after the other; returns each request's seconds."""
    seconds = []
    for n in range(first, first + count):
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/users", json={"email": f"user{n}@example.com", "full_name": f"User {n}"}
        )
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 201, response.text
    return seconds


async def _expected_ids(engine: AsyncEngine, settings: Settings) -> set[str]:
    async with engine.connect() as connection:
        ids = (await connection.execute(select(OutboxMessage.id))).scalars().all()
    domain = settings.mail_from.rpartition("@")[2]
    return {f"<{task_id}@{domain}>" for task_id in ids}


async def _all_arrive(sink: Sink, expected: set[str], seconds: float = 60.0) -> None:
    async def arrived() -> bool:
        return set(sink.received()) == expected

    await eventually(arrived, seconds)


def _duplicates(sink: Sink) -> int:
    received = sink.received()
    return len(received) - len(set(received))


async def test_every_email_arrives_though_the_worker_is_killed_mid_run(
    settings: Settings,
    test_settings: Settings,
    sink: Sink,
    live_client: AsyncClient,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    worker = _worker(settings, test_settings, tmp_path / "worker.log")
    worker.start()
    try:
        for batch in range(6):  # 60 users, 10 at a time
            created = [_create_users(live_client, batch * 10 + n, 1) for n in range(10)]
            await asyncio.gather(*created)

        async def a_quarter_sent() -> bool:
            return len(sink.received()) >= 15

        await eventually(a_quarter_sent)
        worker.kill()  # SIGKILL, in the middle of the run
        assert len(set(sink.received())) < 60
        worker.start()
        expected = await _expected_ids(engine, settings)
        assert len(expected) == 60
        await _all_arrive(sink, expected)
    finally:
        worker.kill()
    assert _duplicates(sink) <= worker_capacity(settings)  # the emails in flight at the kill


async def test_every_email_arrives_once_though_a_relay_dies_before_marking(
    settings: Settings,
    test_settings: Settings,
    sink: Sink,
    live_client: AsyncClient,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    await _create_users(live_client, 0, 20)
    dying_relay = _worker(settings, test_settings, tmp_path / "relay.log")
    dying_relay.start("-c", DIES_BEFORE_MARKING)
    assert await dying_relay.wait() == 137
    assert await pending(engine) == 20  # published, never marked sent
    worker = _worker(settings, test_settings, tmp_path / "worker.log")
    worker.start()
    try:
        await _all_arrive(sink, await _expected_ids(engine, settings))

        async def all_marked() -> bool:
            return await pending(engine) == 0

        await eventually(all_marked)  # the lease ended: published again, marked this time
        await asyncio.sleep(1)  # the second copies are delivered and find the work done
    finally:
        worker.kill()
    assert _duplicates(sink) <= worker_capacity(settings)


DIES_BEFORE_MARKING = """
import asyncio, os
from app.settings import get_settings
from app.tasks.broker import worker_database
from app.tasks.publisher import Publisher
from app.tasks.relay import Relay

async def main():
    settings = get_settings()
    async with worker_database(settings) as database, Publisher(settings) as publisher:
        relay = Relay(database, publisher, settings)
        async def die(ids):
            os._exit(137)
        relay._mark_sent = die
        await relay.relay_batch()

asyncio.run(main())
"""


async def test_without_rabbitmq_requests_stay_fast_and_the_outbox_drains_later(
    settings: Settings,
    test_settings: Settings,
    sink: Sink,
    live_client: AsyncClient,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    proxy = TcpProxy(RABBITMQ_PORT)
    await proxy.restore()
    # Through the proxy; reconnecting every second (aio-pika's default is 5 s).
    url = settings.broker_url.replace(f":{RABBITMQ_PORT}/", f":{proxy.port}/")
    assert url != settings.broker_url
    url += "?reconnect_interval=1"
    worker = _worker(settings.model_copy(update={"broker_url": url}), test_settings, tmp_path / "w")
    worker.start()
    try:
        before = await _create_users(live_client, 0, 10)
        await _all_arrive(sink, await _expected_ids(engine, settings))
        await proxy.cut()
        during = await _create_users(live_client, 10, 20)
        await asyncio.sleep(1)
        assert await pending(engine) == 20  # kept, not lost, not sent
        assert len(sink.received()) >= 10
        await proxy.restore()
        await _all_arrive(sink, await _expected_ids(engine, settings), seconds=90)
        assert await pending(engine) == 0
    finally:
        worker.kill()
        await proxy.cut()
    # The requests never wait for RabbitMQ: as fast without it.
    assert statistics.median(during) <= 2 * statistics.median(before) + 0.02


async def test_sigterm_finishes_the_email_in_hand_and_leaves_the_rest_queued(
    settings: Settings,
    test_settings: Settings,
    sink: Sink,
    live_client: AsyncClient,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    sink.delay = 1.0
    await _create_users(live_client, 0, 4)
    worker = _worker(settings, test_settings, tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(sink.receiving.wait, 30)
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.wait() == 0
        finished = len(sink.received())
        assert 1 <= finished < 4  # the ones in hand, not the queue
        sink.delay = 0.0
        worker.start()
        await _all_arrive(sink, await _expected_ids(engine, settings))
    finally:
        worker.kill()
    assert _duplicates(sink) == 0


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://mail.example.com:2525", SmtpServer("mail.example.com", 2525, False)),
        ("smtp://mail.example.com", SmtpServer("mail.example.com", 25, False)),
        ("smtps://mail.example.com", SmtpServer("mail.example.com", 465, True)),
        (
            "smtp://ada%40example.com:p%3Ass@mail.example.com:587",
            SmtpServer("mail.example.com", 587, False, "ada@example.com", "p:ss"),
        ),
    ],
)
def test_smtp_url(url: str, server: SmtpServer) -> None:
    assert SmtpServer.from_url(url) == server


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "mail.example.com:25"])
def test_a_bad_smtp_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        SmtpServer.from_url(url)


def test_the_password_is_not_in_the_servers_repr() -> None:
    assert "s3cret" not in repr(SmtpServer.from_url("smtp://ada:s3cret@mail.example.com"))


# SMTP_URL against real TLS servers


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the TLS tests make their certificate with the openssl command"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(  # noqa: S603 -- fixed arguments
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's certificate is the client's trust store (OpenSSL reads SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


class Recorder:
    """An SMTP server's handler and authenticator that keep, for each email and each
    log-in attempt, whether it came over STARTTLS."""

    def __init__(self) -> None:
        self.emails: list[bool] = []
        self.logins: list[tuple[str, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.emails.append(session.ssl is not None)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), session.ssl is not None))
        return AuthResult(success=(data.login, data.password) == (b"ada", b"s3cret"))


@contextmanager
def smtp_server(recorder: Recorder, **options: Any) -> Iterator[int]:
    """An aiosmtpd server on loopback with `options`; yields its port."""
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Hi"
    message.set_content("Hello.")
    return message


@pytest.mark.usefixtures("trusted")
async def test_smtps_sends_over_implicit_tls(certificate: tuple[Path, Path]) -> None:
    recorder = Recorder()
    with smtp_server(recorder, ssl_context=_server_tls(certificate)) as port:
        await send(SmtpServer.from_url(f"smtps://127.0.0.1:{port}"), _message(), 5)
    assert len(recorder.emails) == 1


@pytest.mark.usefixtures("trusted")
async def test_smtp_uses_starttls_when_the_server_offers_it(
    certificate: tuple[Path, Path],
) -> None:
    recorder = Recorder()
    with smtp_server(recorder, tls_context=_server_tls(certificate)) as port:
        await send(SmtpServer.from_url(f"smtp://127.0.0.1:{port}"), _message(), 5)
    assert recorder.emails == [True]


@pytest.mark.usefixtures("trusted")
async def test_a_password_is_sent_only_after_starttls(certificate: tuple[Path, Path]) -> None:
    recorder = Recorder()
    options = {"tls_context": _server_tls(certificate), "authenticator": recorder.authenticate}
    with smtp_server(recorder, **options) as port:
        await send(SmtpServer.from_url(f"smtp://ada:s3cret@127.0.0.1:{port}"), _message(), 5)
    assert recorder.logins == [("ada", True)]
    assert recorder.emails == [True]


async def test_a_password_is_never_sent_to_a_server_without_starttls() -> None:
    recorder = Recorder()
    # A server that would take the log-in in clear.
    options = {"authenticator": recorder.authenticate, "auth_require_tls": False}
    refused = pytest.raises(aiosmtplib.SMTPException)
    with smtp_server(recorder, **options) as port, refused:
        await send(SmtpServer.from_url(f"smtp://ada:s3cret@127.0.0.1:{port}"), _message(), 5)
    assert recorder.logins == []
    assert recorder.emails == []


async def test_a_certificate_the_client_does_not_trust_is_refused(
    certificate: tuple[Path, Path],
) -> None:
    recorder = Recorder()
    refused = pytest.raises((aiosmtplib.SMTPException, OSError))
    with smtp_server(recorder, ssl_context=_server_tls(certificate)) as port, refused:
        await send(SmtpServer.from_url(f"smtps://127.0.0.1:{port}"), _message(), 5)
    assert recorder.emails == []
