"""The ASGI factory uvicorn imports in each worker process."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from synthgate.config import get_settings
from synthgate.logging import configure_logging
from synthgate.web.app import create_app


def create() -> FastAPI:
    settings = get_settings()
    configure_logging(settings)
    app = create_app(settings)
    # Everything loaded so far (modules, models, templates) lives as long as the server process:
    # moving it out of the collector's generations keeps full collections short, and with them
    # the pauses that would otherwise land in the latency tail. (Only here, in the server entry
    # point: an embedding application decides about its own process.)
    gc.collect()
    gc.freeze()
    return app
