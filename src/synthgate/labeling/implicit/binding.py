"""``ReservedCode1``: a signature binding the label to the decoded content.

Format (Annex E characters only): ``sg1.<digest>.<signature>`` in unpadded base64url, where
``digest`` is the first 16 bytes of :func:`content_digest` and the Ed25519 signature covers the
production fields (Label, ContentProducer, ProduceID) and that digest. Propagation fields stay out
of the signature so a platform can add them (LM-6) without breaking it. A reader can then tell:

- ``bound``: the signature verifies and the content digest matches;
- ``content_changed``: the signature verifies but the content is no longer what was labeled;
- ``forged``: the signature does not verify (label edited or made by someone else);
- ``unsigned``: no binding in ``ReservedCode1``.

The digest is over *decoded* content (pixels, samples, text without the label), so rewriting
metadata never changes it, while any edit of the picture or sound does.

Two schemes, told apart by the prefix: ``sg1`` (Ed25519 over a SHA-256 content digest, the
default) and ``sm2`` (SM2 with SM3 over an SM3 content digest, :mod:`.sm2`, for deployments that
must use the national algorithms). A signer or verifier names its scheme in ``scheme``; one without
it is Ed25519. A reader without a verifier for a label's scheme reports ``not_verified``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from io import BytesIO
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature

from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits, decoded_av, decoded_frames
from synthgate.media.sniff import AUDIO_KINDS, IMAGE_KINDS, VIDEO_KINDS

BindingStatus = Literal["bound", "content_changed", "forged", "unsigned", "not_verified"]
PREFIX = "sg1"
SM2_PREFIX = "sm2"
SCHEMES = {PREFIX: "sha256", SM2_PREFIX: "sm3"}
"""Binding prefix -> the hash of the content digest."""
DIGEST_BYTES = 16
_DOMAIN = b"synthgate/aigc-binding/v1\x00"


class Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...


class Verifier(Protocol):
    def verify(self, signature: bytes, data: bytes) -> None: ...


Verifiers = Verifier | Mapping[str, Verifier]
"""One verifier (its ``scheme`` attribute, Ed25519 when absent) or verifiers by scheme."""


def scheme_of(key: object) -> str:
    """The binding prefix a signer or verifier produces or checks (``sg1`` for Ed25519 keys)."""
    return str(getattr(key, "scheme", PREFIX))


def _verifier_for(verifiers: Verifiers, scheme: str) -> Verifier | None:
    if isinstance(verifiers, Mapping):
        return verifiers.get(scheme)
    return verifiers if scheme_of(verifiers) == scheme else None


def _new_hash(algorithm: str) -> Any:
    if algorithm == "sm3":
        from synthgate.labeling.implicit.sm2 import Sm3

        return Sm3()
    return hashlib.sha256()


def text_digest(text: str, algorithm: str = "sha256") -> bytes:
    """The content digest of a plain-text answer (delivered over an API, not in a file)."""
    digest = _new_hash(algorithm)
    digest.update(b"text\x00" + text.encode())
    return bytes(digest.digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def content_digest(data: bytes, limits: MediaLimits = DEFAULT_LIMITS, algorithm: str = "sha256") -> bytes:
    """SHA-256 (or SM3) over the decoded content, independent of any metadata in the container."""
    from synthgate.labeling.implicit.base import codec_for

    kind, codec = codec_for(data)
    # Parsing the container first turns truncation into CorruptMedia even where a decoder
    # would quietly return fewer samples.
    codec.read(data)
    digest = _new_hash(algorithm)
    digest.update(kind.encode() + b"\x00")
    if kind in IMAGE_KINDS:
        _update_frames(digest, decoded_frames(data, limits))
    elif kind in AUDIO_KINDS or kind in VIDEO_KINDS:
        for stream_type, payload in decoded_av(data, limits):
            digest.update(stream_type.encode())
            digest.update(payload)
    elif kind == "markdown":
        from synthgate.labeling.implicit.text import strip_markdown

        digest.update(strip_markdown(data.decode("utf-8")).encode())
    elif kind == "html":
        from synthgate.labeling.implicit.text import strip_html

        digest.update(strip_html(data.decode("utf-8")).encode())
    elif kind == "docx":
        digest.update(_docx_digest(data, limits))
    return bytes(digest.digest())


def _update_frames(digest: Any, frames: Iterable[tuple[str, tuple[int, int], bytes]]) -> None:
    for mode, size, pixels in frames:
        digest.update(f"{mode}:{size[0]}x{size[1]}:".encode())
        digest.update(pixels)


def image_digest(kind: str, frames: Iterable[Any], algorithm: str = "sha256") -> bytes:
    """:func:`content_digest` from Pillow frames already in memory, for a labeler that has just
    encoded them losslessly (PNG, lossless WebP, TIFF, GIF) and need not decode its own output."""
    digest = _new_hash(algorithm)
    digest.update(kind.encode() + b"\x00")
    _update_frames(digest, ((f.mode, f.size, f.tobytes()) for f in frames))
    return bytes(digest.digest())


def _docx_digest(data: bytes, limits: MediaLimits) -> bytes:
    # The document's own parts; the package plumbing our writer touches is left out.
    skip = {"docProps/custom.xml", "[Content_Types].xml", "_rels/.rels"}
    digest = hashlib.sha256()
    limits.check_bytes(data)
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.filename in skip:
                    continue
                if info.file_size > limits.max_bytes:
                    raise CorruptMedia(f"{info.filename} unpacks past the size limit")
                digest.update(info.filename.encode() + b"\x00" + archive.read(info))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CorruptMedia(f"the document cannot be unpacked: {exc}") from exc
    return digest.digest()


def _message(label: AigcLabel, digest: bytes) -> bytes:
    return _DOMAIN + b"\x00".join(
        (label.Label.encode(), label.ContentProducer.encode(), label.ProduceID.encode(), digest)
    )


def bind(
    label: AigcLabel,
    data: bytes,
    signer: Signer,
    *,
    limits: MediaLimits = DEFAULT_LIMITS,
    digest: bytes | None = None,
) -> AigcLabel:
    """``label`` with ``ReservedCode1`` binding it to the decoded content of ``data``.

    ``digest`` skips decoding when the caller already has :func:`content_digest` (or
    :func:`image_digest`, :func:`text_digest`) of exactly this content, in the signer's hash.
    """
    scheme = scheme_of(signer)
    if digest is None:
        digest = content_digest(data, limits, SCHEMES[scheme])
    digest = digest[:DIGEST_BYTES]
    signature = signer.sign(_message(label, digest))
    return replace(label, ReservedCode1=f"{scheme}.{_b64(digest)}.{_b64(signature)}")


def parse_binding(label: AigcLabel) -> tuple[str, bytes, bytes] | None:
    """(scheme, digest, signature) of an ``ReservedCode1`` we wrote, else None."""
    parts = label.ReservedCode1.split(".")
    if len(parts) != 3 or parts[0] not in SCHEMES:
        return None
    try:
        digest, signature = _unb64(parts[1]), _unb64(parts[2])
    except (binascii.Error, ValueError):
        return None
    return (parts[0], digest, signature) if len(digest) == DIGEST_BYTES else None


def digest_matches(
    label: AigcLabel, data: bytes, limits: MediaLimits = DEFAULT_LIMITS, *, digest: bytes | None = None
) -> bool | None:
    """Whether the digest in the binding matches ``data`` (None when there is no binding)."""
    parsed = parse_binding(label)
    if parsed is None:
        return None
    actual = digest if digest is not None else content_digest(data, limits, SCHEMES[parsed[0]])
    return actual[:DIGEST_BYTES] == parsed[1]


def check_binding(
    label: AigcLabel,
    data: bytes,
    verifier: Verifiers,
    *,
    limits: MediaLimits = DEFAULT_LIMITS,
    digest: bytes | None = None,
) -> BindingStatus:
    """The binding status of ``label`` for ``data`` (``digest``: of a text answer, see
    :func:`text_digest`, which has no container to decode)."""
    parsed = parse_binding(label)
    if parsed is None:
        # Something in ReservedCode1 that claims to be ours but does not parse is a forgery.
        claimed = any(label.ReservedCode1.startswith(prefix + ".") for prefix in SCHEMES)
        return "forged" if claimed else "unsigned"
    scheme, bound_digest, signature = parsed
    key = _verifier_for(verifier, scheme)
    if key is None:
        return "not_verified"
    try:
        key.verify(signature, _message(label, bound_digest))
    except InvalidSignature:
        return "forged"
    actual = digest if digest is not None else content_digest(data, limits, SCHEMES[scheme])
    if actual[:DIGEST_BYTES] != bound_digest:
        return "content_changed"
    return "bound"
