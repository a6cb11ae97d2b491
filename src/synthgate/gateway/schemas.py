from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthgate.governance.service import OPERATION_MAX_LENGTH, OPERATION_PATTERN


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: str = Field(min_length=4, description="The file's bytes, base64-encoded; its kind is sniffed")
    role: str = Field(
        default="input",
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="What the file is to the request: input, or source / target / reference for edits",
    )


class MediaOut(BaseModel):
    data: str = Field(description="The file to deliver, base64-encoded, with its labels")
    container: str
    medium: str
    sha256: str


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=200, description="The provider's user id of the end user")
    input: str | None = Field(default=None, description="The prompt as plain text")
    messages: list[dict[str, Any]] | None = Field(default=None, description="Or chat messages (OpenAI shape)")
    model: str | None = Field(default=None, max_length=200)
    medium: Literal["text", "image", "audio", "video"] = Field(
        default="text", description="The medium of the output asked for"
    )
    operation: str = Field(
        default="generate",
        pattern=rf"^{OPERATION_PATTERN}$",
        max_length=OPERATION_MAX_LENGTH,
        description="What the request does: generate, or an edit such as face.swap or voice.clone "
        "(biometric edits need the edited person's consent, DSP-14)",
    )
    media: list[MediaIn] = Field(default_factory=list, description="Input files (images, audio, video)")
    without_explicit_label: bool = Field(
        default=False,
        description="LM-9: the user asks for the output without the explicit label. Only where the "
        "service's agreement puts the labeling duty on the user (service setting unlabeled_delivery); "
        "metadata labels and watermarks stay, and the delivery is logged with its recipient",
    )

    @model_validator(mode="after")
    def one_input(self) -> CheckRequest:
        if self.input is not None and self.messages is not None:
            raise ValueError("give at most one of 'input' or 'messages'")
        if self.input is None and self.messages is None and not self.media:
            raise ValueError("give 'input', 'messages' or 'media'")
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
    output: str | None = Field(default=None, description="The model's output text")
    media: list[MediaIn] = Field(default_factory=list, description="The model's output files")

    @model_validator(mode="after")
    def some_output(self) -> CompleteRequest:
        if self.output is None and not self.media:
            raise ValueError("give 'output', 'media' or both")
        return self


class CompleteResponse(BaseModel):
    produce_id: str
    output: str | None = Field(description="The output with its explicit label, to deliver as is")
    media: list[MediaOut] = Field(
        default_factory=list, description="The output files with their labels, to deliver as they are"
    )
    labels: dict[str, Any]
    verdicts: dict[str, Any]
    filing: Filing


class GenerationOut(BaseModel):
    produce_id: str
    mode: str
    medium: str
    operation: str
    model: str | None
    streamed: bool
    input_sha256: str
    output_sha256: str
    labels: dict[str, Any]
    verdicts: dict[str, Any]
    created_at: str
