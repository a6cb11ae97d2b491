"""Propagation elements (LM-6): a platform adds its code and content id, keeping production fields.

With a label already present, only ContentPropagator / PropagateID / ReservedCode2 change, so the
producer's ``ReservedCode1`` binding still verifies. Without one, the platform writes a label with
the tier it found (``2`` possibly / ``3`` suspected); a file with no evidence at all is refused,
because labeling clean content as AI-generated would be a false statement.
"""

from __future__ import annotations

import base64

from synthgate.errors import InvalidInput
from synthgate.identity.validators import InvalidIdentifier, parse_provider_code
from synthgate.labeling.implicit.base import write_label
from synthgate.labeling.implicit.binding import Signer, content_digest
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.labeling.inspect import inspect

_TIER_LABEL = {"generated": "1", "possibly": "2", "suspected": "3"}


def propagate(
    data: bytes, *, platform: str, content_id: str, declared: bool = False, signer: Signer | None = None
) -> bytes:
    try:
        parse_provider_code(platform)
    except InvalidIdentifier as exc:
        raise InvalidInput(f"platform code: {exc}", field="platform") from exc
    # Thorough: a visible label read by OCR is the evidence that makes a file "suspected".
    report = inspect(data, declared=declared, thorough=True)
    current = next((f.label for f in report.labels if f.label is not None), None)
    if current is None:
        if report.tier == "none":
            raise InvalidInput(
                "no metadata label, no declaration and no trace of generation: nothing to propagate",
                code="label.no_evidence",
            )
        current = AigcLabel(Label=_TIER_LABEL[report.tier])
    reserved = ""
    if signer is not None:
        message = b"synthgate/aigc-propagation/v1\x00" + b"\x00".join(
            (platform.encode(), content_id.encode(), content_digest(data)[:16])
        )
        reserved = "sg1p." + base64.urlsafe_b64encode(signer.sign(message)).rstrip(b"=").decode()
    updated = current.with_propagation(platform, content_id, reserved)
    return write_label(data, updated)
