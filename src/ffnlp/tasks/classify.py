"""Text classification end to end: files -> features -> model -> Trainer -> run directory.

The CLI (`ffnlp classify ...`) and the Python API (`ffnlp.train_classifier`, `ffnlp.load`) both
call this module, so neither holds logic of its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, overload

import numpy as np
import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.config import option, section
from ffnlp.errors import ConfigError, DataError, ModelFileError
from ffnlp.features.lexicon import LexiconConfig
from ffnlp.models.heads import balanced_class_weight
from ffnlp.models.init import InitConfig, initialize
from ffnlp.models.io import load_model, save_model
from ffnlp.models.mlp import MLPConfig
from ffnlp.models.pooled import PooledConfig
from ffnlp.models.registry import build_model
from ffnlp.runtime import seed_everything
from ffnlp.tasks.run import finish_run, fit, start_run, training_summary
from ffnlp.text.readers import LabeledData, read_labeled
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import LabelVocab
from ffnlp.training import Callback, TrainConfig
from ffnlp.training.data import BatchSource, SparseRowBatches, TensorBatches
from ffnlp.training.metrics import classification_metrics

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DataConfig:
    format: str = option(
        "auto", "input format", choices=("auto", "label-text", "fasttext", "csv", "tsv", "jsonl")
    )
    encoding: str = option("utf-8", "text encoding of the data files (e.g. latin-1 for MR)")
    text_column: str = option("text", "CSV/TSV/JSONL: the column or key holding the text")
    label_column: str = option("label", "CSV/TSV/JSONL: the column or key holding the label")
    skip_invalid: bool = option(False, "skip malformed lines (and report how many) instead of failing")
    tokenizer: str = option(
        "whitespace", "whitespace (pre-tokenised data) or regex (words and punctuation)",
        choices=("whitespace", "regex"),
    )
    lowercase: bool = option(False, "lowercase before tokenising")


@dataclass(frozen=True)
class FeaturesConfig:
    kind: str = option(
        "ngrams",
        "what the model sees: ngrams (bag of word n-grams; logreg, mlp), ids (word ids + hashed "
        "word n-grams; pooled), lexicon (hand-built features of [features.lexicon]; mlp), "
        "ngrams+lexicon (both, side by side; logreg, mlp)",
        choices=("ngrams", "ids", "lexicon", "ngrams+lexicon"),
    )
    ngram_range: list[int] = option([1, 2], "smallest and largest n of the word n-grams")
    weighting: str = option("tfidf", "feature values", choices=("count", "binary", "tfidf"))
    sublinear_tf: bool = option(True, "tf-idf: use 1 + log(tf) instead of raw counts")
    min_count: int = option(1, "drop n-grams seen fewer times than this in training", ge=1)
    max_features: int = option(0, "keep only the most frequent n-grams (0 = all)", ge=0)
    buckets: int = option(
        200_000, "kind = ids: hash buckets for word n-grams of order 2..ngram_range[1] (fastText: 2M)", ge=1
    )
    lexicon: LexiconConfig = section(LexiconConfig)

    def check(self) -> list[str]:
        lo, hi = (self.ngram_range + [0, 0])[:2]
        if len(self.ngram_range) != 2 or not 1 <= lo <= hi:
            return [f"features.ngram_range must be [min_n, max_n] with 1 <= min_n <= max_n; got {self.ngram_range}"]
        return []


@dataclass(frozen=True)
class LossConfig:
    label_smoothing: float = option(0.0, "move this much target mass to the other classes", ge=0, lt=1)
    class_weight: str = option(
        "none", "weigh each class's examples: none, balanced (n / (K * n_k)) or a list like '1.0,3.0'"
    )


@dataclass(frozen=True)
class ModelConfig:
    type: str = option(
        "logreg",
        "model family: logreg (logistic regression), mlp (feed-forward network over features), "
        "pooled (pooled word/n-gram embeddings -> MLP: DAN / fastText)",
    )
    init: InitConfig = section(InitConfig)
    mlp: MLPConfig = section(MLPConfig)
    pooled: PooledConfig = section(PooledConfig)

    def check(self) -> list[str]:
        if self.type == "pooled" and self.pooled.freeze and not self.pooled.pretrained:
            return ["model.pooled.freeze = true needs model.pooled.pretrained (a frozen random table learns nothing)"]
        return []


@dataclass(frozen=True)
class ClassifyConfig:
    data: DataConfig = section(DataConfig)
    features: FeaturesConfig = section(FeaturesConfig)
    model: ModelConfig = section(ModelConfig)
    loss: LossConfig = section(LossConfig)
    train: TrainConfig = section(
        TrainConfig, monitor="dev.accuracy", epochs=10, batch_size=32, lr=0.01, early_stopping=True
    )


def resolve_config(
    config: ClassifyConfig | str | Path | dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    **settings: Any,
) -> ClassifyConfig:
    """Defaults -> TOML file or dict -> ``--set`` overrides -> keyword settings ("train.lr": 0.1)."""
    return cfgmod.resolve(ClassifyConfig, config, overrides, **settings)


# ------------------------------------------------------------------------------------ featurizers


class Featurizer(Protocol):
    """Turns token lists into a BatchSource; fitted on the training split only."""

    kind: str

    def fit(self, tokens: list[list[str]], texts: list[str]) -> None: ...

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource: ...

    def model_args(self) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]: ...


class NgramFeaturizer:
    """Bag of word n-grams (counts, binary or tf-idf) as sparse rows."""

    kind = "ngrams"

    def __init__(self, cfg: FeaturesConfig, state: dict[str, Any] | None = None):
        from ffnlp.features.bag import BagOfNgrams

        if state is not None:
            self.bag = BagOfNgrams.from_dict(state)
        else:
            self.bag = BagOfNgrams(
                ngram_range=(cfg.ngram_range[0], cfg.ngram_range[1]), weighting=cfg.weighting,
                sublinear_tf=cfg.sublinear_tf, min_count=cfg.min_count,
                max_features=cfg.max_features or None,
            )

    def fit(self, tokens: list[list[str]], texts: list[str]) -> None:
        self.bag.fit(tokens)
        if self.bag.n_features == 0:
            raise DataError("the training data has no n-gram that passes features.min_count; lower it")

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource:
        return SparseRowBatches(self.bag.transform(tokens), y=y)

    def model_args(self) -> dict[str, Any]:
        return {"num_features": self.bag.n_features}

    def to_dict(self) -> dict[str, Any]:
        return self.bag.to_dict()


class IdsFeaturizer:
    """Word ids plus hashed word n-gram ids, as bags with offsets (the pooled model's input)."""

    kind = "ids"

    def __init__(self, cfg: FeaturesConfig, state: dict[str, Any] | None = None):
        from ffnlp.text.vocab import Vocab

        self.max_n = cfg.ngram_range[1] if len(cfg.ngram_range) == 2 else 1
        self.buckets = cfg.buckets if self.max_n > 1 else 0
        self.min_count = cfg.min_count
        self.max_features = cfg.max_features
        self.vocab: Any = Vocab.from_dict(state["vocab"]) if state is not None else None

    def fit(self, tokens: list[list[str]], texts: list[str]) -> None:
        from ffnlp.text.vocab import Vocab

        self.vocab = Vocab.build(tokens, min_count=self.min_count,
                                 max_size=self.max_features or None, specials=())
        if len(self.vocab) == 0 and self.max_n < 2:
            raise DataError("the training data has no word that passes features.min_count; lower it")

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource:
        from ffnlp.models.pooled import BagBatches, encode_bags

        return BagBatches(encode_bags(tokens, self.vocab, ngrams=self.max_n, buckets=self.buckets, labels=y))

    def model_args(self) -> dict[str, Any]:
        return {"num_embeddings": len(self.vocab) + self.buckets}

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict(), "max_n": self.max_n, "buckets": self.buckets}


class LexiconFeatures:
    """Hand-built features ([features.lexicon]) standardised on the training split."""

    kind = "lexicon"

    def __init__(self, cfg: FeaturesConfig, state: dict[str, Any] | None = None):
        from ffnlp.features.lexicon import LexiconFeaturizer

        self.featurizer = LexiconFeaturizer.from_config(cfg.lexicon)
        if state is not None:
            self.featurizer.load_state(state)

    def fit(self, tokens: list[list[str]], texts: list[str]) -> None:
        self.featurizer.fit(tokens)

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource:
        return TensorBatches({"x": self.featurizer.transform(tokens), "y": y})

    def model_args(self) -> dict[str, Any]:
        return {"num_features": self.featurizer.num_features}

    def to_dict(self) -> dict[str, Any]:
        return self.featurizer.state()


class NgramLexiconFeatures:
    """Bag of n-grams with the hand-built lexicon features appended as F more columns."""

    kind = "ngrams+lexicon"

    def __init__(self, cfg: FeaturesConfig, state: dict[str, Any] | None = None):
        self.ngrams = NgramFeaturizer(cfg, state["ngrams"] if state is not None else None)
        self.lexicon = LexiconFeatures(cfg, state["lexicon"] if state is not None else None)

    def fit(self, tokens: list[list[str]], texts: list[str]) -> None:
        self.ngrams.fit(tokens, texts)
        self.lexicon.fit(tokens, texts)

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource:
        src = self.ngrams.source(tokens, texts, y)
        assert isinstance(src, SparseRowBatches)
        extra = self.lexicon.featurizer.transform(tokens)  # (B, L)
        n, width = extra.shape
        # every row gets its L lexicon values after its n-grams, as columns F .. F+L-1
        rows = torch.arange(n)
        old_pos = torch.arange(src.col.numel()) + width * torch.repeat_interleave(rows, src.row_nnz)
        new_pos = (src.crow[1:] + width * rows).unsqueeze(1) + torch.arange(width)  # (B, L)
        col = torch.empty(src.col.numel() + n * width, dtype=torch.long)
        val = torch.empty(col.numel(), dtype=torch.float32)
        col[old_pos], val[old_pos] = src.col, src.val
        col[new_pos.flatten()] = (src.n_cols + torch.arange(width)).repeat(n)
        val[new_pos.flatten()] = extra.flatten()
        src.col, src.val = col, val
        src.row_nnz = src.row_nnz + width
        src.crow = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(src.row_nnz, 0)])
        src.n_cols += width
        return src

    def model_args(self) -> dict[str, Any]:
        return {"num_features": self.ngrams.bag.n_features + self.lexicon.featurizer.num_features}

    def to_dict(self) -> dict[str, Any]:
        return {"ngrams": self.ngrams.to_dict(), "lexicon": self.lexicon.to_dict()}


FEATURIZERS: dict[str, Any] = {
    "ngrams": NgramFeaturizer, "ids": IdsFeaturizer, "lexicon": LexiconFeatures,
    "ngrams+lexicon": NgramLexiconFeatures,
}
# which feature kinds each model family reads
MODEL_FEATURES: dict[str, tuple[str, ...]] = {
    "logreg": ("ngrams", "ngrams+lexicon"), "mlp": ("ngrams", "lexicon", "ngrams+lexicon"),
    "pooled": ("ids",),
}


def check_model_features(cfg: ClassifyConfig) -> None:
    allowed = MODEL_FEATURES.get(cfg.model.type)
    if allowed is not None and cfg.features.kind not in allowed:
        raise ConfigError(
            f"model.type = {cfg.model.type!r} reads features.kind {' or '.join(map(repr, allowed))}; "
            f"got features.kind = {cfg.features.kind!r} (set features.kind = {allowed[0]!r})"
        )


def make_featurizer(cfg: ClassifyConfig, state: dict[str, Any] | None = None) -> Featurizer:
    return FEATURIZERS[cfg.features.kind](cfg.features, state)


def model_args(cfg: ClassifyConfig, featurizer: Featurizer, num_classes: int,
               class_weight: list[float] | None) -> dict[str, Any]:
    """Constructor arguments of the configured model (stored in model.json to rebuild it)."""
    args: dict[str, Any] = dict(featurizer.model_args())
    args.update(num_classes=num_classes, label_smoothing=cfg.loss.label_smoothing,
                class_weight=class_weight)
    if cfg.model.type in ("logreg", "mlp"):
        args["sparse"] = cfg.train.sparse
    if cfg.model.type in ("mlp", "pooled"):
        m = cfg.model.mlp
        args.update(hidden=list(m.hidden), activation=m.activation, dropout=m.dropout,
                    input_dropout=m.input_dropout)
    if cfg.model.type == "pooled":
        p = cfg.model.pooled
        args.update(dim=p.dim, pooling=p.pooling, word_dropout=p.word_dropout, sparse=cfg.train.sparse,
                    init=p.init, init_scale=p.init_scale, freeze=p.freeze)
    return args


def load_pretrained(model: nn.Module, cfg: ClassifyConfig, featurizer: Featurizer) -> dict[str, Any] | None:
    """Copy pretrained vectors into a pooled model's rows for the vocabulary; report coverage.

    Words the file lacks keep a random vector at the file's scale (or zeros, by
    model.pooled.oov_init); n-gram buckets keep their random init.
    """
    p = cfg.model.pooled
    if cfg.model.type != "pooled" or not p.pretrained:
        return None
    from ffnlp.features.embeddings import load_vectors

    words, vectors = load_vectors(p.pretrained, format=p.pretrained_format)
    vocab = featurizer.vocab  # type: ignore[attr-defined]
    model.check_vector_dim(int(vectors.shape[1]), str(p.pretrained))  # type: ignore[operator]
    index = {w: i for i, w in enumerate(words)}
    rows = [(r, index[w]) for r, w in enumerate(vocab.itos) if w in index]
    missing = len(vocab) - len(rows)
    table = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    with torch.no_grad():
        weight: torch.Tensor = model.embedding.weight  # type: ignore[union-attr, assignment]
        oov = torch.ones(len(vocab), dtype=torch.bool)
        if rows:
            r, i = (torch.tensor(c) for c in zip(*rows, strict=True))
            model.load_vectors(r, table[i])  # type: ignore[operator]
            oov[r] = False
        if oov.any():
            if p.oov_init == "zeros":
                weight[: len(vocab)][oov] = 0.0
            else:  # same mean and spread as the file, so unknown words do not stand out
                mean, std = table.mean(0), table.std(0)
                weight[: len(vocab)][oov] = mean + std * torch.randn(int(oov.sum()), table.shape[1])
    tokens_total = sum(vocab.counts) or 1
    tokens_found = sum(c for w, c in zip(vocab.itos, vocab.counts, strict=True) if w in index)
    return {"file": str(p.pretrained), "vectors": len(words), "dim": int(vectors.shape[1]),
            "vocab": len(vocab), "found": len(rows), "missing": missing,
            "type_coverage": len(rows) / max(len(vocab), 1), "token_coverage": tokens_found / tokens_total}


# ------------------------------------------------------------------------------------- evaluation


def make_evaluator(labels: list[str], full: bool = False, batch_size: int = 2048):
    """evaluate(model, source) -> loss, accuracy, macro_f1 (+ per-class and confusion when full)."""

    @torch.no_grad()
    def evaluate(model: nn.Module, source: BatchSource) -> dict[str, Any]:
        golds, preds, loss_sum, n = [], [], 0.0, 0
        for batch in source.batches(batch_size, None):
            logits = model.logits(batch)  # type: ignore[operator]
            b = int(batch["y"].shape[0])
            loss_sum += float(model.head.loss(logits, batch["y"])) * b  # type: ignore[union-attr, operator]
            n += b
            golds.append(batch["y"])
            preds.append(model.head.predict(logits))  # type: ignore[union-attr, operator]
        m = classification_metrics(torch.cat(golds), torch.cat(preds), labels)
        out: dict[str, Any] = {"loss": loss_sum / max(n, 1), "accuracy": m["accuracy"],
                               "macro_f1": m["macro_f1"]}
        if full:
            out.update(per_class=m["per_class"], confusion=m["confusion"], examples=n)
        return out

    return evaluate


# --------------------------------------------------------------------------------- the classifier


class Classifier:
    """A trained text classifier: predict, test, save; what ``train_classifier`` and ``load`` return."""

    def __init__(self, config: ClassifyConfig, labels: LabelVocab, featurizer: Featurizer,
                 model: nn.Module, model_args: dict[str, Any], run_dir: Path | None = None,
                 summary: dict[str, Any] | None = None):
        self.config = config
        self.labels = labels
        self.featurizer = featurizer
        self.model = model.eval()
        self.model_args = model_args
        self.run_dir = run_dir
        self.summary = summary or {}
        self.tokenizer = Tokenizer(config.data.tokenizer, lowercase=config.data.lowercase)

    # -- prediction
    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of ``self.labels.labels``."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        tokens = self.tokenizer.tokenize_all(texts)
        source = self.featurizer.source(tokens, texts, torch.zeros(len(texts), dtype=torch.long))
        self.model.eval()
        out = []
        for batch in source.batches(4096, None):
            out.append(self.model.head.probabilities(self.model.logits(batch)))  # type: ignore[union-attr, operator]
        return torch.cat(out).numpy()

    @overload
    def predict(self, texts: str, k: int = 1, threshold: float = 0.0) -> list[tuple[str, float]]: ...  # type: ignore[overload-overlap]

    @overload
    def predict(self, texts: Sequence[str], k: int = 1, threshold: float = 0.0
                ) -> list[list[tuple[str, float]]]: ...

    def predict(self, texts: str | Sequence[str], k: int = 1, threshold: float = 0.0
                ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """Top-k (label, probability) pairs per text, most probable first, those >= threshold.

        A single string gives one list; a list of strings gives a list of lists.
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1; got {k}")
        single = isinstance(texts, str)
        probs = self.predict_proba([texts] if single else list(texts))  # type: ignore[list-item]
        k = min(k, probs.shape[1])
        results = []
        for row in probs:
            top = np.argsort(-row, kind="stable")[:k]
            results.append([(self.labels.labels[i], float(row[i])) for i in top if row[i] >= threshold])
        return results[0] if single else results

    def test(self, path: str | Path, **read_options: Any) -> dict[str, Any]:
        """Metrics on a labelled file (accuracy, macro_f1, per-class P/R/F1, confusion, loss)."""
        data = _read(path, self.config, **read_options)
        return self.evaluate(data)

    def evaluate(self, data: LabeledData) -> dict[str, Any]:
        y = torch.tensor(self.labels.encode(data.labels), dtype=torch.long)
        tokens = self.tokenizer.tokenize_all(data.texts)
        source = self.featurizer.source(tokens, data.texts, y)
        return make_evaluator(self.labels.labels, full=True)(self.model, source)

    # -- persistence
    def save(self, run_dir: str | Path) -> Path:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfgmod.save_toml(self.config, run_dir / "config.toml")
        vocab = {"labels": self.labels.to_dict(), "features": self.featurizer.to_dict()}
        (run_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        save_model(self.model, run_dir, "classify", self.model_args)
        self.run_dir = run_dir
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path) -> Classifier:
        run_dir = Path(run_dir)
        model, arch = load_model(run_dir)
        if arch["task"] != "classify":
            raise ModelFileError(f"{run_dir} holds a {arch['task']} model, not a classifier")
        try:
            config = resolve_config(run_dir / "config.toml")
            vocab = json.loads((run_dir / "vocab.json").read_text(encoding="utf-8"))
            labels = LabelVocab.from_dict(vocab["labels"])
            featurizer = make_featurizer(config, vocab["features"])
        except FileNotFoundError as exc:
            raise ModelFileError(f"{run_dir} is incomplete: {Path(exc.filename).name} is missing") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{run_dir / 'vocab.json'} is corrupted ({exc})") from None
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        return cls(config, labels, featurizer, model, arch["args"], run_dir, summary)


# ------------------------------------------------------------------------------------- training


def _read(path: str | Path | LabeledData, cfg: ClassifyConfig, **overrides: Any) -> LabeledData:
    if isinstance(path, LabeledData):  # already in memory (cross-validation folds, scikit-learn)
        return path
    d = cfg.data
    opts: dict[str, Any] = dict(format=d.format, encoding=d.encoding, text_column=d.text_column,
                                label_column=d.label_column, skip_invalid=d.skip_invalid)
    opts.update(overrides)
    data = read_labeled(path, **opts)
    if data.skipped:
        log.warning("%s: skipped %d invalid line(s) (data.skip_invalid = true)", path, data.skipped)
    return data


def _class_weight(cfg: ClassifyConfig, y: torch.Tensor, labels: LabelVocab) -> list[float] | None:
    spec = cfg.loss.class_weight.strip()
    if spec == "none":
        return None
    if spec == "balanced":
        return balanced_class_weight(y, len(labels))
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        values = []
    if len(values) != len(labels) or any(v <= 0 for v in values):
        raise ConfigError(
            f"loss.class_weight must be 'none', 'balanced' or {len(labels)} positive numbers "
            f"separated by commas (one per label, in the order {labels.labels}); got {spec!r}"
        )
    return values


def train_classifier(
    train: str | Path | LabeledData,
    dev: str | Path | LabeledData | None = None,
    test: str | Path | LabeledData | None = None,
    config: ClassifyConfig | str | Path | dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    out: str | Path | None = None,
    seed: int | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    **settings: Any,
) -> Classifier:
    """Train a text classifier and write its run directory.

    >>> clf = train_classifier("train.txt", dev="dev.txt", out="runs/sst2",
    ...                        overrides=["train.epochs=5"])            # doctest: +SKIP
    >>> clf.predict("a gripping , funny film", k=1)                      # doctest: +SKIP
    [('1', 0.93)]
    """
    run_dir, cfg = start_run(
        "classify", resolve_config, config, overrides, settings, out, resume, seed,
        check=check_model_features,
    )

    started = time.perf_counter()
    train_data = _read(train, cfg)
    dev_data = _read(dev, cfg) if dev is not None else None
    test_data = _read(test, cfg) if test is not None else None
    labels = LabelVocab.build(train_data.labels)
    if len(labels) < 2:
        raise DataError(
            f"{train}: every training example has the label {labels.labels[0]!r}; a classifier "
            "needs at least two classes"
        )
    tokenizer = Tokenizer(cfg.data.tokenizer, lowercase=cfg.data.lowercase)
    featurizer = make_featurizer(cfg)
    train_tokens = tokenizer.tokenize_all(train_data.texts)
    featurizer.fit(train_tokens, train_data.texts)

    def source(data: LabeledData, tokens: list[list[str]] | None = None) -> BatchSource:
        y = torch.tensor(labels.encode(data.labels), dtype=torch.long)
        toks = tokens if tokens is not None else tokenizer.tokenize_all(data.texts)
        return featurizer.source(toks, data.texts, y)

    train_source = source(train_data, train_tokens)
    dev_source = source(dev_data) if dev_data is not None else None
    y_train = torch.tensor(labels.encode(train_data.labels), dtype=torch.long)
    prep_seconds = time.perf_counter() - started

    seed_everything(cfg.train.seed)
    args = model_args(cfg, featurizer, len(labels), _class_weight(cfg, y_train, labels))
    model = build_model(cfg.model.type, args)
    if cfg.model.type != "logreg":  # logistic regression starts at zero (convex; see LogisticRegression)
        initialize(model, cfg.model.init, cfg.model.mlp.activation)
    embeddings = load_pretrained(model, cfg, featurizer)
    trainer = fit(model, cfg.train, train_source, dev_source, make_evaluator(labels.labels),
                  callbacks, run_dir, resume)
    history = trainer.history

    clf = Classifier(cfg, labels, featurizer, trainer.model.cpu().eval(), args, run_dir)
    clf.save(run_dir)
    summary = training_summary("classify", trainer, prep_seconds)
    summary["model"] = cfg.model.type
    summary["labels"] = labels.labels
    summary["train_examples"] = len(train_data)
    skipped = {
        name: data.skipped
        for name, data in (("train", train_data), ("dev", dev_data), ("test", test_data))
        if data is not None and data.skipped
    }
    if skipped:  # lines left out under data.skip_invalid, per split: nothing dropped unseen
        summary["skipped_lines"] = skipped
    if embeddings is not None:
        summary["embeddings"] = embeddings
    if dev_data is not None:
        summary["dev"] = clf.evaluate(dev_data)
    if test_data is not None:
        summary["test"] = clf.evaluate(test_data)
    finish_run(run_dir, summary, history.records, cfg.train.monitor.split(".", 1)[1])
    clf.summary = dict(summary)
    from ffnlp.report.confusion import plot_confusion

    for split in ("test", "dev"):
        if split in summary:
            plot_confusion(summary[split]["confusion"], labels.labels, run_dir / "plots" / "confusion.png",
                           title=f"confusion matrix ({split})")
            break
    return clf


def load(run_dir: str | Path) -> Classifier:
    """Load a trained classifier from its run directory."""
    return Classifier.load(run_dir)
