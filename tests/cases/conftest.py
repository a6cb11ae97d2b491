"""Case fixtures: a gateway whose pipeline refuses taken-down files, pictures with real structure,
generations made through the real two-phase pipeline, complaints filed the way the public does."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from synthgate.cases import service as cases
from synthgate.config import Settings
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from tests.conftest import ServiceWithKey, make_service, ready_user
from tests.web.conftest import login_as as login_as

STAGES = [
    "identity",
    "rules",
    "input_screening",
    "output_screening",
    "explicit_label",
    "record",
]
POW_BITS = 8


def case_settings(base: Settings, **extra: Any) -> Settings:
    return base.model_copy(
        update={"stages": STAGES, "complaint_pow_bits": POW_BITS, "complaint_form_min_seconds": 0.0, **extra}
    )


def server_env_for_cases(**extra: str) -> dict[str, str]:
    """The same settings for a ``synthgate serve`` process (environment variables)."""
    return {
        "SYNTHGATE_STAGES": json.dumps(STAGES),
        "SYNTHGATE_COMPLAINT_POW_BITS": str(POW_BITS),
        "SYNTHGATE_COMPLAINT_FORM_MIN_SECONDS": "1",
        **extra,
    }


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return case_settings(settings)


@pytest.fixture
def svc(gateway: Gateway, sms: CapturingSmsSender) -> Iterator[ServiceWithKey]:
    made = make_service(gateway, "studio")
    ready_user(gateway, sms, made.service, "alice")
    ready_user(gateway, sms, made.service, "bob")
    yield made


_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)


def picture(seed: int = 7, size: tuple[int, int] = (320, 240)) -> bytes:
    """A PNG of a real photograph (scikit-image's sample data), different for each seed below 32.

    Real pictures, because a perceptual hash is only stable on real structure: a recompressed,
    resized copy of a photo stays within PDQ distance 31, a synthetic gradient does not.
    """
    from skimage import data

    photo = np.asarray(getattr(data, _PHOTOS[seed % len(_PHOTOS)])(), dtype=np.uint8)
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    if (seed // len(_PHOTOS)) % 2:
        photo = photo[:, ::-1]
    if (seed // (2 * len(_PHOTOS))) % 2:
        photo = photo[::-1]
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(photo[..., :3])).convert("RGB").resize(size).save(out, "PNG")
    return out.getvalue()


def generate_image(
    gateway: Gateway, user: str, image: bytes, prompt: str = "a landscape"
) -> tuple[str, bytes]:
    """A generation through the real pipeline; returns its produce id and the delivered file."""
    checked = gateway.check("studio", user, prompt=prompt, medium="image")
    done = gateway.complete("studio", checked.ticket_id, media=[image])
    return done.produce_id, done.media[0].data


def complain_api(
    client: TestClient,
    gateway: Gateway,
    *,
    category: str = "rumour",
    contact: str | None = None,
    description: str = "This picture spreads a false story about a flood.",
    **content: Any,
) -> Any:
    challenge = client.get("/v1/complaints/challenge").json()
    nonce = cases.solve_pow(challenge["token"], challenge["difficulty_bits"])
    body = {
        "category": category,
        "description": description,
        "contact": contact,
        "content": content,
        "challenge": challenge["token"],
        "nonce": nonce,
    }
    return client.post("/v1/complaints", json=body)
