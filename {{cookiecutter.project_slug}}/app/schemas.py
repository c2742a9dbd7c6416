"""Field types shared by the request schemas."""

import re
from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

# Control characters other than tab and line breaks (NUL among them), and lone
# surrogates (UTF-8 cannot encode them): no text column should hold them. One
# regex: a per-character Python loop was the largest cost of a 10,000-row bulk insert.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _no_control_characters(value: str) -> str:
    if _UNSTORABLE.search(value):
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
# Stored lower-case, so the unique index ignores letter case.
Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(_lower)]
