from __future__ import annotations

import pytest

from synthgate.identity.validators import make_provider_code
from synthgate.labeling.implicit import AigcLabel

PRODUCER = make_provider_code("91440300708461136T", "generation", "XGW3")
PLATFORM = make_provider_code("91440300708461136T", "propagation", "PLT1")


@pytest.fixture
def label() -> AigcLabel:
    return AigcLabel(Label="1", ContentProducer=PRODUCER, ProduceID="gen-0001")
