"""Access and refresh tokens: JWTs signed with HS256 under `JWT_SECRET_KEY`.

Each carries `sub` (the user id), `type` (`access` or `refresh`), `jti` (its own
id), `iat` and `exp`; an access token also carries `gen`, the user's token
generation when it was issued (logging out everywhere or changing the password
starts a new one, which ends every access token of the older ones), and a
refresh token `fam`, the log-in it descends from (app.auth.refresh). Decoding pins
the algorithm, so a token that claims `alg: none` or any other algorithm is
refused, requires every claim, and checks the type: a refresh token never passes
as an access token, nor the reverse.
Docs: https://pyjwt.readthedocs.io/en/stable/usage.html
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from app.db.keys import new_id
from app.settings import Settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "type", "jti"]
TokenType = Literal["access", "refresh"]


class InvalidTokenError(Exception):
    """Expired, forged, malformed, or of the other type."""


@dataclass(frozen=True)
class Claims:
    subject: uuid.UUID
    token_id: uuid.UUID
    family: uuid.UUID | None
    expires_at: datetime
    generation: int | None = None


def _lifetime(settings: Settings, kind: TokenType) -> timedelta:
    if kind == "access":
        return timedelta(minutes=settings.access_token_minutes)
    return timedelta(days=settings.refresh_token_days)


def issue(
    settings: Settings,
    kind: TokenType,
    *,
    subject: uuid.UUID,
    now: datetime,
    family: uuid.UUID | None = None,
    generation: int | None = None,
) -> tuple[str, Claims]:
    if (kind == "access") != (generation is not None):
        raise ValueError("an access token, and only an access token, has a generation")
    claims = Claims(subject, new_id(), family, now + _lifetime(settings, kind), generation)
    payload: dict[str, object] = {
        "sub": str(subject),
        "type": kind,
        "jti": str(claims.token_id),
        "iat": now,
        "exp": claims.expires_at,
    }
    if family is not None:
        payload["fam"] = str(family)
    if generation is not None:
        payload["gen"] = generation
    return jwt.encode(payload, settings.jwt_secret_key, algorithm=ALGORITHM), claims


def decode(settings: Settings, token: str, kind: TokenType, *, expired_ok: bool = False) -> Claims:
    """The claims of a token this service signed, of type `kind`. `expired_ok` accepts
    one that has expired (logging out with it still revokes its family)."""
    try:
        payload = jwt.decode(
            token,
            settings.jwt_secret_key,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS, "verify_exp": not expired_ok},
        )
        if payload["type"] != kind:
            raise InvalidTokenError(f"a {payload['type']!r} token where {kind!r} is expected")
        family = payload.get("fam")
        if (kind == "refresh") != (family is not None):
            raise InvalidTokenError("a refresh token, and only a refresh token, has a family")
        generation = payload.get("gen")
        if (kind == "access") != (type(generation) is int):
            raise InvalidTokenError("an access token, and only an access token, has a generation")
        return Claims(
            subject=uuid.UUID(payload["sub"]),
            token_id=uuid.UUID(payload["jti"]),
            family=uuid.UUID(family) if family is not None else None,
            expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
            generation=generation,
        )
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError) as exc:
        raise InvalidTokenError(str(exc)) from exc
