"""Request and response bodies of /api/v1/auth. No response carries a password or a hash."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import Email, ShortText


class Registration(BaseModel):
    """The minimum password length is the PASSWORD_MIN_LENGTH setting (checked by
    the endpoint, which knows the settings); the maximum bounds the hashing work."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: ShortText
    password: str = Field(max_length=1024, repr=False)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 -- OAuth2's token type


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(max_length=4096, repr=False)


class PasswordChange(BaseModel):
    """The new password's minimum length is PASSWORD_MIN_LENGTH (checked by the
    endpoint); the maximums bound the hashing work."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024, repr=False)
    new_password: str = Field(max_length=1024, repr=False)
