"""Tiny real models and synthetic benchmark data, built offline.

Tests, the offline demo and the speed benchmark must never touch the network, yet they should run
the exact code paths a real checkpoint and a real Hugging Face dataset would: a genuine
``transformers`` architecture loaded with ``from_pretrained``, a genuine BPE tokenizer, and rows
with the same fields, types and quirks as the published benchmark files. Everything here is
deterministic given a seed so results can be compared across runs and machines.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing transformers costs seconds; only pay it when building a model
    from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD = "<s>", "</s>", "<pad>"

# Sizes mirror the shape of the real splits at toy scale; mmlu dev is fixed at 5 per subject.
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "mmlu": {"test": 40, "dev": 5},
    "arc_easy": {"train": 10, "validation": 10, "test": 30},
    "arc_challenge": {"train": 10, "validation": 10, "test": 30},
    "hellaswag": {"train": 10, "validation": 30},
    "gsm8k": {"train": 10, "test": 12},
}

MMLU_SUBJECTS: dict[str, list[str]] = {
    "abstract_algebra": ["group", "ring", "field", "subgroup", "ideal", "homomorphism", "coset"],
    "college_physics": ["particle", "electron", "wave", "force", "lens", "photon", "momentum"],
    "high_school_biology": ["cell", "enzyme", "protein", "membrane", "gene", "organism", "tissue"],
    "world_religions": ["temple", "ritual", "scripture", "pilgrim", "festival", "monk", "shrine"],
}


def _words(text: str) -> list[str]:
    return text.split()


NOUNS = _words(
    "river teacher garden engine planet market village signal window forest doctor battery "
    "cloud student bridge lantern harbor molecule farmer library mountain circuit painter "
    "kitchen island crystal merchant orbit season valley"
)
ADJECTIVES = _words(
    "small bright ancient quiet heavy careful green rapid hollow gentle distant curious "
    "narrow warm steady fragile"
)
VERBS = _words(
    "moves holds carries changes measures follows builds covers reflects connects protects "
    "explains reaches absorbs divides"
)
ADVERBS = _words("slowly often rarely quickly always carefully together suddenly")
PREPOSITIONS = _words("near under across behind inside beyond around toward")
NAMES = _words("Maria Tom Aisha Kenji Lena Omar Priya Jack Sofia Noah")
LINKS = ["and", "because", "while", "but", "so", "although"]
ACTIVITIES = ["Washing dishes", "Playing guitar", "Skiing", "Making a sandwich", "Rock climbing"]
WIKIHOW_CATEGORIES = ["Home and Garden", "Health", "Finance and Business", "Pets and Animals"]


def _rng(*parts: object) -> random.Random:
    # String seeds are hashed with sha512 by `random`, so this is stable across processes,
    # unlike hash(); each bench/split gets an independent but reproducible stream.
    return random.Random(":".join(str(p) for p in parts))


def _base_verb(verb: str) -> str:
    return verb[:-3] + "y" if verb.endswith("ies") else verb[: -2 if verb.endswith("ches") else -1]


def _noun_phrase(rng: random.Random, nouns: list[str] | None = None) -> str:
    noun = rng.choice(nouns or NOUNS)
    return f"the {rng.choice(ADJECTIVES)} {noun}" if rng.random() < 0.5 else f"the {noun}"


def _predicate(rng: random.Random, nouns: list[str] | None = None) -> str:
    words = [rng.choice(VERBS), _noun_phrase(rng, nouns)]
    if rng.random() < 0.4:
        words.insert(1, rng.choice(ADVERBS))
    if rng.random() < 0.5:
        words += [rng.choice(PREPOSITIONS), _noun_phrase(rng)]
    return " ".join(words)


def _clause(rng: random.Random, nouns: list[str] | None = None) -> str:
    return f"{_noun_phrase(rng, nouns)} {_predicate(rng, nouns)}"


def _sentence(rng: random.Random, nouns: list[str] | None = None, max_clauses: int = 3) -> str:
    parts = [_clause(rng, nouns)]
    for _ in range(rng.randint(0, max_clauses - 1)):
        parts.append(f"{rng.choice(LINKS)} {_clause(rng, nouns)}")
    text = ", ".join(parts)
    return text[0].upper() + text[1:] + "."


def _options(rng: random.Random, k: int, nouns: list[str] | None = None) -> list[str]:
    """Options of pairwise different lengths, so accuracy and acc_norm can disagree."""
    out: list[str] = []
    while len(out) < k:
        opt = rng.choice(
            [
                rng.choice(nouns or NOUNS),
                f"{rng.choice(ADJECTIVES)} {rng.choice(nouns or NOUNS)}",
                _clause(rng, nouns),
                f"{_clause(rng, nouns)} {rng.choice(LINKS)} {_clause(rng, nouns)}",
            ]
        )
        if all(len(opt) != len(o) for o in out):
            out.append(opt)
    return out


def _mmlu_row(rng: random.Random, subject: str) -> dict[str, Any]:
    nouns = MMLU_SUBJECTS[subject] + NOUNS[:5]
    stem = rng.choice(
        [
            f"Which of the following best describes {_noun_phrase(rng, nouns)}?",
            f"{_sentence(rng, nouns, 2)} What {rng.choice(VERBS)} {_noun_phrase(rng, nouns)}?",
            f"Why does {_noun_phrase(rng, nouns)} {_base_verb(rng.choice(VERBS))} in this case?",
        ]
    )
    # The real file has stray trailing whitespace; prompt templates must strip it.
    stem += rng.choice(["", "", "", " ", "\n", "  \n"])
    return {
        "question": stem,
        "subject": subject,
        "choices": _options(rng, 4, nouns),
        "answer": rng.randrange(4),
    }


def _mmlu(split: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = _rng("mmlu", split, seed)
    subjects, k = sorted(MMLU_SUBJECTS), len(MMLU_SUBJECTS)
    counts = [5] * k if split == "dev" else [n // k + (i < n % k) for i in range(k)]
    return [_mmlu_row(rng, s) for s, c in zip(subjects, counts, strict=True) for _ in range(c)]


def _arc(bench: str, split: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = _rng(bench, split, seed)
    prefixes = ["Mercury_", "Mercury_SC_", "MCAS_2004_8_", "NYSEDREGENTS_2012_4_", "ACTAAP_2011_5_"]
    rows = []
    for i in range(n):
        k = rng.choices([3, 4, 5], weights=[1, 12, 1])[0]
        numeric = rng.random() < 0.15
        labels = [str(j + 1) for j in range(k)] if numeric else [chr(65 + j) for j in range(k)]
        max_clauses = 3 if bench == "arc_challenge" else 2
        question = f"{_sentence(rng, max_clauses=max_clauses)} Which {rng.choice(NOUNS)} "
        question += f"{rng.choice(VERBS)} {_noun_phrase(rng)}?"
        rows.append(
            {
                "id": f"{rng.choice(prefixes)}{rng.randrange(10_000, 9_999_999)}_{i}",
                "question": question,
                "choices": {"text": _options(rng, k), "label": labels},
                "answerKey": rng.choice(labels),
            }
        )
    return rows


def _hellaswag(split: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = _rng("hellaswag", split, seed)
    hs_split = "val" if split == "validation" else split
    rows = []
    for i in range(n):
        if rng.random() < 0.5:  # ActivityNet: short captions, ctx_b is a lower-case sentence start
            label = rng.choice(ACTIVITIES)
            source = f"activitynet~v_{rng.getrandbits(40):011x}"
            ctx_a = _sentence(rng, max_clauses=2)
            ctx_b = rng.choice(
                ["", _noun_phrase(rng), f"{_noun_phrase(rng)} {rng.choice(ADVERBS)}"]
            )
            if ctx_b and rng.random() < 0.3:
                ctx_b = ctx_b[0].upper() + ctx_b[1:]
            endings = [f"{_predicate(rng)}." for _ in range(4)]
        else:  # WikiHow: bracketed markup that the harness preprocessing must remove
            label = rng.choice(WIKIHOW_CATEGORIES)
            source = f"wikihow~{rng.randrange(1, 120_000)}"
            verb = _base_verb(rng.choice(VERBS))
            title, step = _sentence(rng, max_clauses=1), _sentence(rng, max_clauses=2)
            ctx_a = f"[header] How to {verb} {_noun_phrase(rng)} [title] {title} [step] {step}"
            ctx_b = ""
            marks = ["", "", " [title]", " [substeps]"]
            endings = [
                f"{_sentence(rng, max_clauses=2)}{mark} {_sentence(rng, max_clauses=1)}"
                if (mark := rng.choice(marks))
                else _sentence(rng, max_clauses=2)
                for _ in range(4)
            ]
        rows.append(
            {
                "ind": 7 * i + rng.randrange(7),
                "activity_label": label,
                "ctx_a": ctx_a,
                "ctx_b": ctx_b,
                "ctx": f"{ctx_a} {ctx_b}" if ctx_b else ctx_a,
                "endings": endings,
                "source_id": source,
                "split": hs_split,
                "split_type": rng.choice(["indomain", "zeroshot"]),
                "label": str(rng.randrange(4)),
            }
        )
    return rows


def _gsm_packs(rng: random.Random) -> tuple[str, list[str], int]:
    name, item = rng.choice(NAMES), rng.choice(NOUNS)
    a, b, c = rng.randint(2, 40), rng.randint(2, 9), rng.randint(3, 12)
    d = rng.randint(1, a + b * c - 1)
    bc, s = b * c, a + b * c
    q = (
        f"{name} has {a} {item}s. {name} buys {b} boxes with {c} {item}s in each box, "
        f"then gives {d} {item}s to a friend. How many {item}s does {name} have now?"
    )
    lines = [
        f"The boxes hold {b}*{c}=<<{b}*{c}={bc}>>{bc} {item}s.",
        f"Before giving any away, {name} has {a}+{bc}=<<{a}+{bc}={s}>>{s} {item}s.",
        f"After the gift, {name} has {s}-{d}=<<{s}-{d}={s - d}>>{s - d} {item}s left.",
    ]
    return q, lines, s - d


def _gsm_money(rng: random.Random) -> tuple[str, list[str], int]:
    name, item = rng.choice(NAMES), rng.choice(NOUNS)
    price, k, fee = rng.randint(120, 2500), rng.randint(2, 8), rng.randint(50, 900)
    cost = price * k
    q = (
        f"A {item} costs ${price:,}. {name} buys {k} of them and pays a delivery fee of "
        f"${fee}. How many dollars does {name} spend in total?"
    )
    lines = [
        f"The {item}s cost {k}*{price}=<<{k}*{price}={cost}>>${cost:,}.",
        f"With the fee, the total is {cost}+{fee}=<<{cost}+{fee}={cost + fee}>>${cost + fee:,}.",
    ]
    return q, lines, cost + fee


def _gsm_temperature(rng: random.Random) -> tuple[str, list[str], int]:
    start, drop, hours = rng.randint(1, 9), rng.randint(2, 5), rng.randint(3, 6)
    total, end = drop * hours, start - drop * hours
    q = (
        f"The temperature in the {rng.choice(NOUNS)} is {start} degrees. It falls by {drop} "
        f"degrees every hour for {hours} hours. What is the temperature at the end?"
    )
    lines = [
        f"It falls {drop}*{hours}=<<{drop}*{hours}={total}>>{total} degrees in all.",
        f"So the final temperature is {start}-{total}=<<{start}-{total}={end}>>{end} degrees.",
    ]
    return q, lines, end


def _gsm8k(split: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = _rng("gsm8k", split, seed)
    makers: list[Callable[[random.Random], tuple[str, list[str], int]]]
    makers = [_gsm_packs, _gsm_money, _gsm_temperature]
    rows = []
    for maker in rng.choices(makers, weights=[6, 3, 1], k=n):
        question, lines, result = maker(rng)
        rows.append({"question": question, "answer": "\n".join([*lines, f"#### {result}"])})
    return rows


_SPLITS = {bench: tuple(splits) for bench, splits in DEFAULT_SIZES.items()}


def synthetic_rows(bench: str, split: str, n: int, seed: int = 0) -> list[dict]:
    """Rows shaped like the real dataset so loaders and templates need no test-only branches.

    For ``mmlu``/``dev`` ``n`` is ignored: the real dev split always has 5 shots per subject.
    """
    if split not in _SPLITS.get(bench, ()):
        raise ValueError(f"unknown benchmark/split {bench!r}/{split!r}; known: {_SPLITS}")
    if bench == "mmlu":
        return _mmlu(split, n, seed)
    if bench.startswith("arc_"):
        return _arc(bench, split, n, seed)
    if bench == "hellaswag":
        return _hellaswag(split, n, seed)
    return _gsm8k(split, n, seed)


def write_synthetic_data(
    root: Path, sizes: dict[str, dict[str, int]] | None = None, seed: int = 0
) -> dict[str, Path]:
    """Materialise JSONL files so file-based dataset loading is exercised end to end."""
    root = Path(root)
    out: dict[str, Path] = {}
    for bench, default in DEFAULT_SIZES.items():
        bench_sizes = {**default, **(sizes or {}).get(bench, {})}
        bench_dir = root / bench
        bench_dir.mkdir(parents=True, exist_ok=True)
        for split, n in bench_sizes.items():
            with (bench_dir / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
                for row in synthetic_rows(bench, split, n, seed):
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        out[bench] = bench_dir
    return out


def _mmlu_prompt(row: dict[str, Any]) -> str:
    subject = row["subject"].replace("_", " ")
    lines = [
        f"The following are multiple choice questions (with answers) about {subject}.",
        "",
        row["question"].strip(),
    ]
    lines += [f"{'ABCD'[i]}. {c}" for i, c in enumerate(row["choices"])]
    lines.append(f"Answer: {'ABCD'[row['answer']]}")
    return "\n".join(lines)


def corpus(seed: int = 0) -> list[str]:
    """Text in the same vocabulary and prompt formats as the benchmarks.

    A BPE trained on this learns merges for the template words and digits gnomon's prompts use,
    so prompts tokenise into realistic, short sequences rather than byte soup.
    """
    rng = _rng("corpus", seed)
    texts: list[str] = []
    for i in range(3):
        s = seed * 7 + i
        for row in synthetic_rows("mmlu", "test", 60, s):
            texts.append(_mmlu_prompt(row))
        for bench in ("arc_easy", "arc_challenge"):
            for row in synthetic_rows(bench, "train", 40, s):
                opts = "\n".join(
                    f"{lab}. {t}"
                    for lab, t in zip(row["choices"]["label"], row["choices"]["text"], strict=True)
                )
                texts.append(f"Question: {row['question']}\n{opts}\nAnswer: {row['answerKey']}")
        for row in synthetic_rows("hellaswag", "train", 60, s):
            texts.append(f"{row['activity_label']}: {row['ctx']} {row['endings'][0]}")
        for row in synthetic_rows("gsm8k", "train", 60, s):
            texts.append(f"Question: {row['question']}\nAnswer: {row['answer']}")
    for _ in range(1500):
        texts.append(_sentence(rng))
    for _ in range(300):
        a, b = rng.randint(0, 999), rng.randint(0, 99)
        texts.append(f"{a} + {b} = {a + b}. {a}*{b}=<<{a}*{b}={a * b}>>{a * b} #### {a - b}")
    texts += [" ".join(str(d) for d in range(i, i + 10)) for i in range(0, 100, 10)]
    texts.append("A. B. C. D. E. 1. 2. 3. 4. 5. ( ) [ ] { } , . ; : ! ? ' \" $ % & - + = / * #")
    texts += [f"{lab}. {lab}: ({lab}) Answer: {lab}" for lab in "ABCDE12345"]
    rng.shuffle(texts)
    return texts


# Qwen2's pre-tokenisation regex (same as transformers' Qwen2Tokenizer uses).
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def build_tokenizer(
    out_dir: Path,
    texts: Iterable[str],
    vocab_size: int = 1024,
    add_bos: bool = True,
    *,
    model_max_length: int = 2048,
    pretokenizer: str = "byte_level",
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE so tokenisation behaves like real GPT-2/Llama/Qwen tokenizers.

    ``add_bos`` picks the Llama convention (BOS prepended by the post-processor) or the Qwen2
    one (no BOS at all); scoring code must handle both, so both must be buildable.

    ``pretokenizer="qwen2"`` reproduces Qwen2's NFC + regex split (single digits) pipeline.
    That is not cosmetic: for a checkpoint whose config says ``model_type: qwen2``,
    transformers 5's ``AutoTokenizer`` ignores ``tokenizer_class`` and rebuilds the pipeline
    with ``Qwen2Tokenizer`` from the vocab and merges, so anything else would load with
    different ids than it was trained with.
    """
    import tokenizers as tk
    from transformers import PreTrainedTokenizerFast

    tok = tk.Tokenizer(tk.models.BPE())
    if pretokenizer == "byte_level":
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    elif pretokenizer == "qwen2":
        tok.normalizer = tk.normalizers.NFC()
        tok.pre_tokenizer = tk.pre_tokenizers.Sequence(
            [
                tk.pre_tokenizers.Split(tk.Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
                tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        raise ValueError(f"unknown pretokenizer {pretokenizer!r}; use 'byte_level' or 'qwen2'")
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    byte_level = tk.processors.ByteLevel(trim_offsets=False)
    if add_bos:
        bos_id = tok.token_to_id(BOS)
        template = tk.processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
        )
        tok.post_processor = tk.processors.Sequence([byte_level, template])
    else:
        tok.post_processor = byte_level

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS if add_bos else None,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=None,  # byte-level BPE can encode anything; Qwen2Tokenizer would add one
        model_max_length=model_max_length,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    _check_reload(out_dir, fast, add_bos)
    return fast


def _check_reload(out_dir: Path, tokenizer: PreTrainedTokenizerFast, add_bos: bool) -> None:
    """Fail at build time, not while scoring, if a reload changes ids or the BOS convention.

    transformers has rewritten tokenizers on load before (``add_bos_token`` handling, and in
    v5 per-``model_type`` class overrides), which would silently shift every log-likelihood.
    """
    from transformers import AutoTokenizer

    probe = "The following are multiple choice questions\nQuestion: 1,234 + 7 = ?\nAnswer: B "
    ids = tokenizer(probe)["input_ids"]
    reloaded = AutoTokenizer.from_pretrained(out_dir)(probe)["input_ids"]
    if reloaded != ids or (ids[0] == tokenizer.convert_tokens_to_ids(BOS)) != add_bos:
        raise RuntimeError(f"tokenizer in {out_dir} does not round-trip: {ids} vs {reloaded}")


_ARCHS: dict[str, tuple[str, str, bool, bool, str]] = {
    # arch: config class, model class, tokenizer adds BOS, tied embeddings, pre-tokenizer
    "llama": ("LlamaConfig", "LlamaForCausalLM", True, False, "byte_level"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", False, True, "qwen2"),
}

# RMSNorm output has unit RMS and embeddings are initialised with std 0.02, so logits start
# with std ~0.02*sqrt(hidden) (0.16 at hidden 64): almost flat. Scaling the final norm weight
# lifts that to several nats without touching the (possibly tied) input embeddings.
_LOGIT_GAIN = 25.0
# With default init the residual branches are tiny, so the last hidden state is essentially the
# current token's own embedding; with tied embeddings that makes the model predict "repeat the
# last token" with ~99% probability. Amplifying the branch outputs makes predictions depend on
# context instead.
_BRANCH_GAIN = 6.0


def build_model(
    out_dir: Path,
    arch: str = "llama",
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    max_positions: int = 2048,
    vocab_size: int = 1024,
    seed: int = 0,
    texts: Iterable[str] | None = None,
) -> Path:
    """A randomly initialised checkpoint of a real architecture, loadable by ``from_pretrained``.

    The logits are made deliberately peaked so greedy decoding and argmax-based multiple-choice
    scoring give stable, tie-free answers that tests can compare across engines. ``vocab_size``
    is the BPE target; the config takes the size the tokenizer actually learned.
    """
    import torch
    import transformers

    if arch not in _ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {sorted(_ARCHS)}")
    config_name, model_name, add_bos, tied, pretokenizer = _ARCHS[arch]
    out_dir = Path(out_dir)
    # A stale config.json from another arch would steer AutoTokenizer in the reload check.
    (out_dir / "config.json").unlink(missing_ok=True)
    tokenizer = build_tokenizer(
        out_dir,
        corpus(seed) if texts is None else texts,
        vocab_size=vocab_size,
        add_bos=add_bos,
        model_max_length=max_positions,
        pretokenizer=pretokenizer,
    )
    config = getattr(transformers, config_name)(
        # The tokenizer may learn fewer merges than asked. Padding the embedding to vocab_size
        # would let a random model emit ids the tokenizer cannot decode, so match it exactly.
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=tied,
    )
    # fork_rng keeps the caller's global RNG state untouched while making init reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(transformers, model_name)(config).to(torch.float32)
    with torch.no_grad():
        model.model.norm.weight.mul_(_LOGIT_GAIN)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(_BRANCH_GAIN)
            layer.mlp.down_proj.weight.mul_(_BRANCH_GAIN)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.generation_config, key, getattr(tokenizer, key))
    # transformers 5 always writes safetensors and no longer has a safe_serialization flag.
    model.save_pretrained(out_dir)

    # config.json now decides which tokenizer class AutoTokenizer picks (see build_tokenizer).
    _check_reload(out_dir, tokenizer, add_bos)
    return out_dir
