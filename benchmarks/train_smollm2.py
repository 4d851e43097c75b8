"""The training recipe proven on a real model on CPU: SFT and GRPO of SmolLM2-135M-Instruct as a ReasonRank reranker.

    .venv/bin/python benchmarks/train_smollm2.py [--quick] [--json PATH] [--out DIR] [--seed 0]

Everything goes through the project's own code paths, from scratch, offline:

1. **Data** — the ``pydocs`` task (CPython's own docstrings; judgments derived mechanically, split by module, see
   ``tasks/pydocs.py``): BM25 top-10 windows of ``pydocs/train`` labelled by the **judgments teacher**
   (``harness train synthesize --teacher judgments``: ranking and relevant ids from the qrels, a templated
   rationale — a format and ranking teacher, not a reasoning teacher), then the self-consistency filter
   (``harness train filter``, NDCG@10 ≥ 0.4), then ``harness train convert`` to SFT and GRPO rows with the
   inference prompt of the ``reasonrank`` reranker (passages cut to 64 tokens).
2. **SFT** of the embedded SmolLM2-135M-Instruct (``harness models prepare smollm2-135m``) with
   ``training.sft.train_sft`` (trl ``SFTTrainer``, full fine-tune, loss on the answer only).
3. **GRPO** from the SFT checkpoint with ``training.grpo.train_grpo`` (trl ``GRPOTrainer``) and the multi-view reward.
4. **Evaluation** on held-out ``pydocs/test`` queries (modules never seen in training) through ``harness run
   --reranker reasonrank --backend hf``: the first stage alone, the base model, the SFT and the GRPO checkpoints —
   nDCG@10, parse-failure rate, fallbacks, s/query — and the mean multi-view reward of each model's answers on the
   same held-out windows (the reward GRPO optimises, computed from the run's saved traces).

Writes under ``--out`` (default ``train-smollm2-out/``, git-ignored): data, checkpoints, records, traces,
``training.png`` (SFT loss and GRPO reward per step) and ``table.json``; prints the table. ``--quick`` runs the same
path with a few steps and queries (a smoke: its numbers are not the result).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FULL = {"sft_steps": 24, "grpo_steps": 16, "eval_queries": 60, "sft_batch": 2, "grpo_generations": 4}
QUICK = {"sft_steps": 4, "grpo_steps": 2, "eval_queries": 8, "sft_batch": 2, "grpo_generations": 2}
WINDOW = 10
PASSAGE_TOKENS = 64
REASONING_BUDGET = 96  # ReasonRank's max_tokens = budget + 100: room for the short rationale and 10 identifiers


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_data(out: Path, model: Path, limit: int | None, eval_queries: int,
               shuffle_seed: int | None = None) -> dict[str, Path]:
    from training.data import PromptBuilder, grpo_rows, load_ranking_examples, sft_rows, write_jsonl
    from training.filter import filter_dir
    from training.synthesize import JUDGMENTS_TEACHER, SynthesisSpec, synthesize

    data = out / "data"
    common = dict(teacher=JUDGMENTS_TEACHER, base_url=None, top_k=WINDOW, window_size=WINDOW, tokenizer=str(model),
                  passage_length=PASSAGE_TOKENS)
    # --shuffle-windows: training windows in a seeded random order (held-out windows keep the first-stage order);
    # see training/README.md for what it did to a 135M student
    synthesize(SynthesisSpec(task="pydocs/train", out_dir=str(data / "train-labelled"), limit=limit,
                             shuffle_seed=shuffle_seed, **common))
    report = filter_dir(data / "train-labelled", data / "train-filtered")
    _say(f"self-consistency filter: kept {report.kept} of {report.total} training windows")
    from harness.models import load_tokenizer

    builder = PromptBuilder(load_tokenizer(str(model)), PASSAGE_TOKENS)
    examples = load_ranking_examples(data / "train-filtered")
    paths = {"sft": write_jsonl(data / "sft.jsonl", sft_rows(examples, builder)),
             "grpo": write_jsonl(data / "grpo.jsonl", grpo_rows(examples, builder)),
             "kept": report.kept, "total": report.total}
    # the held-out windows, labelled the same way: the reference of the held-out reward (never trained on)
    synthesize(SynthesisSpec(task="pydocs/test", out_dir=str(data / "heldout-labelled"), limit=eval_queries, **common))
    paths["heldout"] = data / "heldout-labelled"
    return paths


def train(out: Path, model: Path, data: dict, sizes: dict, seed: int) -> tuple[Path, Path, list, list]:
    from training.grpo import train_grpo
    from training.sft import TrainConfig, train_sft

    common = {"report_to": "none", "logging_steps": 1, "save_strategy": "no", "disable_tqdm": True, "seed": seed}
    sft = TrainConfig(model=str(model), data=str(data["sft"]), output_dir=str(out / "checkpoints" / "sft"),
                      passage_length=PASSAGE_TOKENS, path="benchmarks/train_smollm2.py (sft)", trainer={
                          **common, "max_steps": sizes["sft_steps"], "per_device_train_batch_size": sizes["sft_batch"],
                          "learning_rate": 1e-4, "lr_scheduler_type": "cosine", "max_length": 1536})
    start = time.perf_counter()
    sft_dir = train_sft(sft)
    _say(f"SFT: {sizes['sft_steps']} steps in {time.perf_counter() - start:.0f} s → {sft_dir}")
    n = sizes["grpo_generations"]
    grpo = TrainConfig(model=str(sft_dir), data=str(data["grpo"]), output_dir=str(out / "checkpoints" / "grpo"),
                       passage_length=PASSAGE_TOKENS, max_prompt_length=1536,
                       path="benchmarks/train_smollm2.py (grpo)", trainer={
                           **common, "max_steps": sizes["grpo_steps"], "per_device_train_batch_size": n,
                           "num_generations": n, "max_completion_length": REASONING_BUDGET + 100,
                           "learning_rate": 2e-5, "beta": 0.0, "temperature": 1.0, "shuffle_dataset": True})
    start = time.perf_counter()
    grpo_dir = train_grpo(grpo)
    _say(f"GRPO: {sizes['grpo_steps']} steps in {time.perf_counter() - start:.0f} s → {grpo_dir}")
    return (sft_dir, grpo_dir, *_curves(sft_dir, grpo_dir))


def _curves(sft_dir: Path, grpo_dir: Path) -> tuple[list, list]:
    """(step, SFT loss) and (step, GRPO mean reward) as the trainers logged them (harness_training.json)."""
    def history(directory: Path) -> list[dict]:
        return json.loads((directory / "harness_training.json").read_text())["log_history"]

    return ([(e["step"], e["loss"]) for e in history(sft_dir) if "loss" in e],
            [(e["step"], e["reward"]) for e in history(grpo_dir) if "reward" in e])


def _heldout_reference(directory: Path) -> dict[str, dict]:
    from training.data import load_ranking_examples, ranking_string

    examples = load_ranking_examples(directory)
    return {row["qid"]: {"ground_truth": ranking_string(row["initial_list"], row["final_list"]),
                         "initial_list": row["initial_list"], "relevant_docids": row["relevant_docids"]}
            for row in examples.rows}


_LABEL = re.compile(r"^query (.+), window \d+-\d+$")


def mean_reward(traces: Path, reference: dict[str, dict]) -> float | None:
    from training.rewards import multi_view_reward

    scores = []
    for line in traces.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        match = _LABEL.match(record.get("label") or "")
        if not match or match.group(1) not in reference:
            continue
        ref = reference[match.group(1)]
        scores += multi_view_reward(completions=[record["response"]], ground_truth=ref["ground_truth"],
                                    initial_list=[ref["initial_list"]], relevant_docids=[ref["relevant_docids"]])
    return sum(scores) / len(scores) if scores else None


def evaluate(out: Path, label: str, model: Path | None, eval_queries: int, reference: dict) -> dict:
    from harness.run_options import build_specs
    from harness.runner import run_experiment

    values = {"task": "pydocs/test", "limit": eval_queries, "top_k": WINDOW, "results_dir": str(out / "records"),
              "quiet": True, "no_cache": True}
    traces = out / "traces" / f"{label}.jsonl"
    if model is not None:
        traces.parent.mkdir(parents=True, exist_ok=True)
        traces.unlink(missing_ok=True)
        values.update(reranker="reasonrank", model=str(model), backend="hf", device="cpu", window_size=WINDOW,
                      step=WINDOW, passage_length=PASSAGE_TOKENS, reasoning_budget=REASONING_BUDGET,
                      save_traces=str(traces))
    experiment, execution = build_specs(values, f"evaluation of {label}")
    start = time.perf_counter()
    outcome = run_experiment(experiment, execution, log=lambda message: None)
    wall = time.perf_counter() - start
    [subset] = outcome.subsets
    record = subset.record
    counts = record.counts
    units = counts.windows or 1
    row = {"model": label, "nDCG@10": round(record.metrics["nDCG@10"], 4),
           "parse_failure_rate": round(counts.parse_failures / units, 4) if model is not None else None,
           "fallbacks": dict(counts.fallbacks), "queries": counts.queries,
           "seconds_per_query": round(wall / max(counts.queries, 1), 3) if model is not None else None,
           "mean_reward": None, "record": str(subset.directory)}
    if model is not None:
        reward = mean_reward(traces, reference)
        row["mean_reward"] = None if reward is None else round(reward, 4)
    _say(f"{label}: nDCG@10 {row['nDCG@10']}, parse failures {row['parse_failure_rate']}, reward {row['mean_reward']}")
    return row


def plot(path: Path, losses: list, rewards: list, title: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _say("matplotlib is not installed (the train extra has it): no plot")
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot([s for s, _ in losses], [v for _, v in losses], marker="o", markersize=3)
    left.set(title="SFT loss", xlabel="step", ylabel="loss (answer tokens)")
    right.plot([s for s, _ in rewards], [v for _, v in rewards], marker="o", markersize=3, color="tab:green")
    right.set(title="GRPO mean multi-view reward", xlabel="step", ylabel="reward (group mean)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _table(rows: list[dict]) -> str:
    lines = [f"{'model':<12} {'nDCG@10':>8} {'parse fail':>10} {'s/query':>8} {'reward':>7}  fallbacks"]
    for r in rows:
        pf = "—" if r["parse_failure_rate"] is None else f"{100 * r['parse_failure_rate']:.1f}%"
        spq = "—" if r["seconds_per_query"] is None else f"{r['seconds_per_query']:.2f}"
        reward = "—" if r["mean_reward"] is None else f"{r['mean_reward']:.3f}"
        fallbacks = ", ".join(f"{k} {v}" for k, v in sorted(r["fallbacks"].items())) or "—"
        lines.append(f"{r['model']:<12} {r['nDCG@10']:>8.4f} {pf:>10} {spq:>8} {reward:>7}  {fallbacks}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps and queries (a smoke, ≤ 10 min)")
    parser.add_argument("--json", type=Path, help="write the table as JSON rows to this file")
    parser.add_argument("--out", type=Path, default=Path("train-smollm2-out"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="base model directory [default: the embedded SmolLM2-135M]")
    parser.add_argument("--train-queries", type=int, help="only the first N training queries [default: all]")
    parser.add_argument("--shuffle-windows", action="store_true", help="permute each training window's passages "
                        "(seeded by --seed) so the relevant one is not mostly first")
    parser.add_argument("--reuse", action="store_true", help="keep the data and checkpoints already in --out (an "
                        "interrupted run resumes at the evaluation)")
    for key in FULL:
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, help=f"[default: {FULL[key]}, quick {QUICK[key]}]")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    sizes.update({k: getattr(args, k) for k in FULL if getattr(args, k) is not None})

    import torch

    torch.manual_seed(args.seed)
    started = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        from harness.embedded import prepared_path

        model = prepared_path("smollm2-135m", log=_say)
    else:
        model = args.model
    done = [out / "checkpoints" / name / "harness_training.json" for name in ("sft", "grpo")]
    if args.reuse and all(p.is_file() for p in done) and (out / "data" / "heldout-labelled").is_dir():
        report = json.loads((out / "data" / "train-filtered" / "filter_report.json").read_text())
        kept = sum(d["kept"] for d in report["per_domain"].values())
        total = sum(d["total"] for d in report["per_domain"].values())
        data = {"heldout": out / "data" / "heldout-labelled", "kept": kept, "total": total}
        sft_dir, grpo_dir = done[0].parent, done[1].parent
        losses, rewards = _curves(sft_dir, grpo_dir)
        _say(f"reusing the data and checkpoints in {out}")
    else:
        data = build_data(out, model, args.train_queries, sizes["eval_queries"],
                          args.seed if args.shuffle_windows else None)
        sft_dir, grpo_dir, losses, rewards = train(out, model, data, sizes, args.seed)
    reference = _heldout_reference(data["heldout"])
    rows = [evaluate(out, "first-stage", None, sizes["eval_queries"], reference)]
    for label, directory in (("base", model), ("sft", sft_dir), ("grpo", grpo_dir)):
        rows.append(evaluate(out, label, directory, sizes["eval_queries"], reference))
    minutes = (time.perf_counter() - started) / 60
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    title = (f"SmolLM2-135M-Instruct on pydocs: SFT {sizes['sft_steps']} steps, GRPO {sizes['grpo_steps']} steps, "
             f"seed {args.seed}, {machine}")
    image = plot(out / "training.png", losses, rewards, title)
    summary = {"rows": rows, "sft_loss": losses, "grpo_reward": rewards, "sizes": sizes, "seed": args.seed,
               "shuffle_windows": args.shuffle_windows,
               "machine": machine, "minutes": round(minutes, 1), "quick": args.quick,
               "training_windows": {"kept": data["kept"], "labelled": data["total"]},
               "plot": None if image is None else str(image)}
    (out / "table.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"{title}\nheld-out pydocs/test, first {sizes['eval_queries']} queries, BM25 top-{WINDOW}, "
          f"one window of {WINDOW} passages × {PASSAGE_TOKENS} tokens; {minutes:.1f} min in all"
          + (" (--quick: a smoke, not the result)" if args.quick else ""))
    print(_table(rows))
    if losses:
        print(f"SFT loss {losses[0][1]:.3f} → {losses[-1][1]:.3f}; GRPO reward per step "
              f"{', '.join(f'{r:.2f}' for _, r in rewards)}")
    return rows


if __name__ == "__main__":
    main()
