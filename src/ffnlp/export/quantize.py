"""``ffnlp quantize RUN --out RUN_Q``: a smaller classifier run, as fastText's ``quantize`` makes.

Three steps, in this order:

1. **Pruning** (``cutoff`` N > 0): keep the N rows of the input table (the pooled model's word
   and hash-bucket embeddings, or the first layer's rows of the n-gram models: one per feature)
   that matter most, by ``norm`` (each row's Euclidean norm: fastText's ``-cutoff``) or by
   ``count`` (how often the row occurs in the training data given as ``train``). Pruned words
   and n-gram features leave the vocabulary; pruned hash buckets are remembered as
   ``bucket_rows`` in vocab.json (the buckets kept), so that text reads as it did, less the
   rows that are gone.
2. **Retraining** (``retrain``, needs ``train``): the pruned model trains again on the training
   data with the run's own [train] settings (``epochs`` to change their number), as fastText's
   ``-retrain``: the kept rows make up for the pruned ones.
3. **Quantisation** (``method``): ``int8`` stores every matrix as int8 rows with a scale each;
   ``pq`` product-quantises the input table (``dsub`` columns a byte; ``qnorm``: the norms apart,
   fastText's ``-qnorm``) and stores the other matrices as int8. See
   :mod:`ffnlp.models.quantized` for the codes.

The result is a run folder like any other (config.toml, vocab.json, model.json,
model.safetensors, summary.json, and metrics.jsonl when retrained): ``ffnlp classify
predict/eval``, ``ffnlp export`` and ``ffnlp.load`` read it. It is written as a transaction
(nothing is left of a failed command) and its summary.json records what was done
(``quantized``) with the sizes, scores and predict speeds of both runs on ``test`` (and ``dev``)
when given.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, DataError, OutputError
from ffnlp.fileio import write_atomic
from ffnlp.folders.folder import write_config, write_summary
from ffnlp.folders.layout import LEXICON_DIR, MODEL_FILES, VOCAB
from ffnlp.folders.transaction import RunTransaction
from ffnlp.models import registry
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.io import save_quantized
from ffnlp.models.logreg import LogisticRegression
from ffnlp.models.pooled import PooledEmbeddingClassifier
from ffnlp.models.quantized import encode_state
from ffnlp.tasks.classify.data import (
    IdsFeaturizer,
    NgramFeaturizer,
    check_known_labels,
    make_featurizer,
    read_split,
)
from ffnlp.tasks.classify.result import Classifier
from ffnlp.text.readers import LabeledData
from ffnlp.text.vocab import Vocab

METHODS = ("int8", "pq")
PRUNE_BY = ("norm", "count")


@dataclass(frozen=True)
class InputTable:
    """Where a classifier keeps its input table: the state-dict name and the constructor
    argument that sizes its rows."""

    name: str
    rows_argument: str


TABLES: dict[type[nn.Module], InputTable] = {
    PooledEmbeddingClassifier: InputTable("embedding.weight", "num_embeddings"),
    FeatureMLP: InputTable("input.weight", "num_features"),
    LogisticRegression: InputTable("linear.weight", "num_features"),
}


def input_table(model: nn.Module) -> InputTable:
    for cls, table in TABLES.items():
        if isinstance(model, cls):
            return table
    raise ConfigError(
        f"a {type(model).__name__} cannot be quantised; ffnlp quantises its pooled, "
        "logistic-regression and feature-MLP classifiers (an ensemble run, model.ensemble > 1, "
        "is K of them: train with model.ensemble = 1)"
    )


def check_options(
    method: str, cutoff: int, prune_by: str, retrain: bool, train: object, dsub: int
) -> None:
    """Every problem with the options at once, as a ConfigError naming them."""
    problems = []
    if method not in METHODS:
        problems.append(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    if prune_by not in PRUNE_BY:
        problems.append(f"--prune-by must be one of {', '.join(PRUNE_BY)}; got {prune_by!r}")
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff < 0:
        problems.append(
            f"--cutoff must be a row count of at least 1 (0: no pruning); got {cutoff!r}"
        )
    if isinstance(dsub, bool) or not isinstance(dsub, int) or dsub < 1:
        problems.append(f"--dsub must be at least 1; got {dsub!r}")
    if retrain and train is None:
        problems.append("--retrain trains the pruned model again: give its data with --train FILE")
    if retrain and not cutoff:
        problems.append("--retrain retrains after pruning: give --cutoff N as well")
    if prune_by == "count" and cutoff and train is None:
        problems.append("--prune-by count counts the rows in the training data: give --train FILE")
    cfgmod.raise_problems(problems, "in the options")


def quantize_run(
    run: str | Path,
    out: str | Path,
    method: str = "pq",
    cutoff: int = 0,
    prune_by: str = "norm",
    retrain: bool = False,
    train: str | Path | None = None,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    epochs: int | None = None,
    dsub: int = 2,
    qnorm: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Quantise the classifier in ``run`` into the new run ``out``; return the comparison
    (``summary.json``'s ``quantized`` entry). See the module's docstring."""
    from ffnlp.tasks.classify import load

    check_options(method, cutoff, prune_by, retrain, train, dsub)
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1
    ):
        raise ConfigError(f"--epochs must be at least 1; got {epochs!r}")
    if Path(out).absolute() == Path(run).absolute():
        raise ConfigError(f"--out {out} is the run being quantised; give a new folder")
    target = Path(out)
    if target.is_dir() and not target.is_symlink() and any(target.iterdir()) and not force:
        raise OutputError(
            f"{out} already holds files; pass --force to replace the run there, or choose "
            "another --out"
        )
    original = load(run)
    table = input_table(original.model)
    splits = {
        name: _read(path, original, name)
        for name, path in (("train", train), ("dev", dev), ("test", test))
        if path is not None
    }
    transaction = RunTransaction.open(out, "classify", resume=False, force=force)
    try:
        work = transaction.work
        clf = copy.deepcopy(original)
        rows_before = int(clf.model.state_dict()[table.name].shape[0])
        if cutoff and cutoff < rows_before:
            clf = prune(clf, table, cutoff, prune_by, splits.get("train"))
        if retrain:
            clf = retrain_classifier(clf, splits["train"], splits.get("dev"), epochs, work)
        codecs = choose_codecs(clf.model, table, method, dsub, qnorm)
        tensors, entries = encode_state(clf.model.state_dict(), codecs)
        _save(clf, work, tensors, {"method": method, "tensors": entries})
        quantized = load(work)  # read back as any user will read it
        after: dict[str, Any] = measure(quantized, work, splits)
        report: dict[str, Any] = {
            "from": str(run),
            "method": method,
            "cutoff": cutoff,
            "prune_by": prune_by if cutoff else None,
            "retrain": retrain,
            "rows": [rows_before, int(quantized.model.state_dict()[table.name].shape[0])],
            "codecs": {name: entry["codec"] for name, entry in entries.items()},
            "original": measure(original, Path(run), splits),
            "quantized": after,
        }
        summary = {k: v for k, v in original.summary.items() if k not in ("dev", "test")}
        for split in ("dev", "test"):
            if split in after:
                summary[split] = after[split]
        summary["quantized"] = report
        write_summary(work, summary)
        after["bytes"] = folder_bytes(work)  # summary.json included
        after["model_bytes"] = model_bytes(work)
        write_summary(work, summary)
        transaction.commit()
    except BaseException:
        transaction.abort()
        raise
    return report


def _read(path: str | Path, clf: Classifier, name: str) -> LabeledData:
    data = read_split(path, clf.config)
    if not clf.multilabel:
        if data.multilabel:
            raise DataError(
                f"{data.path} has examples with several labels, but the run is single-label"
            )
        check_known_labels(data, clf.labels, f"the run {clf.run_dir}")
    return data


# ------------------------------------------------------------------------------- pruning


def prune(
    clf: Classifier, table: InputTable, cutoff: int, prune_by: str, train: LabeledData | None
) -> Classifier:
    """``clf`` with only ``cutoff`` rows of its input table (see the module's docstring)."""
    weight = clf.model.state_dict()[table.name]  # (R, D)
    featurizer = clf.featurizer
    if prune_by == "norm":
        score = weight.float().norm(dim=1)  # (R,)
    else:
        assert train is not None
        score = row_counts(clf, train, int(weight.shape[0])).double()
    keep_mask = torch.zeros(weight.shape[0], dtype=torch.bool)
    keep_mask[torch.argsort(score, descending=True, stable=True)[:cutoff]] = True
    if isinstance(featurizer, IdsFeaturizer):
        vocab = featurizer.fitted_vocab()
        for special in vocab.specials:  # never in a bag, but the vocabulary must keep them
            keep_mask[vocab.stoi(special)] = True
        keep = torch.nonzero(keep_mask).flatten()  # ascending: words first, then buckets
        n_words = len(vocab)
        words = [int(i) for i in keep if i < n_words]
        state = featurizer.to_dict()
        state["vocab"] = Vocab(
            [vocab.itos[i] for i in words], [vocab.counts[i] for i in words], vocab.specials
        ).to_dict()
        buckets = featurizer.bucket_rows or list(range(featurizer.buckets))
        state["bucket_rows"] = [buckets[int(i) - n_words] for i in keep if i >= n_words]
    elif isinstance(featurizer, NgramFeaturizer):
        keep = torch.nonzero(keep_mask).flatten()
        state = featurizer.to_dict()
        # the word n-grams' columns first, then the character n-grams' (to_dict's layout)
        words, chars = state["features"], state.get("char_features")
        state["features"] = [words[int(i)] for i in keep if i < len(words)]
        if chars is not None:
            state["char_features"] = [chars[int(i) - len(words)] for i in keep if i >= len(words)]
        for per_feature in ("idf", "ratios"):  # one per feature: those of the features kept
            if state.get(per_feature) is not None:
                state[per_feature] = [state[per_feature][int(i)] for i in keep]
    else:
        raise ConfigError(
            f"--cutoff prunes the rows of a vocabulary: features.kind = "
            f"{clf.config.features.kind!r} has none to prune; quantise without --cutoff"
        )
    new_featurizer = make_featurizer(clf.config, state)
    args = dict(clf.model_args)
    args[table.rows_argument] = len(keep)
    model = registry.spec(str(clf.model.registry_name)).rebuild(args)
    weights = clf.model.state_dict()
    weights[table.name] = weight[keep]
    model.load_state_dict(weights)
    return Classifier(
        clf.config,
        clf.labels,
        new_featurizer,
        model.eval(),
        args,
        None,
        clf.summary,
        clf.thresholds,
    )


def row_counts(clf: Classifier, data: LabeledData, rows: int) -> torch.Tensor:
    """(R,) how many times each row of the input table is read for the texts of ``data``
    (for n-gram features: in how many texts the feature occurs)."""
    tokens = clf.tokenizer.tokenize_all(data.texts)
    featurizer = clf.featurizer
    if isinstance(featurizer, IdsFeaturizer):
        ids = featurizer.bags(tokens).ids
    else:
        assert isinstance(featurizer, NgramFeaturizer)
        ids = featurizer.bag.transform(tokens).col_indices()
    return torch.bincount(ids, minlength=rows)


# ----------------------------------------------------------------------------- retraining


def retrain_classifier(
    clf: Classifier,
    train: LabeledData,
    dev: LabeledData | None,
    epochs: int | None,
    work: Path,
) -> Classifier:
    """Train the pruned model again with the run's [train] settings (its history goes into
    ``work``'s metrics.jsonl)."""
    from ffnlp.runtime import seed_everything
    from ffnlp.tasks.classify.evaluate import make_evaluator
    from ffnlp.tasks.run import fit

    cfg = clf.config
    train_cfg = cfgmod.replace(
        cfg.train,
        epochs=epochs or cfg.train.epochs,
        checkpoint=False,
        tensorboard="",
    )
    seed_everything(cfg.train.seed)

    def source(data: LabeledData) -> Any:
        labels = data.label_lists() if clf.multilabel else data.labels
        return clf.source(data.texts, labels)

    evaluate = make_evaluator(
        clf.labels.labels, multilabel=clf.multilabel, threshold=cfg.task.threshold
    )
    dev_source = source(dev) if dev is not None else None
    trainer = fit(clf.model, train_cfg, source(train), dev_source, evaluate, [], work, False)
    clf.model = trainer.model.cpu().eval()
    return clf


# --------------------------------------------------------------------------- quantisation


def choose_codecs(
    model: nn.Module, table: InputTable, method: str, dsub: int, qnorm: bool
) -> dict[str, dict[str, Any]]:
    """Each matrix's code: the input table product-quantised (``pq``, when its width is a
    multiple of ``dsub`` larger than it), every other 2-D tensor int8."""
    codecs: dict[str, dict[str, Any]] = {}
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point() or tensor.ndim != 2:
            continue
        width = int(tensor.shape[1])
        if method == "pq" and name == table.name and width % dsub == 0 and width > dsub:
            codecs[name] = {"codec": "pq", "dsub": dsub, "qnorm": qnorm}
        else:
            codecs[name] = {"codec": "int8"}
    return codecs


def _save(clf: Classifier, work: Path, tensors: dict[str, Any], quantized: dict[str, Any]) -> None:
    write_config(work, clf.config)
    features = clf.featurizer.to_dict()
    if isinstance(clf.featurizer, NgramFeaturizer) and features.get("idf") is not None:
        # seven significant digits, float32's precision: half the bytes of a float64's repr
        features["idf"] = [float(f"{x:.7g}") for x in features["idf"]]
    vocab: dict[str, Any] = {"labels": clf.labels.to_dict(), "features": features}
    if clf.thresholds is not None:
        vocab["thresholds"] = clf.thresholds
    write_atomic(work / VOCAB, json.dumps(vocab), within=work)
    clf.featurizer.save_files(work)
    save_quantized(clf.model, work, "classify", clf.model_args, tensors, quantized)


# ------------------------------------------------------------------------------ measuring


def folder_bytes(folder: Path) -> int:
    """The bytes of every file in ``folder`` and below."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def model_bytes(folder: Path) -> int:
    """The bytes of the files a prediction reads (config, vocabulary, model, a lexicon)."""
    total = sum((folder / n).stat().st_size for n in MODEL_FILES if (folder / n).is_file())
    lexicon = folder / LEXICON_DIR
    return total + (folder_bytes(lexicon) if lexicon.is_dir() else 0)


def measure(clf: Classifier, folder: Path, splits: dict[str, LabeledData]) -> dict[str, Any]:
    """Sizes; and on dev/test when given, the metrics and predict's texts per second (the best
    of three passes over the test texts, featurisation included)."""
    figures: dict[str, Any] = {"bytes": folder_bytes(folder), "model_bytes": model_bytes(folder)}
    for name in ("dev", "test"):
        if name in splits:
            metrics = clf.evaluate(splits[name])
            figures[name] = {
                k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "loss"
            }
    if "test" in splits:
        texts = splits["test"].texts
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            clf.predict_proba(texts)
            best = min(best, time.perf_counter() - started)
        figures["texts_per_second"] = len(texts) / best
    return figures
