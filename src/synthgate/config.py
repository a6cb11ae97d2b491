"""Settings: environment variables ``SYNTHGATE_*`` over an optional config file over defaults.

The config file (``SYNTHGATE_CONFIG`` or ``<data dir>/synthgate.yaml`` when present) is YAML with
the same keys as the environment variables, lower-cased and without the prefix. Environment
variables win, so a deployment can keep one file and override single values per worker.
"""

from __future__ import annotations

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

    # Gateway.
    ticket_ttl_seconds: int = 600
    upstream_timeout_seconds: float = 120.0
    stages: list[str] = Field(
        default_factory=lambda: [
            "identity",
            "rules",
            "input_screening",
            "output_screening",
            "explicit_label",
            "record",
        ]
    )
    blocked_terms: list[str] = Field(default_factory=list)
    """Terms refused in every service on top of each service's own list (until the feature library lands)."""
    label_text: str = DEFAULT_LABEL_TEXT
    label_position: Literal["start", "end", "both"] = "end"

    # Console.
    session_ttl_seconds: int = 8 * 3600
    login_max_failures: int = 10
    cookie_secure: bool = False

    # Audit.
    audit_integrate_interval_seconds: float = 2.0
    audit_origin: str = "synthgate.local/audit"
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
