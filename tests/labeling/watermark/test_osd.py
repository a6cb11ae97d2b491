"""Ordered-statistics soft decoding of the BCH payload code: beyond t errors, and random words refused."""

from __future__ import annotations

import numpy as np

from synthgate.labeling.watermark import ecc, osd

T = 8
PAYLOAD = bytes.fromhex("5eed0000c0ffee42")


def test_lm5_generator_spans_the_bch_code() -> None:
    rng = np.random.default_rng(3)
    g = osd.generator(T)
    for _ in range(5):
        payload = rng.bytes(8)
        bits = np.unpackbits(np.frombuffer(payload, np.uint8))
        assert np.array_equal(bits.astype(np.int64) @ g % 2, ecc.encode(payload, T))


def test_lm5_osd_reads_words_with_more_errors_than_bch_corrects() -> None:
    rng = np.random.default_rng(4)
    codeword = ecc.encode(PAYLOAD, T).astype(np.float64) * 2 - 1
    soft = codeword * rng.uniform(0.5, 2.0, codeword.size)
    wrong = rng.choice(codeword.size, 12, replace=False)  # 12 > t errors, on weak bits
    soft[wrong] = -0.2 * soft[wrong]
    assert ecc.decode((soft > 0).astype(np.uint8), T) is None
    payload, distance = osd.decode(soft, T)
    assert payload == PAYLOAD and distance == 12


def test_lm5_osd_random_words_are_far_from_every_codeword() -> None:
    rng = np.random.default_rng(5)
    distances = [osd.decode(rng.normal(size=ecc.codeword_bits(T)), T)[1] for _ in range(40)]
    # The audio codec accepts ≤ 13 bits; a random word lies that close with probability ≤ 1.3 %.
    assert min(distances) > 13
    assert osd.false_decode_probability(13, T) < 0.02
    assert osd.false_decode_probability(8, T) < 1e-7
