"""Request and response types of the consent API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConsentRequestCreate(BaseModel):
    user: str = Field(description="The provider's id of the user who wants to edit someone's face or voice.")
    contact: str = Field(description="The person's mainland mobile number; the consent link goes there.")
    operations: list[str] = Field(description="Biometric operations asked for, e.g. ['face.swap'].")
    purpose: str = Field(default="", max_length=1000, description="Shown to the person with the request.")


class ConsentRequestOut(BaseModel):
    id: str
    status: str
    operations: list[str]
    subject_id: str
    created_at: str
    expires_at: str
    answered_at: str | None = None
