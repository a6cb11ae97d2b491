from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountCreate(Strict):
    user_id: str = Field(min_length=1, max_length=200, description="The provider's own id for this user")
    kind: Literal["person", "organisation"] = "person"


class AccountOut(BaseModel):
    id: str
    user_id: str
    kind: str
    status: str
    status_reason: str | None
    status_until: str | None
    restrictions: list[str]
    verified: bool
    verified_at: str | None
    verification_method: str | None


class PhoneStart(Strict):
    phone: str = Field(min_length=5, max_length=32, description="Mainland mobile number, e.g. +8613800138000")


class PhoneStarted(BaseModel):
    challenge_id: str
    expires_at: str


class PhoneConfirm(Strict):
    challenge_id: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=16)


class IdNumberClaim(Strict):
    name: str = Field(min_length=1, max_length=200)
    id_number: str = Field(min_length=1, max_length=32)


class UsccClaim(Strict):
    name: str = Field(min_length=1, max_length=200)
    uscc: str = Field(min_length=1, max_length=32)


class NationalIdentityClaim(Strict):
    token: str = Field(min_length=1, max_length=4096)


class VerificationOut(BaseModel):
    verified: bool
    method: str
    detail: str = ""
    account: AccountOut
