"""Signed tree heads as C2SP checkpoints (c2sp.org/tlog-checkpoint) in signed notes (c2sp.org/signed-note).

A checkpoint body is::

    <origin>\\n<tree size in decimal>\\n<base64 root hash>\\n[<extension line>\\n ...]

and the signed note appends a blank line and one signature line per signer::

    — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature over the body)>\\n

Using the standard format (rather than a home-grown JSON blob) means checkpoints can be checked by
existing transparency tooling and witnessed by third parties. Only Ed25519 (signature type 0x01) is
implemented; signatures of other types or from unknown keys are ignored, as the spec requires, so
a note may carry extra cosignatures.

Parsing is deliberately strict (canonical base64, no leading zeros, no control characters): the
text is security-relevant and two spellings of the same checkpoint would only invite confusion.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "MAX_NOTE_SIGNATURES",
    "MAX_NOTE_SIZE",
    "Checkpoint",
    "CheckpointError",
    "NoteSigner",
    "NoteVerifier",
    "key_id",
]

HASH_SIZE = 32
"""Root hashes are SHA-256 (RFC 6962 tree)."""

MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes are uint64 in every deployed implementation; refusing more keeps parsing bounded."""

MAX_NOTE_SIGNATURES = 100
"""Signature lines accepted per note. The spec asks verifiers to cap this and accept at least 16."""

MAX_NOTE_SIZE = 1 << 20
"""Largest note text (in UTF-8 bytes) ``verify`` will look at; checkpoints are a few hundred bytes."""

ALG_ED25519 = 0x01
"""Signed-note signature type identifier for Ed25519."""

_SIG_PREFIX = "— "  # U+2014 EM DASH, U+0020 SPACE
_CONTROL_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f]")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")


class CheckpointError(ValueError):
    """A checkpoint or signed note is malformed, or its signature does not verify."""


# --------------------------------------------------------------------------------------------------
# Small validators shared by the checkpoint body and the note envelope
# --------------------------------------------------------------------------------------------------


def _check_text(value: str, what: str) -> None:
    """Reject what a signed note may never contain: control characters and non-UTF-8-encodable text.

    Lone surrogates are possible in a Python ``str`` but cannot be encoded, so they would only fail
    later, at signing time, with a less helpful error.
    """
    if _CONTROL_CHARS.search(value):
        raise CheckpointError(f"{what} contains an ASCII control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CheckpointError(f"{what} is not valid UTF-8 text") from exc


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise CheckpointError("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name):
        raise CheckpointError(f"key name {name!r} must not contain spaces or '+'")
    _check_text(name, "key name")


def _b64decode_strict(value: str, what: str) -> bytes:
    """Decode standard, padded base64 and insist on the canonical spelling.

    ``b64decode(validate=True)`` rejects foreign characters but still accepts non-zero padding
    bits, so the decoded value is re-encoded and compared.
    """
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the 4-byte signed-note key ID of an Ed25519 key.

    ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``: binding the name and the signature type
    means the same key under another name or algorithm gets another ID.
    """
    _check_key_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key.public_bytes_raw()
    return hashlib.sha256(material).digest()[:4]


# --------------------------------------------------------------------------------------------------
# Checkpoint body
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: which log (``origin``), how many leaves (``size``) and their Merkle ``root``.

    ``extensions`` are optional extra body lines, opaque to this module. The spec discourages them
    because monitors cannot audit them; they are supported so third-party checkpoints still parse.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointError("checkpoint origin must be a non-empty string")
        _check_line(self.origin, "checkpoint origin")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise CheckpointError(f"checkpoint size must be an int, got {type(self.size).__name__}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {self.size} is outside 0..2**64-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes")
        if isinstance(self.extensions, str):
            raise CheckpointError("checkpoint extensions must be a sequence of lines, not a string")
        # Accept any sequence of lines but store a tuple so the dataclass stays hashable.
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for i, line in enumerate(self.extensions):
            if not isinstance(line, str) or not line:
                raise CheckpointError(f"checkpoint extension line {i} must be a non-empty string")
            _check_line(line, f"checkpoint extension line {i}")

    def body(self) -> str:
        """Return the note text that gets signed (ends with a newline)."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions))

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (the note text, without the blank line and signatures).

        This does not check any signature: use :meth:`NoteVerifier.verify` on untrusted input.
        """
        if not isinstance(text, str):
            raise CheckpointError("checkpoint body must be a string")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(
                f"checkpoint body needs origin, size and root lines, got {len(lines)} line(s)"
            )
        origin, size_text, root_text, *extensions = lines
        if any(not line for line in lines):
            raise CheckpointError("checkpoint body must not contain empty lines")
        # int() alone would accept '+5', ' 5', '0005', '5_000' and non-ASCII digits.
        if not _TREE_SIZE.fullmatch(size_text):
            raise CheckpointError(f"checkpoint tree size {size_text!r} is not a canonical decimal number")
        size = int(size_text)
        root = _b64decode_strict(root_text, "checkpoint root hash")
        if len(root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(root)}")
        return cls(origin=origin, size=size, root=root, extensions=tuple(extensions))


def _check_line(value: str, what: str) -> None:
    if "\n" in value:
        raise CheckpointError(f"{what} must not contain a newline")
    _check_text(value, what)


# --------------------------------------------------------------------------------------------------
# Signed note envelope
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


def _split_note(note: str | bytes) -> tuple[str, list[_NoteSignature]]:
    """Split a signed note into its text and syntactically valid signature lines.

    The text ends at the *last* blank line (the note text itself may contain blank lines). Any
    malformed signature line makes the whole note malformed, as in the reference implementation:
    silently skipping it would let garbage ride along with a valid note.
    """
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_SIZE:
            raise CheckpointError(f"signed note is larger than {MAX_NOTE_SIZE} bytes")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("signed note is not valid UTF-8") from exc
    if not isinstance(note, str):
        raise CheckpointError("signed note must be str or bytes")
    if len(note) > MAX_NOTE_SIZE:  # chars <= bytes, so this is a cheap pre-check before encoding
        raise CheckpointError(f"signed note is larger than {MAX_NOTE_SIZE} bytes")
    _check_text(note, "signed note")
    if len(note.encode("utf-8")) > MAX_NOTE_SIZE:
        raise CheckpointError(f"signed note is larger than {MAX_NOTE_SIZE} bytes")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("signed note has no blank line separating the text from the signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    if not sig_block:
        raise CheckpointError("signed note has no signature lines")
    if not sig_block.endswith("\n"):
        raise CheckpointError("signed note must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise CheckpointError(f"signed note has more than {MAX_NOTE_SIGNATURES} signatures")
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"signature line {number} does not start with an em dash and a space")
        fields = line[len(_SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise CheckpointError(f"signature line {number} must be '— <key name> <base64 signature>'")
        name, encoded = fields
        try:
            _check_key_name(name)
        except CheckpointError as exc:
            raise CheckpointError(f"signature line {number}: {exc}") from None
        raw = _b64decode_strict(encoded, f"signature line {number}")
        if len(raw) < 5:
            raise CheckpointError(f"signature line {number} is too short to hold a key ID and a signature")
        signatures.append(_NoteSignature(name=name, key_id=raw[:4], signature=raw[4:]))
    return text, signatures


def _encode_vkey(name: str, kid: bytes, public_key: Ed25519PublicKey) -> str:
    key_data = base64.b64encode(bytes([ALG_ED25519]) + public_key.public_bytes_raw()).decode("ascii")
    return f"{name}+{kid.hex()}+{key_data}"


class NoteSigner:
    """Signs checkpoints as signed notes with an Ed25519 key known to verifiers under ``name``.

    The key name SHOULD match the checkpoint origin (tlog-checkpoint); that is left to the caller so
    a witness or a rotated key can sign under its own name.
    """

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("private_key must be an Ed25519PrivateKey")
        self._name = name
        self._private_key = private_key
        self._public_key = private_key.public_key()
        self._key_id = key_id(name, self._public_key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes each signature."""
        return self._key_id

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public_key

    def sign(self, checkpoint: Checkpoint) -> str:
        """Return the full signed note: checkpoint body, blank line, one signature line."""
        text = checkpoint.body()
        signature = self._private_key.sign(text.encode("utf-8"))
        encoded = base64.b64encode(self._key_id + signature).decode("ascii")
        return f"{text}\n{_SIG_PREFIX}{self._name} {encoded}\n"

    def vkey(self) -> str:
        """Return the verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        return _encode_vkey(self._name, self._key_id, self._public_key)

    def verifier(self) -> NoteVerifier:
        """Return the matching :class:`NoteVerifier`."""
        return NoteVerifier(self._name, self._public_key)

    def __repr__(self) -> str:
        # Never include key material.
        return f"NoteSigner({self._name!r}, key_id={self._key_id.hex()})"


class NoteVerifier:
    """Verifies signed-note checkpoints against one trusted Ed25519 key identified by ``name``."""

    def __init__(self, name: str, public_key: Ed25519PublicKey | bytes) -> None:
        _check_key_name(name)
        if isinstance(public_key, bytes):
            if len(public_key) != 32:
                raise CheckpointError(f"Ed25519 public key must be 32 bytes, got {len(public_key)}")
            public_key = Ed25519PublicKey.from_public_bytes(public_key)
        if not isinstance(public_key, Ed25519PublicKey):
            raise TypeError("public_key must be an Ed25519PublicKey or 32 raw bytes")
        self._name = name
        self._public_key = public_key
        self._key_id = key_id(name, public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key ``<name>+<hex key ID>+<base64(0x01 || 32-byte public key)>``.

        The embedded key ID must match the one computed from the name and key: a mismatch means the
        string was edited or mis-assembled, and accepting it would make every note fail later with
        a confusing "unknown key" error.
        """
        if not isinstance(vkey, str):
            raise CheckpointError("verifier key must be a string")
        # Split twice only: the name and hex ID cannot contain '+', but base64 key data can.
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("verifier key must have the form <name>+<hex key ID>+<base64 key>")
        name, kid_hex, key_b64 = parts
        _check_key_name(name)
        if not _KEY_ID_HEX.fullmatch(kid_hex):
            raise CheckpointError(f"verifier key ID {kid_hex!r} must be 8 hex digits")
        key_data = _b64decode_strict(key_b64, "verifier key data")
        if len(key_data) != 33 or key_data[0] != ALG_ED25519:
            raise CheckpointError("verifier key data must be 0x01 followed by a 32-byte Ed25519 public key")
        verifier = cls(name, key_data[1:])
        if verifier.key_id != bytes.fromhex(kid_hex):
            raise CheckpointError(
                f"verifier key ID {kid_hex} does not match the key (expected {verifier.key_id.hex()})"
            )
        return verifier

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public_key

    def vkey(self) -> str:
        """Return this verifier's key string (same format as :meth:`NoteSigner.vkey`)."""
        return _encode_vkey(self._name, self._key_id, self._public_key)

    def verify_text(self, note: str | bytes) -> str:
        """Check the note's signature by this key and return the signed note text (any content).

        Follows signed-note: lines from other keys (other name *or* other key ID) are ignored, so
        cosigned notes verify; a line from this key that fails to verify rejects the whole note;
        a note with no line from this key is rejected.

        Raises :class:`CheckpointError` for a malformed note or a bad or missing signature.
        """
        text, signatures = _split_note(note)
        message = text.encode("utf-8")
        verified = False
        for sig in signatures:
            if sig.name != self._name or sig.key_id != self._key_id:
                continue
            try:
                self._public_key.verify(sig.signature, message)
            except InvalidSignature:
                raise CheckpointError(f"invalid signature by key {self._name}+{self._key_id.hex()}") from None
            verified = True
        if not verified:
            seen = ", ".join(sorted({f"{s.name}+{s.key_id.hex()}" for s in signatures}))
            raise CheckpointError(
                f"signed note has no signature by the trusted key {self._name}+{self._key_id.hex()} "
                f"(signed by: {seen})"
            )
        return text

    def verify(self, note: str | bytes, *, origin: str | None = None) -> Checkpoint:
        """Check the note's signature by this key and return the checkpoint it signs.

        The body is only parsed after the signature has been checked (:meth:`verify_text`), because
        unsigned text must not be interpreted. If ``origin`` is given, the checkpoint must be for
        that log; that stops a checkpoint for one log being replayed as another's when both share a
        signing key.

        Raises :class:`CheckpointError` for a malformed note or checkpoint, a bad or missing
        signature, and an unexpected origin.
        """
        checkpoint = Checkpoint.from_body(self.verify_text(note))
        if origin is not None and checkpoint.origin != origin:
            raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}")
        return checkpoint

    def __repr__(self) -> str:
        return f"NoteVerifier({self.vkey()!r})"
