"""The key store: one master secret in the data directory, purpose keys derived from it.

Personal data is encrypted with AES-256-GCM under a key derived per purpose (HKDF-SHA256), and
found again through a keyed hash (HMAC-SHA256) so that equality search never needs the
plaintext. The audit log's checkpoint key is an Ed25519 key kept beside the master secret.

The master secret comes from ``SYNTHGATE_MASTER_KEY`` (base64, 32 bytes) when set — the way
to run N stateless workers — or from ``<data dir>/keys/master.key``, created on first use with
mode 0600.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from synthgate.config import Settings

_CIPHER_VERSION = b"\x01"


class KeyStoreError(RuntimeError):
    pass


def _write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, whole or not at all; FileExistsError if it exists.

    The key is written under a private temporary name and then hard-linked into place: a link
    fails when the name exists (so the first writer wins) and never shows a half-written file. An
    exclusive create followed by a write did: a second worker starting at the same moment read the
    empty or partial file (`synthgate label --workers`, "Unable to load PEM file").
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class KeyStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def _master(self) -> bytes:
        env = os.environ.get("SYNTHGATE_MASTER_KEY")
        if env:
            try:
                raw = base64.b64decode(env, validate=True)
            except ValueError as exc:
                raise KeyStoreError("SYNTHGATE_MASTER_KEY is not valid base64") from exc
            if len(raw) != 32:
                raise KeyStoreError("SYNTHGATE_MASTER_KEY must decode to 32 bytes")
            return raw
        path = self.settings.key_dir / "master.key"
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # another worker created it first
                _write_secret(path, base64.b64encode(secrets.token_bytes(32)))
        raw = base64.b64decode(path.read_bytes().strip())
        if len(raw) != 32:
            raise KeyStoreError(f"{path} does not hold a 32-byte key")
        return raw

    def derive(self, purpose: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"synthgate/v1", info=purpose.encode()).derive(
            self._master
        )

    @cached_property
    def _pii_aead(self) -> AESGCM:
        return AESGCM(self.derive("pii-encryption"))

    @cached_property
    def _lookup_key(self) -> bytes:
        return self.derive("pii-lookup")

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt personal data; ``context`` (e.g. ``"phone"``) is bound as associated data."""
        nonce = secrets.token_bytes(12)
        sealed = self._pii_aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(_CIPHER_VERSION + nonce + sealed).decode()

    def decrypt(self, token: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode())
        if raw[:1] != _CIPHER_VERSION:
            raise KeyStoreError("unknown ciphertext version")
        return self._pii_aead.decrypt(raw[1:13], raw[13:], context.encode()).decode()

    def lookup_hash(self, value: str, context: str) -> str:
        """Keyed hash for finding encrypted values by equality, never reversible without the key."""
        mac = hmac.new(self._lookup_key, f"{context}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()

    def mac(self, purpose: str, message: str) -> str:
        return hmac.new(self.derive(purpose), message.encode(), hashlib.sha256).hexdigest()

    def webhook_secret(self, service_id: str) -> str:
        """The key a service's webhooks are signed with (HMAC-SHA256), derived, never stored: the
        provider reads it once with ``synthgate service webhook-secret`` and checks every call."""
        return self.derive(f"webhook/{service_id}").hex()

    def watermark_key(self, service_id: str) -> bytes:
        """The secret that keys a service's invisible watermarks: nobody without it can read or forge them."""
        return self.derive(f"watermark/{service_id}")

    def _ed25519_key(self, filename: str) -> Ed25519PrivateKey:
        """An Ed25519 key kept in the key directory, created (mode 0600) on first use."""
        path = self.settings.key_dir / filename
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            with contextlib.suppress(FileExistsError):  # another worker created it first
                _write_secret(path, pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} is not an Ed25519 key")
        return loaded

    @cached_property
    def audit_signing_key(self) -> Ed25519PrivateKey:
        """Signs the audit log's checkpoints."""
        return self._ed25519_key("audit-ed25519.pem")

    @cached_property
    def labeling_signing_key(self) -> Ed25519PrivateKey:
        """Signs ``ReservedCode1`` label bindings (GB-E); separate from the audit key so either can rotate."""
        return self._ed25519_key("labeling-ed25519.pem")


def hash_api_secret(secret: str) -> str:
    """API keys carry 256 bits of randomness, so a fast hash is enough (no password stretching)."""
    return hashlib.sha256(secret.encode()).hexdigest()
