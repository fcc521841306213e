"""Every file name of a run folder and of a study folder: the one place that spells them.

A run folder (``ffnlp classify train --out RUN``)::

    config.toml         the resolved configuration (re-runnable)
    model.json          the architecture to rebuild the model ({"task", "type", "args"})
    model.safetensors   its weights (no pickle)
    vocab.json          vocabulary and label set
    metrics.jsonl       one JSON object per logged step / epoch
    summary.json        the final figures (complete runs only)
    interrupted.json    in a run stopped before it was complete; --resume continues it
    init_from.json      a continued run (--init-from): the run it started from
    interpolation.json  an LM mixed with another one: the partner and its weight
    vectors.bin         word2vec: the vectors in word2vec's binary format
    predictions.jsonl   classify with --test: each test example's prediction
    checkpoint/         state.pt (resumable state), torchrun.json (the torchrun job writing it)
    plots/              loss.png, diagnostics.png, confusion.png, label_f1.png
    lexicon/            classify with lexicon features: the run's copy of the word lists
    cache/              lm: the encoded training corpus
    report.html         written by ``ffnlp report``

A group of runs (``ffnlp repeat``, ``classify cv``) has its own ``summary.json`` and one run
folder per seed or fold. A study folder (``ffnlp tune --out STUDY``) holds ``tune.json``,
``study.db`` (SQLite storage), ``trials.csv``, ``best.toml``, ``rescore.json``, the runs under
``trials/``, ``best/`` and ``seeds/``, and its lock files.
"""

from __future__ import annotations

from pathlib import Path

# ---------------------------------------------------------------------------------- a run
CONFIG = "config.toml"
ARCH = "model.json"
WEIGHTS = "model.safetensors"
VOCAB = "vocab.json"
NGRAMS = "vocab.safetensors"  # a bag of n-grams' vocab.json as arrays, for predict's start
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
MARKER = "interrupted.json"
LINEAGE = "init_from.json"
INTERPOLATION = "interpolation.json"
VECTORS = "vectors.bin"
PREDICTIONS = "predictions.jsonl"  # classify: the test split's predictions (ffnlp compare)
PLOTS = "plots"
LOSS_PLOT = "loss.png"
DIAGNOSTICS_PLOT = "diagnostics.png"
CONFUSION_PLOT = "confusion.png"
LABEL_F1_PLOT = "label_f1.png"
LEXICON_DIR = "lexicon"  # classify: the run's copy of its word lists
CACHE_DIR = "cache"  # lm: the encoded training corpus of a sharded run
REPORT = "report.html"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "state.pt"
CHECKPOINT = Path(CHECKPOINT_DIR) / CHECKPOINT_FILE
JOB_FILE = Path(CHECKPOINT_DIR) / "torchrun.json"  # the torchrun job writing the run

RUN_FILES = (CONFIG, ARCH, SUMMARY, METRICS, MARKER, CHECKPOINT_DIR)
"""What makes a folder a run (any of these)."""

MODEL_FILES = (CONFIG, VOCAB, ARCH, WEIGHTS)
"""What a trained classifier needs to predict (and what a quantised copy carries over)."""

REPLACED_WHOLE = frozenset({CHECKPOINT_FILE, WEIGHTS, VECTORS})
"""Files ffnlp only ever replaces whole (never opens for writing in place): a resumed run's copy
may share them with the original (hard links)."""

# ------------------------------------------------------------------------------- a study
TUNE_JSON = "tune.json"
STUDY_DB = "study.db"
STUDY_DB_FILES = (STUDY_DB, f"{STUDY_DB}-journal", f"{STUDY_DB}-wal", f"{STUDY_DB}-shm")
TRIALS_CSV = "trials.csv"
BEST_TOML = "best.toml"
RESCORE_JSON = "rescore.json"
TRIALS_DIR = "trials"
RESCORE_DIR = "rescore"
BEST_DIR = "best"
SEEDS_DIR = "seeds"
TUNE_LOCK = ".tune.lock"  # one worker at a time sets the study up
RESCORE_LOCK = ".rescore.lock"  # workers ending together re-score one at a time
WORKERS_LOCK = ".workers.lock"  # every worker on an SQLite study holds it shared

STUDY_PARTS = (
    TUNE_JSON,
    TRIALS_DIR,
    TRIALS_CSV,
    BEST_TOML,
    RESCORE_DIR,
    RESCORE_JSON,
    BEST_DIR,
    SEEDS_DIR,
    REPORT,
)
"""What a study writes in its folder besides its database (files and folders)."""

STUDY_FOLDERS = (TRIALS_DIR, RESCORE_DIR, BEST_DIR, SEEDS_DIR)

RUN_SUMMARY_FILES = (CONFIG, SUMMARY, METRICS, PLOTS)
"""What a tuning trial keeps of a run when its model files are not kept."""


def lock_path(out: Path) -> Path:
    """``.OUT.lock`` beside the run folder ``out``."""
    return out.parent / f".{out.name}.lock"
