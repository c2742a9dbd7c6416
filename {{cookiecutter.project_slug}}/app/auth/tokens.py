"""Access and refresh tokens: JWTs signed with HS256 under `JWT_SECRET_KEY`.

Each carries `sub` (the user id), `type` (`access` or `refresh`), `jti` (its own
id), `iat` and `exp`; a refresh token also carries `fam`, the login it descends
from (app.auth.refresh). Decoding pins the algorithm, so a token that claims
`alg: none` or any other algorithm is refused, requires every claim, and checks the
type: a refresh token never passes as an access token, nor the reverse.
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
) -> tuple[str, Claims]:
    claims = Claims(subject, new_id(), family, now + _lifetime(settings, kind))
    payload: dict[str, object] = {
        "sub": str(subject),
        "type": kind,
        "jti": str(claims.token_id),
        "iat": now,
        "exp": claims.expires_at,
    }
    if family is not None:
        payload["fam"] = str(family)
    return jwt.encode(payload, settings.jwt_secret_key, algorithm=ALGORITHM), claims


def decode(settings: Settings, token: str, kind: TokenType) -> Claims:
    try:
        payload = jwt.decode(
            token,
            settings.jwt_secret_key,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS},
        )
        if payload["type"] != kind:
            raise InvalidTokenError(f"a {payload['type']!r} token where {kind!r} is expected")
        family = payload.get("fam")
        if (kind == "refresh") != (family is not None):
            raise InvalidTokenError("a refresh token, and only a refresh token, has a family")
        return Claims(
            subject=uuid.UUID(payload["sub"]),
            token_id=uuid.UUID(payload["jti"]),
            family=uuid.UUID(family) if family is not None else None,
            expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
        )
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError) as exc:
        raise InvalidTokenError(str(exc)) from exc
