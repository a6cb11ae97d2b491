"""Tests for synthgate.audit.checkpoint: C2SP checkpoints in signed notes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgate.audit.checkpoint import (
    MAX_NOTE_SIGNATURES,
    Checkpoint,
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    key_id,
)
from synthgate.audit.merkle import EMPTY_ROOT, leaf_hash, root_from_leaf_hashes

NAME = "audit.synthgate.example/log"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ROOT = root_from_leaf_hashes([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])
CHECKPOINT = Checkpoint(origin=NAME, size=3, root=ROOT)


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner(NAME, KEY)


@pytest.fixture
def verifier(signer: NoteSigner) -> NoteVerifier:
    return NoteVerifier(NAME, KEY.public_key())


def _expected_key_id(name: str, key: Ed25519PrivateKey) -> bytes:
    pub = key.public_key().public_bytes_raw()
    return hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]


# --------------------------------------------------------------------------------------------------
# Format
# --------------------------------------------------------------------------------------------------


def test_note_layout(signer: NoteSigner) -> None:
    note = signer.sign(CHECKPOINT)
    root_b64 = base64.b64encode(ROOT).decode()
    body = f"{NAME}\n3\n{root_b64}\n"
    assert CHECKPOINT.body() == body
    assert note.startswith(body + "\n— " + NAME + " ")
    assert note.endswith("\n") and note.count("\n") == 5
    sig_line = note[len(body) + 1 : -1]
    raw = base64.b64decode(sig_line.split(" ")[2], validate=True)
    assert len(raw) == 4 + 64
    assert raw[:4] == _expected_key_id(NAME, KEY) == signer.key_id
    KEY.public_key().verify(raw[4:], body.encode())  # signature covers exactly the body


def test_extensions_and_empty_tree_round_trip(signer: NoteSigner, verifier: NoteVerifier) -> None:
    for cp in (
        Checkpoint(NAME, 0, EMPTY_ROOT),
        Checkpoint(NAME, 2**64 - 1, ROOT, ("ext one", "— looks like a signature but is not")),
    ):
        assert verifier.verify(signer.sign(cp)) == cp
        assert Checkpoint.from_body(cp.body()) == cp


def test_verify_accepts_bytes_and_checks_origin(signer: NoteSigner, verifier: NoteVerifier) -> None:
    note = signer.sign(CHECKPOINT)
    assert verifier.verify(note.encode()) == CHECKPOINT
    assert verifier.verify(note, origin=NAME) == CHECKPOINT
    with pytest.raises(CheckpointError, match="origin"):
        verifier.verify(note, origin="other.example/log")


def test_go_sumdb_note_interop() -> None:
    """Verifier key and note published with Go's golang.org/x/mod/sumdb/note package docs."""
    verifier = NoteVerifier.from_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    note = (
        text + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
        "ngotpRZb6KE6RyyBwJnAM=\n"
    )
    assert verifier.verify_text(note) == text
    with pytest.raises(CheckpointError, match="origin, size and root"):  # signed, but not a checkpoint
        verifier.verify(note)
    with pytest.raises(CheckpointError, match="invalid signature"):
        verifier.verify_text(note.replace("problem,", "problem;"))


@settings(max_examples=50, deadline=None)
@given(
    origin=st.text(
        st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
    ),  # no control chars, no surrogates
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1), max_size=3),
)
def test_round_trip_property(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    signer = NoteSigner(NAME, KEY)
    assert Checkpoint.from_body(cp.body()) == cp
    assert signer.verifier().verify(signer.sign(cp)) == cp


# --------------------------------------------------------------------------------------------------
# Tampering and wrong keys
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, changed",
    [
        ("origin", Checkpoint("audit.synthgate.example/lo9", 3, ROOT)),
        ("size", Checkpoint(NAME, 4, ROOT)),
        ("root", Checkpoint(NAME, 3, bytes([ROOT[0] ^ 1]) + ROOT[1:])),
        ("extension", Checkpoint(NAME, 3, ROOT, ("added",))),
    ],
)
def test_tampered_field_fails(
    signer: NoteSigner, verifier: NoteVerifier, field: str, changed: Checkpoint
) -> None:
    note = signer.sign(CHECKPOINT)
    forged = changed.body() + note[len(CHECKPOINT.body()) :]  # keep the original signature line
    assert forged != note
    with pytest.raises(CheckpointError, match="invalid signature"):
        verifier.verify(forged)


def test_tampered_extension_fails(signer: NoteSigner, verifier: NoteVerifier) -> None:
    cp = Checkpoint(NAME, 3, ROOT, ("ext",))
    note = signer.sign(cp)
    with pytest.raises(CheckpointError, match="invalid signature"):
        verifier.verify(note.replace("\next\n", "\nexu\n"))
    with pytest.raises(CheckpointError, match="invalid signature"):
        verifier.verify(note.replace("\next\n", "\n"))  # extension dropped


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_single_character_change_is_rejected(data: st.DataObject) -> None:
    note = NoteSigner(NAME, KEY).sign(CHECKPOINT)
    pos = data.draw(st.integers(min_value=0, max_value=len(note) - 1), label="pos")
    alphabet = "ABab019+/=\n — .x"
    char = data.draw(st.sampled_from(alphabet).filter(lambda c: c != note[pos]), label="char")
    forged = note[:pos] + char + note[pos + 1 :]
    with pytest.raises(CheckpointError):
        NoteVerifier(NAME, KEY.public_key()).verify(forged)


def test_flipped_signature_bit_fails(signer: NoteSigner, verifier: NoteVerifier) -> None:
    note = signer.sign(CHECKPOINT)
    body, sig_line = note.split("\n\n")
    prefix, encoded = sig_line.rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(encoded, validate=True)
    for i in (4, 20, 67):  # signature bytes; the first four are the key ID
        bad = bytearray(raw)
        bad[i] ^= 0x80
        forged = f"{body}\n\n{prefix} {base64.b64encode(bytes(bad)).decode()}\n"
        with pytest.raises(CheckpointError, match="invalid signature"):
            verifier.verify(forged)


def test_wrong_key_is_rejected(signer: NoteSigner) -> None:
    note = signer.sign(CHECKPOINT)
    with pytest.raises(CheckpointError, match="no signature by the trusted key"):
        NoteVerifier(NAME, OTHER_KEY.public_key()).verify(note)
    with pytest.raises(CheckpointError, match="no signature by the trusted key"):
        NoteVerifier("other.example/log", KEY.public_key()).verify(note)


def test_signature_by_other_key_under_same_name_and_id_fails(verifier: NoteVerifier) -> None:
    """A forged line that claims the trusted key ID but was made with another key."""
    forged_signer = NoteSigner(NAME, OTHER_KEY)
    note = forged_signer.sign(CHECKPOINT)
    body, sig_line = note.split("\n\n")
    prefix, encoded = sig_line.rstrip("\n").rsplit(" ", 1)
    raw = verifier.key_id + base64.b64decode(encoded, validate=True)[4:]
    forged = f"{body}\n\n{prefix} {base64.b64encode(raw).decode()}\n"
    with pytest.raises(CheckpointError, match="invalid signature"):
        verifier.verify(forged)


def test_cosigned_note(signer: NoteSigner, verifier: NoteVerifier) -> None:
    """Unknown signature lines are ignored; a bad line from the trusted key rejects the note."""
    witness = NoteSigner("witness.example/w1", OTHER_KEY)
    note = signer.sign(CHECKPOINT)
    witness_line = witness.sign(CHECKPOINT).split("\n\n")[1]
    cosigned = note + witness_line
    assert verifier.verify(cosigned) == CHECKPOINT
    assert witness.verifier().verify(cosigned) == CHECKPOINT
    witness_first = CHECKPOINT.body() + "\n" + witness_line + note.split("\n\n")[1]
    assert verifier.verify(witness_first) == CHECKPOINT
    # Our own key signing a different checkpoint, appended: must reject, not pick the good line.
    other_line = signer.sign(Checkpoint(NAME, 4, ROOT)).split("\n\n")[1]
    with pytest.raises(CheckpointError, match="invalid signature"):
        verifier.verify(note + other_line)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda n: n.replace("\n\n", "\n"), "blank line"),
        (lambda n: n[:-1], "end with a newline"),
        (lambda n: n.replace("— ", "-- "), "em dash"),
        (lambda n: n.replace("— ", "—"), "em dash"),
        (lambda n: n.replace(f"— {NAME} ", f"— {NAME}  "), "must be '— <key name>"),
        (lambda n: n.replace(f"— {NAME} ", f"— {NAME}+x "), "must not contain"),
        (lambda n: n[:-2] + "\n", "base64"),  # signature padding dropped
        (lambda n: n.replace("\n3\n", "\n3\r\n"), "control character"),
        (lambda n: n + "\n", "blank line|no signature lines"),
        (lambda n: n.split("\n\n")[0] + "\n\n", "no signature lines"),
        (lambda n: n + "— x AAAA\n", "too short"),
    ],
)
def test_malformed_notes(
    signer: NoteSigner, verifier: NoteVerifier, mutate: Callable[[str], str], message: str
) -> None:
    note = signer.sign(CHECKPOINT)
    with pytest.raises(CheckpointError, match=message):
        verifier.verify(mutate(note))


def test_note_limits(signer: NoteSigner, verifier: NoteVerifier) -> None:
    note = signer.sign(CHECKPOINT)
    extra = NoteSigner("w.example", OTHER_KEY).sign(CHECKPOINT).split("\n\n")[1]
    with pytest.raises(CheckpointError, match="more than"):
        verifier.verify(note + extra * MAX_NOTE_SIGNATURES)
    assert verifier.verify(note + extra * 15) == CHECKPOINT  # the spec requires accepting 16
    with pytest.raises(CheckpointError, match="larger than"):
        verifier.verify("x" * (1 << 20) + note)
    with pytest.raises(CheckpointError, match="UTF-8"):
        verifier.verify(b"\xff" + note.encode())


# --------------------------------------------------------------------------------------------------
# Checkpoint body parsing and validation
# --------------------------------------------------------------------------------------------------

ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "body, message",
    [
        (f"{NAME}\n3\n{ROOT_B64}", "end with a newline"),
        (f"{NAME}\n3\n", "origin, size and root"),
        (f"{NAME}\n03\n{ROOT_B64}\n", "canonical decimal"),
        (f"{NAME}\n+3\n{ROOT_B64}\n", "canonical decimal"),
        (f"{NAME}\n 3\n{ROOT_B64}\n", "canonical decimal"),
        (f"{NAME}\n٣\n{ROOT_B64}\n", "canonical decimal"),
        (f"{NAME}\n-1\n{ROOT_B64}\n", "canonical decimal"),
        (f"{NAME}\n{2**64}\n{ROOT_B64}\n", "outside"),
        (f"{NAME}\n3\n{base64.b64encode(ROOT[:31]).decode()}\n", "32 bytes"),
        (f"{NAME}\n3\n{ROOT_B64.rstrip('=')}\n", "base64"),
        (f"{NAME}\n3\n{ROOT_B64[:-2]}B=\n", "canonical base64"),
        (f"{NAME}\n3\n{ROOT_B64}\n\next\n", "empty lines"),
        (f"\n3\n{ROOT_B64}\n", "empty lines"),
    ],
)
def test_bad_bodies(body: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_body(body)


def test_checkpoint_validation() -> None:
    with pytest.raises(CheckpointError, match="non-empty"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(CheckpointError, match="newline"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(CheckpointError, match="control"):
        Checkpoint("a\tb", 1, ROOT)
    with pytest.raises(CheckpointError, match="outside"):
        Checkpoint(NAME, -1, ROOT)
    with pytest.raises(CheckpointError, match="int"):
        Checkpoint(NAME, True, ROOT)
    with pytest.raises(CheckpointError, match="32 bytes"):
        Checkpoint(NAME, 1, ROOT[:31])
    with pytest.raises(CheckpointError, match="extension line 0"):
        Checkpoint(NAME, 1, ROOT, ("",))
    with pytest.raises(CheckpointError, match="not a string"):
        Checkpoint(NAME, 1, ROOT, cast(Any, "ext"))
    cp = Checkpoint(NAME, 1, ROOT, cast(Any, ["a", "b"]))
    assert cp.extensions == ("a", "b")
    assert hash(cp) == hash(Checkpoint(NAME, 1, ROOT, ("a", "b")))
    assert isinstance(CheckpointError("x"), ValueError)


# --------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------


def test_vkey_round_trip(signer: NoteSigner) -> None:
    vkey = signer.vkey()
    name, kid, data = vkey.split("+", 2)
    assert "+" in data  # this key's base64 contains "+": regression test for naive splitting
    assert name == NAME
    assert kid == _expected_key_id(NAME, KEY).hex()
    assert base64.b64decode(data) == b"\x01" + KEY.public_key().public_bytes_raw()
    verifier = NoteVerifier.from_vkey(vkey)
    assert verifier.vkey() == vkey == signer.verifier().vkey()
    assert verifier.key_id == key_id(NAME, KEY.public_key())
    assert verifier.verify(signer.sign(CHECKPOINT)) == CHECKPOINT
    assert NoteVerifier.from_vkey(f"{name}+{kid.upper()}+{data}").vkey() == vkey
    assert "PRIVATE" not in repr(signer) and KEY.public_key().public_bytes_raw().hex() not in repr(signer)


def _reencode(data: str, change: Callable[[bytes], bytes]) -> str:
    return base64.b64encode(change(base64.b64decode(data))).decode()


@pytest.mark.parametrize(
    "transform, message",
    [
        (lambda n, k, d: f"{n}+{k}", "form"),
        (lambda n, k, d: f"{n}+x+{k}+{d}", "8 hex digits"),
        (lambda n, k, d: f"+{k}+{d}", "non-empty"),
        (lambda n, k, d: f"a b+{k}+{d}", "spaces"),
        (lambda n, k, d: f"{n}+{k[:-1]}+{d}", "8 hex digits"),
        (lambda n, k, d: f"{n}+{'0' * 8 if k != '0' * 8 else '1' * 8}+{d}", "does not match"),
        (lambda n, k, d: f"other+{k}+{d}", "does not match"),
        (lambda n, k, d: f"{n}+{k}+{_reencode(d, lambda raw: bytes([2]) + raw[1:])}", "0x01"),
        (lambda n, k, d: f"{n}+{k}+{_reencode(d, lambda raw: raw[:-1])}", "0x01"),
        (lambda n, k, d: f"{n}+{k}+{d[:-1]}", "base64"),
    ],
)
def test_bad_vkeys(signer: NoteSigner, transform: Callable[[str, str, str], str], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        NoteVerifier.from_vkey(transform(*signer.vkey().split("+", 2)))


def test_bad_key_names_and_keys() -> None:
    for name in ("", "a+b", "a b", "a\u00a0b", "a\nb"):
        with pytest.raises(CheckpointError):
            NoteSigner(name, KEY)
        with pytest.raises(CheckpointError):
            NoteVerifier(name, KEY.public_key())
    with pytest.raises(CheckpointError, match="32 bytes"):
        NoteVerifier(NAME, b"\x00" * 31)
    with pytest.raises(TypeError):
        NoteSigner(NAME, cast(Any, KEY.public_key()))
    raw = NoteVerifier(NAME, KEY.public_key().public_bytes_raw())
    assert raw.vkey() == NoteSigner(NAME, KEY).vkey()
