"""Known-content hash banks: SHA-256 exact, PDQ within Hamming 31 through the multi-index."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageFilter

from synthgate.gateway.sdk import Gateway
from synthgate.moderation.hashbank import BankEntry, HashBank, PdqIndex, pdq_of_image
from synthgate.moderation.screener import hash_bank_cache
from tests.moderation.conftest import publish_terms


def _random_words(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, size=(n, 4), dtype=np.uint64) * np.uint64(2) + rng.integers(
        0, 2, size=(n, 4), dtype=np.uint64
    )


def _flip(words: np.ndarray, bits: list[int]) -> np.ndarray:
    out = words.copy()
    for b in bits:
        out[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return out


def test_pdq_index_finds_exactly_what_brute_force_finds() -> None:
    rng = np.random.default_rng(5)
    stored = _random_words(rng, 5_000)
    index = PdqIndex(stored)
    for distance in (0, 1, 7, 16, 31, 32, 40):
        for row in rng.choice(len(stored), size=20, replace=False):
            query = _flip(stored[row], rng.choice(256, size=distance, replace=False).tolist())
            brute = np.bitwise_count(stored ^ query).sum(axis=1)
            expected = {(int(i), int(brute[i])) for i in np.flatnonzero(brute <= 31)}
            assert set(index.query(query)) == expected, distance
            if distance <= 31:
                assert (int(row), distance) in expected


def _image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC)


def test_dsp10_banned_image_matches_after_re_encoding_and_others_do_not() -> None:
    banned = _image(1)
    banned_hex, quality = pdq_of_image(np.asarray(banned))
    assert quality > 50
    buffer = io.BytesIO()
    banned.filter(ImageFilter.GaussianBlur(1)).resize((200, 200)).save(buffer, "JPEG", quality=85)
    altered = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    other_hex, _ = pdq_of_image(np.asarray(_image(2)))
    file_bytes = b"exact banned file"
    bank = HashBank(
        [
            BankEntry("p1", "pdq", banned_hex, "A.1.6"),
            BankEntry("s1", "sha256", hashlib.sha256(file_bytes).hexdigest(), "A.1.3"),
        ]
    )
    altered_hex, _ = pdq_of_image(altered)
    [finding] = bank.scan_file(b"some other bytes", altered_hex)
    assert (finding.rule, finding.category, finding.variant) == ("p1", "A.1.6", "pdq")
    assert bank.scan_file(b"some other bytes", other_hex) == []
    assert [f.rule for f in bank.scan_file(file_bytes)] == ["s1"]


def test_dsp10_published_hashes_take_effect_on_the_next_look_up(gateway: Gateway) -> None:
    digest = hashlib.sha256(b"known bad").hexdigest()
    with gateway.db.session() as session:
        assert hash_bank_cache.get(session).scan_file(b"known bad") == []
    publish_terms(gateway, ("sha256", digest, "A.1.3"))
    with gateway.db.session() as session:
        assert [f.category for f in hash_bank_cache.get(session).scan_file(b"known bad")] == ["A.1.3"]
