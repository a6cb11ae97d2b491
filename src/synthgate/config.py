"""Settings: environment variables ``SYNTHGATE_*`` over an optional config file over defaults.

The config file (``SYNTHGATE_CONFIG`` or ``<data dir>/synthgate.yaml`` when present) is YAML with
the same keys as the environment variables, lower-cased and without the prefix. Environment
variables win, so a deployment can keep one file and override single values per worker.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_LABEL_TEXT = "【本内容由人工智能生成】"


class ConfigFileSource(PydanticBaseSettingsSource):
    """Reads the optional YAML config file; lowest priority after the defaults."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data = _load_config_file()

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


def _load_config_file() -> dict[str, Any]:
    explicit = os.environ.get("SYNTHGATE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"SYNTHGATE_CONFIG points to {path}, which is not a file")
    else:
        data_dir = Path(os.environ.get("SYNTHGATE_DATA_DIR", "data"))
        path = data_dir / "synthgate.yaml"
        if not path.is_file():
            return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings")
    return {str(k).lower(): v for k, v in loaded.items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHGATE_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    """SQLAlchemy URL; default is SQLite (WAL) in the data directory."""

    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str | None = None
    """Public URL of this deployment, used in links (rules page, consent links)."""

    # Request limits (bad input gets a clear 4xx, never a 5xx).
    max_body_bytes: int = 2 * 1024 * 1024
    max_input_chars: int = 200_000
    max_upload_body_bytes: int = 64 * 1024 * 1024
    """Request bodies on the routes that carry media (``upload_path_prefixes``)."""
    upload_path_prefixes: list[str] = Field(
        default_factory=lambda: [
            "/v1/generations",
            "/v1/labels",
            "/v1/inspect",
            "/inspect",
            "/v1/complaints",
            "/complaints",
            "/v1/consents",
            "/consent",
            "/console/governance/evidence",
        ]
    )
    max_media_items: int = Field(default=8, ge=0)
    """Media items one generation request may carry, in and out."""

    # Identity (DSP-9).
    otp_length: int = 6
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    otp_min_interval_seconds: int = 60
    otp_max_per_hour: int = 5
    sms_sender: str = "log"
    """Name of the SMS sender (entry point group ``synthgate.sms_senders``): ``log`` or ``webhook``."""
    sms_webhook_url: str | None = None
    id_verifier: str = "checksum"
    """Real-name verifier for resident ID numbers: ``checksum`` (format only; development) or ``http``."""
    id_verifier_url: str | None = None
    uscc_verifier: str = "checksum"
    uscc_verifier_url: str | None = None
    national_identity_verifier: str = "unconfigured"
    national_identity_url: str | None = None

    # Biometric-edit consent (DSP-14; consent/). Thresholds calibrated in docs/performance.md.
    consent_notifier: str = "log"
    """How consent links reach the person asked (``synthgate.consent_notifiers``): ``log`` or ``sms``."""
    consent_request_ttl_hours: float = 72.0
    consent_max_days: int = 366
    consent_face_threshold: float = 0.45
    """Largest Euclidean distance between dlib face descriptors that counts as the same person."""
    consent_voice_threshold: float = 0.12
    """Largest cosine distance between speaker embeddings that counts as the same voice."""
    consent_keep_raw_media: bool = False
    """Keep the enrolment photo / recording (encrypted) beside the template; off by default."""
    consent_media_policy: Literal["detect", "operations"] = "detect"
    """``detect``: any input image, video or audio with a face or voice needs consent; ``operations``:
    only typed biometric operations do (a service's ``consent_media_policy`` setting wins)."""
    consent_video_fps: float = 1.0
    consent_video_max_frames: int = 60

    # Gateway.
    ticket_ttl_seconds: int = 600
    upstream_timeout_seconds: float = 120.0
    db_concurrency: int = Field(default=4, ge=1, le=256)
    """Proxy requests doing database work at once per worker; the rest wait in arrival order."""
    stages: list[str] = Field(
        default_factory=lambda: [
            "identity",
            "rules",
            "governance_gate",
            "input_screening",
            "consent",
            "output_screening",
            "explicit_label",
            "media_label",
            "record",
        ]
    )
    blocked_terms: list[str] = Field(default_factory=list)
    """Terms refused in every service on top of each service's own list (until the feature library lands)."""
    label_text: str = DEFAULT_LABEL_TEXT
    label_position: Literal["start", "end", "both"] = "end"
    # Explicit labels on media (GB 45438 5.2-5.4; labeling/explicit/).
    label_image_position: Literal["top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom"] = (
        "bottom-right"
    )
    label_image_style: Literal["plate", "outline"] = "plate"
    label_audio_cue: Literal["rhythm", "voice", "both"] = "rhythm"
    label_audio_placement: list[Literal["start", "end", "middle"]] = ["start"]  # pydantic copies it
    label_video_span: Literal["start", "start_end", "whole"] = "start"
    label_video_seconds: float = 2.0
    label_binding_algorithm: Literal["ed25519", "sm2"] = "ed25519"
    """Signature binding a metadata label to its content (ReservedCode1): Ed25519, or SM2 with SM3."""
    label_media_watermark: bool = True
    """The media_label stage also embeds the invisible watermark where a codec carries it (LM-5)."""
    # C2PA manifests (labeling/c2pa.py); `synthgate certs dev` writes a development chain to
    # <data dir>/c2pa/, used when these paths are unset.
    c2pa_enabled: bool = True
    c2pa_cert_chain: Path | None = None
    """PEM: the signing certificate followed by its intermediates."""
    c2pa_private_key: Path | None = None
    c2pa_trust_anchors: Path | None = None
    """PEM bundle of root certificates a C2PA reader trusts."""
    c2pa_tsa_url: str | None = None

    # Media decoding limits (decompression bombs are refused from their headers).
    media_max_bytes: int = 200 * 1024 * 1024
    media_max_pixels: int = 64_000_000
    media_max_duration_seconds: float = 3600.0
    evidence_max_bytes: int = 20 * 1024 * 1024
    """Governance evidence files (assessment reports, DSP-7 records, labeling materials)."""
    inspect_rate_per_minute: int = 30
    """Public ``POST /v1/inspect`` requests per client address per minute."""

    # Complaints, cases and appeals (DSP-10/11/12, GAI-14/15; cases/).
    complaint_deadline_workdays: int = Field(default=7, ge=1, le=60)
    """The published feedback deadline: a decision within this many working days of receipt."""
    appeal_deadline_workdays: int = Field(default=10, ge=1, le=60)
    complaint_reminder_workdays: int = Field(default=1, ge=0)
    """Remind the assignee when this many working days (or fewer) are left."""
    complaint_rate_per_hour: int = Field(default=10, ge=1)
    """Complaints accepted per client address per hour (all workers together: counted in the database)."""
    complaint_pow_bits: int = Field(default=18, ge=0, le=28)
    """Leading zero bits the API's proof-of-work needs (about 2**bits SHA-256 tries for the client)."""
    complaint_form_min_seconds: float = Field(default=3.0, ge=0)
    """A web form sent back sooner than this after it was served is a bot's."""
    complaint_token_max_age_seconds: int = 7200
    workday_extra_holidays: list[dt.date] = Field(default_factory=list)
    """Days off beyond the official calendar (local holidays, or years the package does not know yet)."""
    workday_extra_workdays: list[dt.date] = Field(default_factory=list)
    cases_notifiers: dict[str, str] = Field(default_factory=lambda: {"complainant": "log", "user": "log"})
    """Notifier per recipient (group ``synthgate.case_notifiers``): ``log``, ``smtp`` or ``webhook``."""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "noreply@synthgate.local"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    cases_webhook_url: str | None = None
    """Where the webhook notifier posts notices (a provider endpoint that reaches its users)."""
    authority_transport: str = "files"
    """How reports reach the authority (group ``synthgate.authority_transports``): ``files`` or ``http``."""
    authority_dir: Path | None = None
    """Outbox directory of the ``files`` transport (default ``<data dir>/authority-outbox``)."""
    authority_url: str | None = None

    # Console.
    session_ttl_seconds: int = 8 * 3600
    login_max_failures: int = 10
    cookie_secure: bool = False

    # Audit.
    audit_integrate_interval_seconds: float = 0.5
    """How often pending audit events get their leaf indexes (small batches, little jitter)."""
    audit_checkpoint_interval_seconds: float = 10.0
    """How often a signed checkpoint is made when the tree grew."""
    audit_origin: str = "synthgate.local/audit"
    retention_days: dict[str, int] = Field(default_factory=dict)
    """Days to keep each record type before the purge drops its payload (GAI-11 maximums): keys are
    audit event families (``pipeline``, ``identity``, ``account``, …) and ``generations``. Never below
    the legal minimum of six months for logs (CSL-21, LM-9); unlisted types use the default."""
    retention_default_days: int = 190
    purge_interval_seconds: float = 3600.0
    scheduler: bool = True
    """Run background jobs (audit integration, checkpoints) inside ``serve``."""

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, ConfigFileSource(settings_cls))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{self.data_dir / 'synthgate.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def public_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3, the driver we ship."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
