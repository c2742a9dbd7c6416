"""Field types shared by the request schemas."""

from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StringConstraints


def _no_control_characters(value: str) -> str:
    """Refuse what no database stores: NUL (PostgreSQL), lone surrogates (UTF-8)."""
    if any((ord(ch) < 32 and ch not in "\t\n\r") or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValueError("must not contain control characters or lone surrogates")
    return value


def _lower(value: str) -> str:
    return value.lower()


Text = Annotated[str, AfterValidator(_no_control_characters)]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_characters),
]
# Lower-cased so uniqueness means the same thing on every database's collation.
Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(_lower)]
