"""KGW green-list text watermark: sampling with the processor, detection from token ids alone."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np

from synthgate.labeling.watermark.text import (
    GreenList,
    GreenListLogitsProcessor,
    binomial_sf,
    detect_text,
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


# --- transformers: the processor inside a real generate() call, detection from text --------------------

TINY_CORPUS = [
    "the service writes text with a model and the gateway labels every output it delivers",
    "a watermark hides a keyed signal in the choice of words so that a detector can find it later",
    "green lists are drawn from the previous token and a secret key at every step of sampling",
    "without the key the lists look random and unmarked text scores like chance",
] * 4


def _tiny_model_and_tokenizer() -> tuple[Any, Any]:
    """A randomly initialised 2-layer GPT-2 and a word-level tokenizer trained here (no download)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel

    words = sorted({w for line in TINY_CORPUS for w in line.split()})
    vocab = {w: i for i, w in enumerate(["[UNK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # Train a second vocabulary from text too, to make sure a trained tokenizer also round-trips.
    trained = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    trained.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trained.train_from_iterator(TINY_CORPUS, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    assert trained.get_vocab_size() == tok.get_vocab_size()
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=trained.get_vocab_size(),
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=2,
        initializer_range=0.5,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config).eval(), trained


def _generate(model: Any, processor: Any, seed: int, rows: int = 4, tokens: int = 200) -> Any:
    import torch

    torch.manual_seed(seed)
    prompt = torch.randint(1, model.config.vocab_size, (rows, 4))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-layer model: thread hand-offs would cost more than the arithmetic
    try:
        out = _generate_ids(model, prompt, processor, tokens)
    finally:
        torch.set_num_threads(threads)
    return out[:, prompt.shape[1] :]


def _generate_ids(model: Any, prompt: Any, processor: Any, tokens: int) -> Any:
    import torch
    from transformers import LogitsProcessorList

    with torch.no_grad():
        return model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=True,
            top_k=0,
            min_new_tokens=tokens,
            max_new_tokens=tokens,
            logits_processor=LogitsProcessorList([processor]) if processor is not None else None,
            pad_token_id=0,
        )


def test_lm5_processor_in_transformers_generate_is_detected_from_text() -> None:
    from transformers import LogitsProcessor, PreTrainedTokenizerFast

    model, tok = _tiny_model_and_tokenizer()
    processor = GreenListLogitsProcessor(KEY, gamma=0.25, delta=2.0)
    assert isinstance(processor, LogitsProcessor)
    marked = _generate(model, processor, seed=1)
    plain = _generate(model, None, seed=2)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok)
    for row in marked.tolist():
        text = tok.decode(row, skip_special_tokens=False)
        found = detect_text(text, tok, KEY, max_p_value=1e-5)
        assert found.detected, found
        assert found.p_value <= 1e-5 and found.score > 4.265
        # A transformers tokenizer (encode -> list of ids) reads the same ids.
        assert detect_text(text, hf_tok, KEY, max_p_value=1e-5).score == found.score
        assert not detect_text(text, tok, b"another service key.............", max_p_value=1e-5).detected
        assert detect_text(text, tok, KEY, gamma=0.25).score == detect_tokens(row, KEY).score
    for row in plain.tolist():
        found = detect_text(tok.decode(row, skip_special_tokens=False), tok, KEY, max_p_value=1e-5)
        assert not found.detected
        assert found.score < 4.265


def test_lm5_numpy_function_and_torch_processor_give_identical_biases() -> None:
    import torch

    rng = np.random.default_rng(3)
    vocab = 50_257
    previous = np.array([0, 1, 50_256, 123_456_789, 2**40 + 7], dtype=np.int64)
    for gamma in (0.1, 0.25, 0.3, 0.5, 0.9):
        processor = GreenListLogitsProcessor(KEY, gamma=gamma, delta=1.5)
        scores = rng.normal(size=(len(previous), vocab)).astype(np.float32)
        input_ids = np.stack([rng.integers(0, vocab, len(previous)), previous], axis=1)
        out_torch = processor(torch.from_numpy(input_ids), torch.from_numpy(scores))
        assert isinstance(out_torch, torch.Tensor) and out_torch.dtype == torch.float32
        bias_torch = (out_torch - torch.from_numpy(scores)).numpy()
        out_numpy = watermark_logits(scores, previous.tolist(), GreenList(KEY, gamma), 1.5)
        bias_numpy = out_numpy - scores
        assert np.array_equal(bias_torch != 0, bias_numpy != 0)
        assert np.allclose(bias_torch, bias_numpy, atol=1e-6)
        for i, p in enumerate(previous):
            assert np.array_equal(bias_numpy[i] != 0, GreenList(KEY, gamma).mask(int(p), vocab))
        assert abs((bias_numpy != 0).mean() - gamma) < 0.01
        # The numpy path of the processor (any runtime) agrees as well.
        assert np.array_equal(processor(input_ids, scores) - scores != 0, bias_numpy != 0)


def test_lm5_text_module_imports_without_transformers() -> None:
    code = (
        "import sys; import synthgate.labeling.watermark.text as t; "
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules; "
        "sys.modules['transformers'] = None; "  # transformers not importable: the processor still works
        "import numpy as np; p = t.GreenListLogitsProcessor(b'k' * 16); "
        "print(p(np.array([[1, 2]]), np.zeros((1, 1000), np.float32)).sum())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert 400 < float(done.stdout) < 600  # delta 2 on about gamma * 1000 = 250 green tokens


def test_lm5_p_value_is_the_exact_binomial_tail() -> None:
    from scipy.stats import binom

    for n in (1, 7, 50, 199, 1000, 20_000):
        for gamma in (0.1, 0.25, 0.5, 0.9):
            sd = (n * gamma * (1 - gamma)) ** 0.5
            for hits in {0, 1, n // 4, n // 2, int(n * gamma + 4.265 * sd), n - 1, n, n + 1}:
                expected = binom.sf(hits - 1, n, gamma)
                assert abs(binomial_sf(hits, n, gamma) - expected) <= 1e-9 * expected + 1e-300
    # At gamma 0.25 the normal tail would be anti-conservative: z >= 4.265 is not p <= 1e-5.
    hits = 76  # of 199 scored tokens: z = 4.33
    assert (hits - 0.25 * 199) / (199 * 0.25 * 0.75) ** 0.5 > 4.265
    assert binomial_sf(hits, 199, 0.25) > 2e-5
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, VOCAB, 201).tolist()
    found = detect_tokens(tokens, KEY, max_p_value=1e-5)
    scored, green = found.details["scored_tokens"], found.details["green_tokens"]
    assert found.p_value == binomial_sf(green, scored, 0.25)
