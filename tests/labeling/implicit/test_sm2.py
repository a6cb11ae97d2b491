"""``ReservedCode1`` signed with SM2 over an SM3 content digest (GB-E option), checked by OpenSSL too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from synthgate.config import Settings
from synthgate.devtools.demo import DEMO_PROVIDER_CODE
from synthgate.labeling.implicit import AigcLabel, bind, check_binding, read_labels, write_label
from synthgate.labeling.implicit.binding import content_digest, parse_binding
from synthgate.labeling.implicit.sm2 import Sm2PrivateKey, sm3
from synthgate.labeling.inspect import inspect
from synthgate.labeling.service import LabelRequest, LabelService, binding_verifiers
from tests.labeling.implicit import media_factory as mf

KEY = Sm2PrivateKey.from_seed(b"\x01" * 32)


def test_gbe_sm3_is_the_standard_hash() -> None:
    # GB/T 32905-2016 Appendix A, example 1.
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_gbe_sm2_binding_tells_bound_changed_forged(label: AigcLabel) -> None:
    png = mf.image("PNG")
    bound = bind(label, png, KEY)
    scheme, digest, signature = parse_binding(bound)  # type: ignore[misc]
    assert scheme == "sm2" and len(signature) == 64
    assert digest == content_digest(png, algorithm="sm3")[:16] != content_digest(png)[:16]
    labeled = write_label(png, bound)
    [found] = read_labels(labeled)
    assert found.label is not None and check_binding(found.label, labeled, KEY.public_key()) == "bound"
    other = write_label(mf.image("PNG", size=(41, 30)), bound)
    assert check_binding(bound, other, KEY.public_key()) == "content_changed"
    tampered = AigcLabel(**{**bound.to_dict(), "ProduceID": "gen-9999"})
    assert check_binding(tampered, labeled, KEY.public_key()) == "forged"
    stranger = Sm2PrivateKey.from_seed(b"\x02" * 32)
    assert check_binding(bind(label, png, stranger), labeled, KEY.public_key()) == "forged"
    # A reader holding only an Ed25519 key cannot vouch for an SM2 label, and says so.
    ed = Ed25519PrivateKey.generate().public_key()
    assert check_binding(bound, labeled, ed) == "not_verified"
    assert check_binding(bound, labeled, {"sg1": ed, "sm2": KEY.public_key()}) == "bound"


@pytest.mark.usefixtures("openssl")
def test_gbe_sm2_signature_verifies_with_openssl(tmp_path: Path) -> None:
    """A reader nobody here wrote: OpenSSL's SM2 with SM3 and the default distinguishing id."""
    message = b"synthgate sm2 interop"
    signature = KEY.sign(message)
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    (tmp_path / "pub.pem").write_bytes(KEY.public_key().spki_pem())
    (tmp_path / "sig").write_bytes(der)

    def verify(data: bytes) -> subprocess.CompletedProcess[str]:
        (tmp_path / "msg").write_bytes(data)
        return subprocess.run(
            [
                "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
                "-rawin", "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig"),
                "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip

    good = verify(message)
    assert good.returncode == 0 and "Verified Successfully" in good.stdout, good.stderr
    assert verify(message + b"!").returncode != 0


def test_gbe_label_service_binds_with_sm2_when_configured(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, scheduler=False, label_binding_algorithm="sm2", c2pa_enabled=False)
    labeler = LabelService(settings)
    result = labeler.label(mf.image("PNG", size=(200, 150)), LabelRequest(producer=DEMO_PROVIDER_CODE))
    assert result.label.ReservedCode1.startswith("sm2.")
    report = inspect(result.data, verifier=binding_verifiers(labeler.keys))
    assert report.binding == {"scheme": "sm2", "status": "bound"}
    # Keys come from the master secret: another worker with the same data dir verifies too.
    again = LabelService(settings)
    assert check_binding(result.label, result.data, again.binding_verifier) == "bound"
