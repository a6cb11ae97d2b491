"""SM2 signatures with SM3 (GB/T 32918, GB/T 32905) for the ``ReservedCode1`` binding.

The TC260 practice guide signs label security data with SM3withSM2; a deployment that must use
the national algorithms picks ``label_binding_algorithm = "sm2"`` and gets the same binding as the
Ed25519 default, with SM3 as the content hash and an SM2 signature (``sm2.<digest>.<signature>``).

Signing and verification come from ``gmalg`` (pure Python, maintained); SM3 from ``cryptography``
(OpenSSL). Signatures use the default distinguishing identifier ``1234567812345678`` (GM/T 0009),
which is what OpenSSL and other SM2 implementations assume, so a third party can verify with
``openssl pkeyutl -verify -rawin -digest sm3``. Keys are derived deterministically from a 32-byte
seed (the key store's purpose key), so every worker signs with the same key without a key file.
"""

from __future__ import annotations

import base64
import hashlib

import gmalg  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

DEFAULT_UID = b"1234567812345678"
SCHEME = "sm2"
# The order of the SM2 recommended curve (GB/T 32918.5).
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_SPKI_PREFIX = bytes.fromhex(
    # SEQUENCE { SEQUENCE { id-ecPublicKey, sm2p256v1 (1.2.156.10197.1.301) }, BIT STRING ... }
    "3059301306072a8648ce3d020106082a811ccf5501822d034200"
)


class Sm3:
    """A hashlib-shaped SM3 object (``update`` / ``digest``) backed by OpenSSL."""

    def __init__(self) -> None:
        self._hash = hashes.Hash(hashes.SM3())

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(bytes(data) if not isinstance(data, bytes) else data)

    def digest(self) -> bytes:
        return self._hash.finalize()


def sm3(data: bytes) -> bytes:
    h = Sm3()
    h.update(data)
    return h.digest()


def _fixed(value: bytes) -> bytes:
    # gmalg returns r and s without leading zero bytes; the wire form is two 32-byte halves.
    return value.rjust(32, b"\x00")


class Sm2PublicKey:
    scheme = SCHEME

    def __init__(self, point: bytes, uid: bytes = DEFAULT_UID) -> None:
        if len(point) != 65 or point[0] != 0x04:
            raise ValueError("an SM2 public key is an uncompressed point of 65 bytes")
        self.point = point
        self.uid = uid
        self._sm2 = gmalg.SM2(pk=point, uid=uid)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`InvalidSignature` unless ``signature`` (r || s) signs ``data``."""
        if len(signature) != 64:
            raise InvalidSignature("an SM2 signature is 64 bytes (r || s)")
        try:
            ok = self._sm2.verify(data, signature[:32], signature[32:])
        except Exception as exc:  # gmalg raises its own errors on malformed input
            raise InvalidSignature(str(exc)) from exc
        if not ok:
            raise InvalidSignature("SM2 signature does not verify")

    def spki_der(self) -> bytes:
        """SubjectPublicKeyInfo (DER) for tools such as OpenSSL."""
        return _SPKI_PREFIX + self.point

    def spki_pem(self) -> bytes:
        body = base64.encodebytes(self.spki_der()).replace(b"\n", b"")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return b"-----BEGIN PUBLIC KEY-----\n" + b"\n".join(lines) + b"\n-----END PUBLIC KEY-----\n"


class Sm2PrivateKey:
    scheme = SCHEME

    def __init__(self, secret: int, uid: bytes = DEFAULT_UID) -> None:
        if not 1 <= secret <= _N - 2:
            raise ValueError("an SM2 private key lies in [1, n-2]")
        self._secret = secret.to_bytes(32, "big")
        self.uid = uid
        probe = gmalg.SM2(uid=uid)
        self._point: bytes = probe.generate_pk(self._secret)
        self._sm2 = gmalg.SM2(sk=self._secret, uid=uid, pk=self._point)

    @classmethod
    def from_seed(cls, seed: bytes, uid: bytes = DEFAULT_UID) -> Sm2PrivateKey:
        """A key derived from a secret seed: SHA-512 reduced into [1, n-2] (bias below 2**-250)."""
        value = int.from_bytes(hashlib.sha512(b"synthgate/sm2-key\x00" + seed).digest(), "big")
        return cls(1 + value % (_N - 2), uid)

    def sign(self, data: bytes) -> bytes:
        r, s = self._sm2.sign(data)
        return _fixed(r) + _fixed(s)

    def public_key(self) -> Sm2PublicKey:
        return Sm2PublicKey(self._point, self.uid)
