"""The ASGI factory uvicorn imports in each worker process."""

from __future__ import annotations

from fastapi import FastAPI

from synthgate.config import get_settings
from synthgate.logging import configure_logging
from synthgate.web.app import create_app


def create() -> FastAPI:
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
