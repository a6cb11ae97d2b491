"""KGW green-list text watermark: sampling with the processor, detection from token ids alone."""

from __future__ import annotations

import numpy as np

from synthgate.labeling.watermark.text import (
    GreenList,
    GreenListLogitsProcessor,
    detect_tokens,
    watermark_logits,
)

KEY = b"text-key-0123456789abcdef-service"
VOCAB = 2000


def sample(steps: int, rng: np.random.Generator, processor: GreenListLogitsProcessor | None) -> list[int]:
    """A toy LM with realistic entropy: Zipf-shaped next-token logits, re-ranked every step."""
    base = -1.1 * np.log(np.arange(1, VOCAB + 1))
    tokens = [int(rng.integers(VOCAB))]
    for _ in range(steps):
        logits = base[rng.permutation(VOCAB)] + rng.normal(0, 0.5, VOCAB)
        if processor is not None:
            logits = processor(np.array([tokens]), logits[None, :])[0]
        probs = np.exp(logits - logits.max())
        tokens.append(int(rng.choice(VOCAB, p=probs / probs.sum())))
    return tokens


def test_lm5_text_watermark_detected_at_200_tokens_and_not_without_key() -> None:
    rng = np.random.default_rng(0)
    processor = GreenListLogitsProcessor(KEY, gamma=0.25, delta=2.0)
    marked = [sample(200, rng, processor) for _ in range(10)]
    plain = [sample(200, rng, None) for _ in range(10)]
    # TPR at FPR 1e-5 (one-sided z ≥ 4.265) on 200-token samples.
    assert all(detect_tokens(t, KEY, max_p_value=1e-5).detected for t in marked)
    assert not any(detect_tokens(t, KEY, max_p_value=1e-5).detected for t in plain)
    assert not any(
        detect_tokens(t, b"another service key.............", max_p_value=1e-5).detected for t in marked
    )


def test_lm5_green_lists_are_keyed_and_sized() -> None:
    green = GreenList(KEY, gamma=0.25)
    mask = green.mask(42, 50_000)
    assert abs(mask.mean() - 0.25) < 0.01
    assert green.is_green(42, int(np.flatnonzero(mask)[0]))
    assert not np.array_equal(mask, GreenList(b"other-key-0123456789", 0.25).mask(42, 50_000))
    assert not np.array_equal(mask, green.mask(43, 50_000))
    logits = np.zeros(50_000, np.float32)
    assert np.array_equal(watermark_logits(logits, 42, green, 2.0) > 0, mask)


def test_lm5_repeated_text_does_not_inflate_the_score() -> None:
    green = GreenList(KEY, 0.25)
    pair = next((a, b) for a in range(50) for b in range(50) if green.is_green(a, b))
    looped = [pair[0], pair[1]] * 500
    found = detect_tokens(looped, KEY)
    assert found.details["scored_tokens"] <= 2
    assert not found.detected
