"""C2PA manifests: sign with a configured certificate chain, read back against trust anchors.

A generated file gets ``c2pa.created`` with the IPTC digital source type
``trainedAlgorithmicMedia``; an edit of a user's file gets ``c2pa.edited`` with
``compositeWithTrainedAlgorithmicMedia`` (the source becomes the parent ingredient). The GB 45438
AIGC object rides along in a ``cn.tc260.aigc`` assertion so a C2PA-only reader still sees the
production fields. Signing runs offline (no timestamp authority unless one is configured) and the
manifest is embedded last, after the explicit and metadata labels, because its hard binding
covers the final bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from synthgate.errors import InvalidInput
from synthgate.media import CorruptMedia, UnsupportedMedia

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
AIGC_ASSERTION = "cn.tc260.aigc"
MIME_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
}
Algorithm = Literal["es256", "ed25519"]


class C2paUnavailable(InvalidInput):
    code = "c2pa.unavailable"


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError as exc:  # pragma: no cover - a packaging error
        raise C2paUnavailable("c2pa-python is not installed") from exc
    return c2pa


# --- development certificate chain ----------------------------------------------------------------


@dataclass(frozen=True)
class DevChain:
    root: Path
    """Trust anchor (self-signed root CA certificate)."""
    chain: Path
    """Signing certificate followed by the intermediate, as C2PA embeds them."""
    key: Path
    """PKCS#8 private key of the signing certificate."""


def make_dev_chain(
    directory: Path,
    *,
    algorithm: Algorithm = "es256",
    days: int = 365,
    organisation: str = "synthgate development",
) -> DevChain:
    """Root CA → intermediate CA → signing certificate, each with the key usages C2PA checks.

    For development and tests only: the root is self-made, so readers trust it only when it is
    configured as a trust anchor.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    # A few minutes of back-dating tolerates clock skew between signer and reader.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.COMMON_NAME, common),
            ]
        )

    def usage(*, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not ca,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    def issue(
        subject_key: Any, issuer_key: Any, subject: str, issuer: str, *, ca: bool, path: int | None
    ) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(subject_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path), critical=True)
            .add_extension(usage(ca=ca), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        )
        if not ca:
            # C2PA accepts a signing certificate for email protection or document signing, never anyEKU.
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
        digest = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        return builder.sign(issuer_key, digest)

    root_key = ec.generate_private_key(ec.SECP256R1())
    mid_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key: Any = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    root = issue(root_key, root_key, "synthgate dev root CA", "synthgate dev root CA", ca=True, path=1)
    mid = issue(mid_key, root_key, "synthgate dev intermediate CA", "synthgate dev root CA", ca=True, path=0)
    leaf = issue(
        leaf_key,
        mid_key,
        "synthgate dev content signer",
        "synthgate dev intermediate CA",
        ca=False,
        path=None,
    )

    pem = serialization.Encoding.PEM
    paths = DevChain(root=directory / "root.pem", chain=directory / "chain.pem", key=directory / "signer.key")
    key_bytes = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Each file appears whole (temporary name, then rename): parallel labeling workers read these
    # files while another may be writing them, and half a PEM file does not load.
    _write_atomically(paths.key, key_bytes, mode=0o600)
    _write_atomically(paths.chain, leaf.public_bytes(pem) + mid.public_bytes(pem))
    _write_atomically(paths.root, root.public_bytes(pem))
    return paths


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


# --- signing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes
    key_pem: bytes
    tsa_url: str | None = None

    @classmethod
    def from_files(cls, chain: Path, key: Path, tsa_url: str | None = None) -> SigningIdentity:
        try:
            return cls(chain.read_bytes(), key.read_bytes(), tsa_url)
        except OSError as exc:
            raise C2paUnavailable(
                f"C2PA signing certificate or key not readable ({exc}); run `synthgate certs dev` "
                "for a development chain or configure c2pa_cert_chain / c2pa_private_key"
            ) from exc

    @property
    def algorithm(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return "ed25519"
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return {256: "es256", 384: "es384", 521: "es512"}[key.curve.key_size]
        return "ps256"


# Native c2pa handles do not survive fork(): every cache below is keyed by the process id, so a
# worker process (``synthgate label --workers``) builds its own.


@lru_cache(maxsize=8)
def _signer(identity: SigningIdentity, pid: int) -> Any:
    c2pa = _c2pa()
    info = c2pa.C2paSignerInfo(
        identity.algorithm.encode(), identity.chain_pem, identity.key_pem, identity.tsa_url
    )
    return c2pa.Signer.from_info(info)


@lru_cache(maxsize=4)
def _sign_context(pid: int) -> Any:
    # Thumbnails cost more than the rest of signing together and duplicate the asset itself.
    return _c2pa().Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})


def mime_for(kind: str) -> str:
    try:
        return MIME_TYPES[kind]
    except KeyError:
        raise UnsupportedMedia(
            f"C2PA manifests are not supported for {kind}; supported: {', '.join(sorted(MIME_TYPES))}"
        ) from None


def sign(
    data: bytes,
    kind: str,
    identity: SigningIdentity,
    *,
    edited: bool = False,
    title: str | None = None,
    aigc: dict[str, str] | None = None,
    generator: str = "synthgate",
) -> bytes:
    """``data`` with an embedded, signed manifest declaring AI generation (or AI editing)."""
    c2pa = _c2pa()
    from synthgate import __version__

    action: dict[str, Any] = (
        {"action": "c2pa.edited", "digitalSourceType": COMPOSITE}
        if edited
        else {"action": "c2pa.created", "digitalSourceType": TRAINED}
    )
    assertions: list[dict[str, Any]] = [{"label": "c2pa.actions", "data": {"actions": [action]}}]
    if aigc:
        assertions.append({"label": AIGC_ASSERTION, "data": {"AIGC": aigc}})
    manifest = {
        "claim_generator_info": [{"name": generator, "version": __version__}],
        "title": title or f"AI-generated {kind}",
        "format": mime_for(kind),
        "assertions": assertions,
    }
    mime = mime_for(kind)
    try:
        builder = c2pa.Builder(json.dumps(manifest), context=_sign_context(os.getpid()))
        if edited:
            builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
        out = io.BytesIO()
        builder.sign(_signer(identity, os.getpid()), mime, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        raise CorruptMedia(f"C2PA signing failed for this {kind}: {exc}", code="c2pa.sign_failed") from exc
    return out.getvalue()


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class C2paReport:
    present: bool
    state: str | None = None
    """``Trusted`` (intact, chained to a configured anchor), ``Valid`` (intact), ``Invalid``."""
    actions: list[dict[str, Any]] = field(default_factory=list)
    signer: str | None = None
    aigc: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"

    @property
    def ai_generated(self) -> bool:
        return any(a.get("digitalSourceType") in (TRAINED, COMPOSITE) for a in self.actions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "state": self.state,
            "trusted": self.trusted,
            "ai_generated": self.ai_generated,
            "actions": self.actions,
            "signer": self.signer,
            "aigc": self.aigc,
            "failures": self.failures,
            "error": self.error,
        }


@lru_cache(maxsize=8)
def _read_context(anchors: bytes | None, pid: int) -> Any:
    settings: dict[str, Any] = {"verify": {"verify_trust": anchors is not None}}
    if anchors:
        settings["trust"] = {"trust_anchors": anchors.decode()}
    return _c2pa().Context.from_dict(settings)


def read(data: bytes, kind: str, trust_anchors: bytes | None = None) -> C2paReport:
    """The active manifest and its validation; ``present=False`` when the file carries none."""
    c2pa = _c2pa()
    if kind not in MIME_TYPES:
        return C2paReport(present=False, error=f"C2PA not supported for {kind}")
    try:
        reader = c2pa.Reader(
            MIME_TYPES[kind], io.BytesIO(data), context=_read_context(trust_anchors, os.getpid())
        )
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in type(exc).__name__ or "not found" in text.lower() or "JumbfNotFound" in text:
            return C2paReport(present=False)
        return C2paReport(present=True, state="Invalid", error=text)
    with reader:
        manifest = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
        state = reader.get_validation_state()
    actions: list[dict[str, Any]] = []
    aigc = None
    for assertion in manifest.get("assertions", []):
        label = str(assertion.get("label", ""))
        if label.startswith("c2pa.actions"):
            actions.extend(assertion.get("data", {}).get("actions", []))
        elif label == AIGC_ASSERTION:
            aigc = assertion.get("data", {}).get("AIGC")
    failures = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    return C2paReport(
        present=True,
        state=state,
        actions=actions,
        signer=(manifest.get("signature_info") or {}).get("common_name"),
        aigc=aigc,
        failures=failures,
    )
