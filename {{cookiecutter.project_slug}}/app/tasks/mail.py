"""Sending email through the server in SMTP_URL, with aiosmtplib.

- `smtp://host:port`: STARTTLS when the server offers it; with a user and password
  (`smtp://user:password@host:587`) STARTTLS is required, so credentials never
  cross the network in clear.
- `smtps://host:465`: TLS from the first byte (implicit TLS).
Certificates are verified against the system's trust store. Percent-encode a `@`,
`:` or `/` in the user or password.
Docs: https://aiosmtplib.readthedocs.io/en/stable/usage.html
"""

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Self
from urllib.parse import unquote, urlsplit

import aiosmtplib

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
        return cls(
            hostname=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            implicit_tls=parts.scheme == "smtps",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


async def send(server: SmtpServer, message: EmailMessage, seconds: float) -> None:
    """Deliver `message` to the server within `seconds` per step; raises
    aiosmtplib.SMTPException or OSError."""
    await aiosmtplib.send(
        message,
        hostname=server.hostname,
        port=server.port,
        username=server.username,
        password=server.password,
        use_tls=server.implicit_tls,
        # None: STARTTLS if offered. True: STARTTLS or fail (before logging in).
        start_tls=None if server.implicit_tls or server.username is None else True,
        timeout=seconds,
    )
