from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=200, description="The provider's user id of the end user")
    input: str | None = Field(default=None, description="The prompt as plain text")
    messages: list[dict[str, Any]] | None = Field(default=None, description="Or chat messages (OpenAI shape)")
    model: str | None = Field(default=None, max_length=200)
    medium: Literal["text"] = "text"

    @model_validator(mode="after")
    def one_input(self) -> CheckRequest:
        if (self.input is None) == (self.messages is None):
            raise ValueError("give exactly one of 'input' or 'messages'")
        return self


class Filing(BaseModel):
    number: str | None
    link: str | None


class CheckResponse(BaseModel):
    ticket_id: str
    produce_id: str
    expires_at: str
    label_notice: str = Field(
        description="GB-5.1 interface notice text for apps that show one beside the answer"
    )
    filing: Filing


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str = Field(description="The model's output text")


class CompleteResponse(BaseModel):
    produce_id: str
    output: str = Field(description="The output with its explicit label, to deliver as is")
    labels: dict[str, Any]
    verdicts: dict[str, Any]
    filing: Filing


class GenerationOut(BaseModel):
    produce_id: str
    mode: str
    medium: str
    model: str | None
    streamed: bool
    input_sha256: str
    output_sha256: str
    labels: dict[str, Any]
    verdicts: dict[str, Any]
    created_at: str
