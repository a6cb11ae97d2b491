"""C2PA manifests: signed with a configured chain, validated against configured trust anchors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cryptography import x509
from PIL import Image
from typer.testing import CliRunner

from synthgate.labeling import c2pa
from synthgate.labeling.c2pa import COMPOSITE, TRAINED, DevChain, SigningIdentity, make_dev_chain
from tests.labeling.explicit.test_video import make_video


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> DevChain:
    return make_dev_chain(tmp_path_factory.mktemp("c2pa"))


@pytest.fixture(scope="module")
def identity(chain: DevChain) -> SigningIdentity:
    return SigningIdentity.from_files(chain.chain, chain.key)


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (30, 120, 200)).save(buf, fmt)
    return buf.getvalue()


def _audio(fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((4000, 1)), 16000, format=fmt)
    return buf.getvalue()


SAMPLES = {
    "jpeg": lambda: _image("JPEG"),
    "png": lambda: _image("PNG"),
    "webp": lambda: _image("WEBP"),
    "mp4": lambda: make_video(seconds=0.5, audio=False),
    "wav": lambda: _audio("WAV"),
    "mp3": lambda: _audio("MP3"),
}
AIGC = {"Label": "1", "ContentProducer": "001191440300708461136T1XGW3", "ProduceID": "p1"}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_c2pa_created_manifest_trusted_per_format(
    kind: str, chain: DevChain, identity: SigningIdentity
) -> None:
    data = SAMPLES[kind]()
    assert not c2pa.read(data, kind, chain.root.read_bytes()).present
    signed = c2pa.sign(data, kind, identity, aigc=AIGC)
    report = c2pa.read(signed, kind, chain.root.read_bytes())
    assert report.present and report.state == "Trusted", report.failures
    assert report.actions[0]["action"] == "c2pa.created"
    assert report.actions[0]["digitalSourceType"] == TRAINED
    assert report.aigc == AIGC
    assert report.signer == "synthgate dev content signer"


def test_c2pa_edited_manifest_is_composite(chain: DevChain, identity: SigningIdentity) -> None:
    signed = c2pa.sign(_image("JPEG"), "jpeg", identity, edited=True)
    report = c2pa.read(signed, "jpeg", chain.root.read_bytes())
    assert report.state == "Trusted"
    edits = [a for a in report.actions if a["action"] == "c2pa.edited"]
    assert edits and edits[0]["digitalSourceType"] == COMPOSITE


def test_c2pa_untrusted_without_the_anchor(tmp_path: Path, identity: SigningIdentity) -> None:
    signed = c2pa.sign(_image("PNG"), "png", identity)
    stranger = make_dev_chain(tmp_path / "other")
    report = c2pa.read(signed, "png", stranger.root.read_bytes())
    assert report.present and not report.trusted
    assert "signingCredential.untrusted" in report.failures
    assert c2pa.read(signed, "png", None).state == "Valid"


def test_c2pa_tampered_content_is_invalid(chain: DevChain, identity: SigningIdentity) -> None:
    signed = bytearray(c2pa.sign(_audio("WAV"), "wav", identity))
    signed[signed.index(b"data") + 8 + 100] ^= 0xFF  # one sample, covered by the hard binding
    report = c2pa.read(bytes(signed), "wav", chain.root.read_bytes())
    assert report.state == "Invalid" and not report.trusted
    assert any("dataHash.mismatch" in f for f in report.failures)


def test_c2pa_ed25519_chain(tmp_path: Path) -> None:
    chain = make_dev_chain(tmp_path, algorithm="ed25519")
    identity = SigningIdentity.from_files(chain.chain, chain.key)
    assert identity.algorithm == "ed25519"
    report = c2pa.read(c2pa.sign(_image("PNG"), "png", identity), "png", chain.root.read_bytes())
    assert report.state == "Trusted"


def test_c2pa_dev_chain_has_the_right_key_usages(chain: DevChain) -> None:
    root = x509.load_pem_x509_certificate(chain.root.read_bytes())
    leaf, mid = x509.load_pem_x509_certificates(chain.chain.read_bytes())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert mid.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in ekus
    leaf.verify_directly_issued_by(mid)
    mid.verify_directly_issued_by(root)
    assert oct(chain.key.stat().st_mode & 0o777) == "0o600"


def test_c2pa_unsupported_container_is_a_clear_error(identity: SigningIdentity) -> None:
    from synthgate.media import UnsupportedMedia

    with pytest.raises(UnsupportedMedia):
        c2pa.sign(b"# markdown\n", "markdown", identity)


def test_c2pa_certs_dev_cli(tmp_path: Path) -> None:
    from synthgate.cli import app

    runner = CliRunner()
    target = tmp_path / "certs"
    first = runner.invoke(app, ["certs", "dev", "--dir", str(target), "--alg", "ed25519"])
    assert first.exit_code == 0, first.output
    assert {p.name for p in target.iterdir()} == {"root.pem", "chain.pem", "signer.key"}
    again = runner.invoke(app, ["certs", "dev", "--dir", str(target)])
    assert again.exit_code == 2 and "--force" in again.output
    assert runner.invoke(app, ["certs", "dev", "--dir", str(target), "--force"]).exit_code == 0
