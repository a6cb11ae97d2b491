"""KGW green-list text watermark on a real (small) language model: detection power and quality cost.

No pretrained language model ships in an installed package, so this trains one: a GPT-2-shaped
model (``transformers`` ``GPT2LMHeadModel``, 4 layers × 192 wide, 2.6 M parameters) with a byte-level
BPE tokenizer (``tokenizers``, 4,096 tokens) on English prose that ships with every Python install:
CPython's ``pydoc_data/topics.py`` (the language reference topics behind ``help()``) plus the
standard library's longer docstrings. 5 % of the documents are held out. Nothing is downloaded;
the trained model and tokenizer are cached in ``.cache/bench-text-lm/`` so reruns skip training.

Then, for each (gamma, delta) setting, 200-token continuations of held-out 32-token prompts are
sampled (multinomial, temperature 1 unless stated) with and without ``GreenListLogitsProcessor``
through ``model.generate``; the continuation is decoded to text and detected with ``detect_text``
(re-tokenised, the realistic case) and with ``detect_tokens`` on the generated ids. Reported:
per-token entropy of the model's sampling distribution, TPR at FPR ≤ 1e-5 (exact binomial p ≤ 1e-5; also
the normal-tail rule z ≥ 4.265, which is anti-conservative at gamma 0.25),
empirical false positives (unmarked samples × many keys, held-out corpus windows), and perplexity of
marked and unmarked samples under the unwatermarked model.

Run: ``nice -n 5 .venv/bin/python bench/watermark_text.py [--samples 200]`` (prints the markdown
table; ``bench/results/watermark_text.json`` keeps every number; ``--retrain`` retrains the model).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import json
import math
import os
import random
import statistics
import sysconfig
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LogitsProcessorList

from synthgate.labeling.watermark.text import GreenListLogitsProcessor, detect_text, detect_tokens

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench-text-lm"
KEY = b"bench-text-watermark-key-0123456789"
EOS = "<|endoftext|>"
VOCAB = 4096
CONTEXT = 256
PROMPT_TOKENS = 32
NEW_TOKENS = 200
Z_AT_1E5 = 4.2649  # one-sided normal tail: P(Z >= 4.2649) = 1e-5
MAX_P = 1e-5

torch.set_num_threads(1)


# --- corpus -------------------------------------------------------------------------------------------


@functools.cache
def corpus_documents() -> list[str]:
    """pydoc topics + stdlib docstrings (> 200 chars), in a fixed order."""
    from pydoc_data.topics import topics

    docs = [topics[name].strip() for name in sorted(topics)]
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "site-packages", "idlelib", "lib2to3", "pydoc_data"}
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200:
                    docs.append(doc.strip())
    return docs


def split(docs: list[str]) -> tuple[list[str], list[str]]:
    rng = random.Random(1234)
    order = list(range(len(docs)))
    rng.shuffle(order)
    held = set(order[: len(docs) // 20])
    return [d for i, d in enumerate(docs) if i not in held], [d for i, d in enumerate(docs) if i in held]


# --- training -----------------------------------------------------------------------------------------


def train_tokenizer(train: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train, trainer)
    return tok


def eos_id(tok: Tokenizer) -> int:
    eos = tok.token_to_id(EOS)
    assert eos is not None
    return eos


def token_stream(tok: Tokenizer, docs: list[str]) -> torch.Tensor:
    eos = eos_id(tok)
    ids: list[int] = []
    for enc in tok.encode_batch(docs):
        ids.extend(enc.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def make_model() -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=CONTEXT,
        n_embd=192,
        n_layer=4,
        n_head=4,
        resid_pdrop=0.1,
        embd_pdrop=0.1,
        attn_pdrop=0.1,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


@torch.no_grad()
def eval_loss(model: GPT2LMHeadModel, stream: torch.Tensor, seq: int = 128) -> float:
    model.eval()
    n = (len(stream) - 1) // seq
    x = stream[: n * seq].view(n, seq)
    losses = [float(model(input_ids=b, labels=b).loss) for b in x.split(32)]
    return statistics.fmean(losses)


def train(budget_s: float) -> dict[str, Any]:
    docs = corpus_documents()
    train_docs, held_docs = split(docs)
    tok = train_tokenizer(train_docs)
    tr, va = token_stream(tok, train_docs), token_stream(tok, held_docs)
    model = make_model()
    params = sum(p.numel() for p in model.parameters())
    print(
        f"corpus: {len(docs)} docs, {len(tr)} train / {len(va)} held-out tokens; "
        f"model {params / 1e6:.2f} M params"
    )
    peak_lr = 2e-3
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.05, betas=(0.9, 0.95))
    seq, batch = 128, 8
    gen = torch.Generator().manual_seed(0)
    start, cpu0 = time.perf_counter(), time.process_time()
    step, best, best_state = 0, math.inf, None
    warmup = 50
    while time.perf_counter() - start < budget_s:
        frac = min(1.0, (time.perf_counter() - start) / budget_s)
        lr = peak_lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        starts = torch.randint(0, len(tr) - seq - 1, (batch,), generator=gen)
        x = torch.stack([tr[s : s + seq] for s in starts.tolist()])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0:
            val = eval_loss(model, va)
            print(
                f"step {step} {time.perf_counter() - start:.0f}s "
                f"train {float(loss.detach()):.3f} val {val:.3f}",
                flush=True,
            )
            if val < best:
                best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    val = eval_loss(model, va)
    if val < best or best_state is None:
        best = val
    else:
        model.load_state_dict(best_state)
    info = {
        "steps": step,
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "train_tokens": len(tr),
        "held_out_tokens": len(va),
        "params": params,
        "held_out_loss": round(best, 4),
        "held_out_ppl": round(math.exp(best), 2),
        "tokens_seen": step * seq * batch,
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(CACHE / "model")
    tok.save(str(CACHE / "tokenizer.json"))
    (CACHE / "train.json").write_text(json.dumps(info, indent=1))
    return info


def load() -> tuple[GPT2LMHeadModel, Tokenizer, dict[str, Any]]:
    model = GPT2LMHeadModel.from_pretrained(CACHE / "model")
    model.eval()
    tok = Tokenizer.from_file(str(CACHE / "tokenizer.json"))
    return model, tok, json.loads((CACHE / "train.json").read_text())


# --- measurement --------------------------------------------------------------------------------------


def prompts(tok: Tokenizer, n: int, rng: random.Random) -> torch.Tensor:
    held = split(corpus_documents())[1]
    stream = token_stream(tok, held).tolist()
    eos = eos_id(tok)
    out: list[list[int]] = []
    while len(out) < n:
        s = rng.randrange(0, len(stream) - PROMPT_TOKENS)
        window = stream[s : s + PROMPT_TOKENS]
        if eos not in window:
            out.append(window)
    return torch.tensor(out, dtype=torch.long)


@torch.no_grad()
def generate(
    model: GPT2LMHeadModel,
    prompt: torch.Tensor,
    processor: GreenListLogitsProcessor | None,
    temperature: float,
    seed: int,
) -> torch.Tensor:
    torch.manual_seed(seed)
    out = []
    for chunk in prompt.split(50):
        ids = model.generate(
            chunk,
            attention_mask=torch.ones_like(chunk),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            min_new_tokens=NEW_TOKENS,
            max_new_tokens=NEW_TOKENS,
            logits_processor=LogitsProcessorList([processor]) if processor else None,
            pad_token_id=0,
        )
        out.append(ids)
    return torch.cat(out)


@torch.no_grad()
def score(model: GPT2LMHeadModel, seqs: torch.Tensor, temperature: float) -> tuple[float, float]:
    """Perplexity of the continuations under the unwatermarked model (temperature 1) and the mean
    entropy (bits) of the unwatermarked sampling distribution (at ``temperature``) at each step."""
    nll, ent, count = 0.0, 0.0, 0
    for batch in seqs.split(25):
        logits = model(input_ids=batch).logits[:, PROMPT_TOKENS - 1 : -1].float()
        target = batch[:, PROMPT_TOKENS:]
        logp = torch.log_softmax(logits, -1)
        nll -= float(logp.gather(-1, target[..., None]).sum())
        logq = torch.log_softmax(logits / temperature, -1)
        ent -= float((logq.exp() * logq).sum())
        count += target.numel()
    return math.exp(nll / count), ent / count / math.log(2)


def retokenisation(tok: Tokenizer, seqs: torch.Tensor) -> tuple[float, float]:
    """Share of continuations whose decoded text re-encodes to exactly the generated ids, and the
    share of generated tokens found again (aligned) in the re-encoded ids."""
    same, kept, total = 0, 0, 0
    for row in seqs[:, PROMPT_TOKENS:].tolist():
        again = tok.encode(tok.decode(row, skip_special_tokens=False), add_special_tokens=False).ids
        same += again == row
        matcher = difflib.SequenceMatcher(None, row, again, autojunk=False)
        kept += sum(block.size for block in matcher.get_matching_blocks())
        total += len(row)
    return same / len(seqs), kept / total


def processor_cost() -> dict[str, float]:
    """CPU ms per processor call (bias only: minus a plain ``scores + 0``) for a few batch × vocab shapes."""
    out: dict[str, float] = {}
    processor = GreenListLogitsProcessor(KEY)
    for batch, vocab in ((1, 50_257), (8, 50_257), (50, 4_096), (1, 152_064)):
        ids = torch.randint(0, vocab, (batch, 10))
        scores = torch.randn(batch, vocab)
        processor(ids, scores)
        c0 = time.process_time()
        for _ in range(50):
            ids[:, -1] = torch.randint(0, vocab, (batch,))
            processor(ids, scores)
        c1 = time.process_time()
        for _ in range(50):
            scores.add(0)
        c2 = time.process_time()
        out[f"{batch}x{vocab}"] = round(1000 * ((c1 - c0) - (c2 - c1)) / 50, 3)
    return out


def run(samples: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    model, tok, info = load()
    rng = random.Random(7)
    prompt = prompts(tok, samples, rng)
    settings = [
        (0.25, 2.0, 1.0),
        (0.25, 1.0, 1.0),
        (0.5, 2.0, 1.0),
        (0.25, 4.0, 1.0),
        (0.25, 2.0, 0.7),
        (0.5, 2.0, 0.7),
        (0.25, 2.0, 0.5),
        (0.5, 2.0, 0.5),
        (0.25, 4.0, 0.5),
    ]
    rows: list[dict[str, Any]] = []
    plain_cache: dict[float, dict[str, Any]] = {}
    for gamma, delta, temperature in settings:
        if temperature not in plain_cache:
            t0, c0 = time.perf_counter(), time.process_time()
            plain = generate(model, prompt, None, temperature, seed=11)
            gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
            ppl, ent = score(model, plain, temperature)
            texts = [tok.decode(r, skip_special_tokens=False) for r in plain[:, PROMPT_TOKENS:].tolist()]
            plain_cache[temperature] = {
                "seqs": plain,
                "texts": texts,
                "ppl": ppl,
                "entropy": ent,
                "same_ids": retokenisation(tok, plain),
                "gen_s": gen_s,
                "gen_cpu": gen_cpu,
            }
            print(
                f"T={temperature}: unmarked ppl {ppl:.1f}, entropy {ent:.2f} bits/token, {gen_s:.0f}s",
                flush=True,
            )
        base = plain_cache[temperature]
        processor = GreenListLogitsProcessor(KEY, gamma=gamma, delta=delta)
        t0, c0 = time.perf_counter(), time.process_time()
        marked = generate(model, prompt, processor, temperature, seed=11)
        gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
        ppl, _ = score(model, marked, temperature)
        texts = [tok.decode(r, skip_special_tokens=False) for r in marked[:, PROMPT_TOKENS:].tolist()]
        d_text = [detect_text(t, tok, KEY, gamma=gamma, max_p_value=MAX_P) for t in texts]
        d_ids = [
            detect_tokens([int(marked[i, PROMPT_TOKENS - 1]), *r], KEY, gamma=gamma, max_p_value=MAX_P)
            for i, r in enumerate(marked[:, PROMPT_TOKENS:].tolist())
        ]
        d_plain = [detect_text(t, tok, KEY, gamma=gamma, max_p_value=MAX_P) for t in base["texts"]]
        z_text, z_ids, z_plain = ([d.score for d in ds] for ds in (d_text, d_ids, d_plain))
        row = {
            "gamma": gamma,
            "delta": delta,
            "temperature": temperature,
            "entropy_bits": round(base["entropy"], 2),
            "tpr_text": sum(d.detected for d in d_text) / len(d_text),
            "tpr_ids": sum(d.detected for d in d_ids) / len(d_ids),
            "tpr_text_normal_z": sum(z >= Z_AT_1E5 for z in z_text) / len(z_text),
            "z_text_median": statistics.median(z_text),
            "z_text_min": min(z_text),
            "z_ids_median": statistics.median(z_ids),
            "fp_plain": sum(d.detected for d in d_plain),
            "fp_plain_normal_z": sum(z >= Z_AT_1E5 for z in z_plain),
            "z_plain_max": max(z_plain),
            "ppl_plain": round(base["ppl"], 2),
            "ppl_marked": round(ppl, 2),
            "same_ids_marked": retokenisation(tok, marked)[0],
            "tokens_kept_marked": retokenisation(tok, marked)[1],
            "same_ids_plain": base["same_ids"],
            "gen_ms_per_token_marked": 1000 * gen_s / (samples * NEW_TOKENS),
            "gen_ms_per_token_plain": 1000 * base["gen_s"] / (samples * NEW_TOKENS),
            "gen_cpu_ms_per_token_marked": 1000 * gen_cpu / (samples * NEW_TOKENS),
            "gen_cpu_ms_per_token_plain": 1000 * base["gen_cpu"] / (samples * NEW_TOKENS),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    # False positives: unmarked samples under many keys, and the whole corpus (human text, train and
    # held-out) in disjoint 200-token windows under 10 keys.
    keys = [f"fpr-key-{i}".encode() for i in range(100)]
    d_keys = [
        detect_text(t, tok, k, gamma=0.25, max_p_value=MAX_P) for t in plain_cache[1.0]["texts"] for k in keys
    ]
    fp_keys = [d.score for d in d_keys]
    stream = token_stream(tok, corpus_documents()).tolist()
    windows = [stream[i : i + NEW_TOKENS + 1] for i in range(0, len(stream) - NEW_TOKENS - 1, NEW_TOKENS + 1)]
    corpus_keys = [KEY, *keys[:9]]
    d_corpus = {
        g: [detect_tokens(w, k, gamma=g, max_p_value=MAX_P) for w in windows for k in corpus_keys]
        for g in (0.25, 0.5)
    }
    fp_corpus = {g: [d.score for d in ds] for g, ds in d_corpus.items()}
    fpr = {
        "plain_x_keys_trials": len(fp_keys),
        "plain_x_keys_detected": sum(d.detected for d in d_keys),
        "plain_x_keys_over_normal_z": sum(z >= Z_AT_1E5 for z in fp_keys),
        "plain_x_keys_p_below_1e-3": sum(d.p_value <= 1e-3 for d in d_keys) / len(d_keys),
        "plain_x_keys_over_z3.09": sum(z >= 3.0902 for z in fp_keys) / len(fp_keys),
        "plain_x_keys_z_mean": statistics.fmean(fp_keys),
        "plain_x_keys_z_sd": statistics.pstdev(fp_keys),
        "plain_x_keys_z_max": max(fp_keys),
        "corpus_windows": len(windows),
        "corpus_keys": len(corpus_keys),
        "corpus_detected": {g: sum(d.detected for d in ds) for g, ds in d_corpus.items()},
        "corpus_over_normal_z": {g: sum(z >= Z_AT_1E5 for z in zs) for g, zs in fp_corpus.items()},
        "corpus_p_below_1e-3": {
            g: sum(d.p_value <= 1e-3 for d in ds) / len(ds) for g, ds in d_corpus.items()
        },
        "corpus_z_max": {g: max(zs) for g, zs in fp_corpus.items()},
        "corpus_z_mean": {g: statistics.fmean(zs) for g, zs in fp_corpus.items()},
        "corpus_z_sd": {g: statistics.pstdev(zs) for g, zs in fp_corpus.items()},
        "train": info,
        "processor_cpu_ms_per_call": processor_cost(),
    }
    print(json.dumps(fpr), flush=True)
    return rows, fpr


def table(rows: list[dict[str, Any]], fpr: dict[str, Any], samples: int) -> str:
    lines = [
        "| γ | δ | temperature | entropy (bits/token) | TPR, text (re-tokenised) | TPR, generated ids | "
        "TPR, text, normal z ≥ 4.265 | "
        "z text: median / min | z ids: median | unmarked over threshold | ppl unmarked → marked | "
        "tokens kept by decode + re-encode |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['gamma']} | {r['delta']} | {r['temperature']} | {r['entropy_bits']:.2f} | "
            f"{100 * r['tpr_text']:.1f} % | {100 * r['tpr_ids']:.1f} % | "
            f"{100 * r['tpr_text_normal_z']:.1f} % | "
            f"{r['z_text_median']:.1f} / {r['z_text_min']:.1f} | {r['z_ids_median']:.1f} | "
            f"{r['fp_plain']} / {samples} "
            f"(max z {r['z_plain_max']:.1f}) | {r['ppl_plain']:.1f} → {r['ppl_marked']:.1f} | "
            f"{100 * r['tokens_kept_marked']:.1f} % |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--train-budget", type=float, default=600.0, help="training wall-clock seconds")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--train-only", action="store_true")
    args = parser.parse_args()
    if args.retrain or not (CACHE / "train.json").exists():
        print(json.dumps(train(args.train_budget)), flush=True)
    if args.train_only:
        return
    rows, fpr = run(args.samples)
    out = table(rows, fpr, args.samples)
    print(out)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "watermark_text.json").write_text(
        json.dumps({"rows": rows, "fpr": fpr}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
