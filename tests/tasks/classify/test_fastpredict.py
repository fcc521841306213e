"""Predict's NumPy path against the PyTorch path it stands in for: the forward pass of every
covered model, ``Classifier.predict``, and ``ffnlp classify predict`` (the same output with
``FFNLP_FAST_PREDICT=0``), with start-up free of PyTorch."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ffnlp import jit
from ffnlp.features import ngram_file
from ffnlp.features.fast import NgramRows, split_chunk
from ffnlp.models import numpy_forward
from ffnlp.models.activations import ACTIVATIONS
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.logreg import LogisticRegression
from ffnlp.models.pooled import PooledEmbeddingClassifier
from ffnlp.models.registry import spec
from ffnlp.tasks import fastpredict
from ffnlp.tasks.classify import Classifier, load, train_classifier
from ffnlp.tasks.sample import write_sample

ROOT = Path(__file__).resolve().parents[3]


# -- the forward pass -------------------------------------------------------------------------


def _bags(rows: int, texts: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, texts)
    lengths[1] = 0  # an empty text
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    ids = rng.integers(0, rows, int(offsets[-1]))
    weights = rng.random(len(ids)).astype(np.float32)
    return ids, offsets, weights


def _torch_probs(model: torch.nn.Module, ids: np.ndarray, offsets: np.ndarray, w: np.ndarray):
    model.eval()
    batch = {
        "ids": torch.from_numpy(ids),
        "offsets": torch.from_numpy(offsets[:-1].copy()),
        "weights": torch.from_numpy(w),
    }
    with torch.no_grad():
        return model.head.probabilities(model.logits(batch)).numpy()


def _numpy_probs(kind: str, model: torch.nn.Module, args: dict, ids, offsets, weights):
    arrays = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    forward = numpy_forward.build(
        kind, arrays, args, args["num_classes"], bool(args.get("multilabel"))
    )
    assert forward is not None
    uses_weights = kind != "pooled"
    return forward.probabilities(forward.logits(ids, offsets, weights if uses_weights else None))


CLASSES = [(2, False), (5, False), (4, True)]
COVERED_ACTIVATIONS = sorted(numpy_forward.ACTIVATIONS)


@pytest.mark.parametrize(("classes", "multilabel"), CLASSES)
@pytest.mark.parametrize("texts", [3, 1500])  # the position loop and SciPy's product
def test_logreg_forward_is_torch_s(classes: int, multilabel: bool, texts: int) -> None:
    torch.manual_seed(0)
    args = {"num_features": 40, "num_classes": classes, "multilabel": multilabel}
    model = LogisticRegression(**args)
    torch.nn.init.normal_(model.linear.weight)
    ids, offsets, w = _bags(40, texts, 1)
    want = _torch_probs(model, ids, offsets, w)
    got = _numpy_probs("logreg", model, args, ids, offsets, w)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert (got.argmax(1) == want.argmax(1)).all()


@pytest.mark.parametrize("activation", COVERED_ACTIVATIONS)
@pytest.mark.parametrize(("classes", "multilabel"), CLASSES)
@pytest.mark.parametrize("hidden", [[], [7], [6, 5]])
def test_feature_mlp_forward_is_torch_s(
    activation: str, classes: int, multilabel: bool, hidden: list[int]
) -> None:
    torch.manual_seed(1)
    args = {
        "num_features": 50,
        "num_classes": classes,
        "hidden": hidden,
        "activation": activation,
        "dropout": 0.3,
        "multilabel": multilabel,
    }
    model = FeatureMLP(**args)
    for ids_count in (4, 1500):
        ids, offsets, w = _bags(50, ids_count, 2)
        want = _torch_probs(model, ids, offsets, w)
        got = _numpy_probs("mlp", model, args, ids, offsets, w)
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert (got.argmax(1) == want.argmax(1)).all()


@pytest.mark.parametrize("pooling", ["mean", "sum", "max", "mean_max"])
@pytest.mark.parametrize(("classes", "multilabel"), CLASSES)
@pytest.mark.parametrize("hidden", [[], [6]])
def test_pooled_forward_is_torch_s(
    pooling: str, classes: int, multilabel: bool, hidden: list[int]
) -> None:
    torch.manual_seed(2)
    args = {
        "num_embeddings": 60,
        "num_classes": classes,
        "dim": 8,
        "pooling": pooling,
        "hidden": hidden,
        "activation": "tanh",
        "input_dropout": 0.5,
        "word_dropout": 0.2,
        "multilabel": multilabel,
    }
    model = PooledEmbeddingClassifier(**args)
    torch.nn.init.normal_(model.embedding.weight)
    for texts in (5, 1500):
        ids, offsets, w = _bags(60, texts, 3)
        want = _torch_probs(model, ids, offsets, w)
        got = _numpy_probs("pooled", model, args, ids, offsets, w)
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert (got.argmax(1) == want.argmax(1)).all()


def test_a_text_s_numbers_do_not_depend_on_its_chunk() -> None:
    rng = np.random.default_rng(4)
    table = rng.standard_normal((300, 16)).astype(np.float32)
    ids, offsets, w = _bags(300, 1600, 5)
    whole = numpy_forward.bag_sum(table, ids, offsets, w)
    assert len(ids) >= numpy_forward.SPARSE_PRODUCT_FROM  # SciPy's product for the whole
    for b in range(0, 1600, 97):  # one text at a time: the position loop
        lo, hi = offsets[b], offsets[b + 1]
        one = numpy_forward.bag_sum(table, ids[lo:hi], np.array([0, hi - lo]), w[lo:hi])
        assert np.array_equal(one[0], whole[b])


@pytest.mark.parametrize("width", [1, 16])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_every_way_of_adding_bags_gives_the_same_numbers(
    width: int, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The position loop, SciPy's product (``sparse_from=0``; its loop called directly, or
    through ``csr_matrix``) and one text's running sum add a bag's rows in the same order: the
    same bits (a width of 1 is the projected pooled table, where a plain sum over the rows
    would add them pairwise)."""
    rng = np.random.default_rng(width)
    table = rng.standard_normal((300, width)).astype(np.float32)
    for long_texts in (False, True):
        ids, offsets, w = _bags(300, 40, 6)
        if long_texts:  # 8 bags of 60 rows: long running sums
            ids = rng.integers(0, 300, 8 * 60)
            offsets = np.arange(0, 8 * 60 + 1, 60)
            w = rng.random(len(ids)).astype(np.float32)
        weights = w if mode == "sum" else None
        loop = numpy_forward.bag_sum(table, ids, offsets, weights, mode=mode)
        assert len(ids) < numpy_forward.SPARSE_PRODUCT_FROM  # the loop, above
        scipy = numpy_forward.bag_sum(table, ids, offsets, weights, mode=mode, sparse_from=0)
        assert np.array_equal(loop, scipy)
        with monkeypatch.context() as patch:
            patch.setattr(numpy_forward, "_csr_loop", lambda: None)  # csr_matrix's product
            public = numpy_forward.bag_sum(table, ids, offsets, weights, mode=mode, sparse_from=0)
        assert np.array_equal(loop, public)
        for b in range(len(offsets) - 1):
            lo, hi = offsets[b], offsets[b + 1]
            one = numpy_forward.bag_sum(
                table,
                ids[lo:hi],
                np.array([0, hi - lo]),
                None if weights is None else weights[lo:hi],
                mode=mode,
            )
            assert np.array_equal(one[0], loop[b])


def test_uncovered_models_are_left_to_torch() -> None:
    model = FeatureMLP(10, 2, hidden=[4], activation="gelu")
    arrays = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    assert numpy_forward.build("mlp", arrays, {"activation": "gelu"}, 2, False) is None
    assert numpy_forward.build("lexicon_thing", arrays, {}, 2, False) is None
    doubles = {k: v.astype(np.float64) for k, v in arrays.items()}
    assert numpy_forward.build("mlp", doubles, {"activation": "relu"}, 2, False) is None


def test_the_numpy_activations_are_the_torch_ones() -> None:
    x = torch.linspace(-4, 4, 101)
    for name, fn in numpy_forward.ACTIVATIONS.items():
        want = ACTIVATIONS[name].make()(x).numpy()
        np.testing.assert_allclose(fn(x.numpy()), want, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("kind", fastpredict.COVERED_TYPES)
def test_the_known_model_arguments_are_the_classes_own(kind: str) -> None:
    parameters = set(inspect.signature(spec(kind).cls.__init__).parameters) - {"self"}
    assert parameters - fastpredict.OPTIONAL_ARGS == fastpredict.MODEL_ARGS[kind]


# -- Classifier.predict and the command -------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fastpredict")
    sample = write_sample(root / "data", sizes=(300, 60, 60))
    multi = root / "data" / "tags.txt"
    lines = []
    for i in range(240):
        tags = ["__label__a"] + (["__label__b"] if i % 3 == 0 else []) + [f"__label__c{i % 4}"]
        words = ["Salt", "pan?", "steak", "Rest", "oven!", "bake"][i % 6 :] + ["x"] * (i % 2)
        lines.append(" ".join(tags + words))
    multi.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pooled = ['model.type="pooled"', 'features.kind="ids"', "model.pooled.dim=8"]
    configs = {
        "logreg": [],
        "mlp": ['model.type="mlp"', "model.mlp.hidden=[6]"],
        "pooled": pooled,
        "pooled_trigrams": [*pooled, "features.ngram_range=[1, 3]", "model.mlp.hidden=[5]"],
        "multiclass_mlp": ['model.type="mlp"', "model.mlp.hidden=[4, 3]"],
    }
    out = {}
    for name, sets in configs.items():
        train_classifier(
            sample["train"], overrides=["train.epochs=2", *sets], out=root / name, seed=1
        )
        out[name] = root / name
    train_classifier(
        multi,
        config="cooking_multilabel",
        overrides=["train.epochs=2", "model.pooled.dim=8"],
        out=root / "multilabel",
        seed=1,
    )
    out["multilabel"] = root / "multilabel"
    out["test"] = sample["test"]
    return out


def _lines(count: int) -> list[str]:
    words = ["a", "gripping", "funny", "film", "dull", "long", "joy", "flat", "Salt", "steak?"]
    rng = np.random.default_rng(7)
    return [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(count)]


NAMES = ["logreg", "mlp", "pooled", "pooled_trigrams", "multilabel"]


@pytest.mark.parametrize("name", NAMES)
def test_classifier_predict_agrees_with_the_torch_path(
    runs: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clf = load(runs[name])
    assert clf.fast_path() is not None
    texts = _lines(500) + ["", "   ", "caf\u00e9 \u00a0 x", "a\x00b \x00"]
    fast = clf.predict_proba(texts)
    fast_top = clf.predict(texts, k=-1, threshold=0.2)
    monkeypatch.setenv(fastpredict.ENV, "0")
    assert clf.fast_path() is None
    ref = clf.predict_proba(texts)
    ref_top = clf.predict(texts, k=-1, threshold=0.2)
    np.testing.assert_allclose(fast, ref, atol=2e-6)
    assert (fast.argmax(1) == ref.argmax(1)).all()
    assert [[lab for lab, _ in t] for t in fast_top] == [[lab for lab, _ in t] for t in ref_top]


@pytest.mark.parametrize("name", [*NAMES, "multiclass_mlp"])
def test_the_compiled_loops_give_the_numpy_path_s_numbers(
    runs: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded classifier predicts through the compiled loops (ffnlp.jit); with FFNLP_JIT=0
    the NumPy code runs instead: the same sums of the first layer's rows, bit for bit, and the
    same probabilities to float rounding (the compiled head sums each product in input order,
    NumPy's BLAS in blocks), for every micro-batch size a server makes, Unicode, empty texts
    and unknown words included."""
    if not jit.enabled():
        pytest.skip("compiled kernels are off here (FFNLP_JIT=0 or no numba)")
    clf = load(runs[name])
    fast = clf.fast_path()
    assert fast is not None and fast.features.compiled and fast.forward.compiled
    texts = _lines(200) + ["", "caf\u00e9 \u00a0 x", "unseen zzz", "\u00c9T\u00c9 film", "a\x00b"]
    texts.insert(3, " ".join(_lines(60)))  # a long text: more n-grams than the in-place sort takes
    # the texts' bytes are split in the kernel for the whitespace tokenizer; the regular
    # expression's tokens (the multi-label run's) are looked up by the compiled loops
    from_bytes = fast.features.rows_of_texts(clf.tokenizer, texts)
    assert (from_bytes is not None) == (clf.tokenizer.kind == "whitespace")
    # ...and there, the texts go to the sums of their rows in one fused call
    assert (fast.fused_sums(texts) is not None) == (clf.tokenizer.kind == "whitespace")
    batches = [texts[i : i + size] for size in (1, 3, 30, 64) for i in range(0, 140, size)]
    compiled = [clf.predict_proba(b) for b in [texts, *batches]]
    sums = [fast.fused_sums(b) for b in [texts, *batches]]
    monkeypatch.setenv(jit.ENV, "0")
    jit.reset()
    try:
        assert clf.fast_path() is fast and fast.features.rows_of_texts(clf.tokenizer, texts) is None
        assert fast.fused_sums(texts) is None
        reference = [clf.predict_proba(b) for b in [texts, *batches]]
        reference_sums = [_numpy_sums(fast, b) for b in [texts, *batches]]
    finally:
        monkeypatch.delenv(jit.ENV)
        jit.reset()
    for got, want in zip(compiled, reference, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert (got.argmax(1) == want.argmax(1)).all()
    for got_sums, want_sums in zip(sums, reference_sums, strict=True):
        assert got_sums is None or np.array_equal(got_sums, want_sums)


def _numpy_sums(fast: fastpredict.FastClassifier, texts: list[str]) -> np.ndarray:
    """The first layer's sums of ``texts`` by the NumPy code (split_chunk, the featuriser's
    rows, numpy_forward.bag_sum), as the forward pass makes them without compiled loops."""
    forward = fast.forward
    rows = fast.features.rows(*split_chunk(fast.tokenizer, texts))
    table, mode = forward.summed()
    weights = rows[2] if len(rows) == 3 and forward.kind != "pooled" else None
    return numpy_forward.bag_sum(table, rows[0], rows[1], weights, mode=mode)


def test_the_fast_path_follows_the_model_s_weights(runs: dict[str, Path]) -> None:
    clf = load(runs["pooled"])
    before = clf.predict_proba(["a funny film"])
    with torch.no_grad():
        clf.model.embedding.weight.mul_(3.0)
    after = clf.predict_proba(["a funny film"])
    assert not np.allclose(before, after)


def test_the_fast_path_is_kept_until_a_tensor_is_swapped(runs: dict[str, Path]) -> None:
    clf = load(runs["mlp"])
    first = clf.fast_path()
    assert first is not None and clf.fast_path() is first  # made once, kept
    before = clf.predict_proba(["a funny film", "a dull one"])
    weight = clf.model.input.weight
    weight.data = weight.data * 3.0  # another tensor (as ffnlp serve's mapped weights)
    assert clf.fast_path() is not first
    after = clf.predict_proba(["a funny film", "a dull one"])
    assert not np.allclose(before, after)


def test_a_model_in_training_mode_is_left_to_torch(runs: dict[str, Path]) -> None:
    clf = load(runs["mlp"])
    clf.model.train()
    assert clf.fast_path() is None
    clf.model.eval()
    assert clf.fast_path() is not None


def _cli(args: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ffnlp", *args], capture_output=True, env=full_env, input=stdin
    )


def _parse(lines: list[str]) -> list[tuple[list[str], list[float], str]]:
    out = []
    for line in lines:
        cells = line.split("\t")
        pairs, text = cells[:-1], cells[-1]
        out.append((pairs[0::2], [float(p) for p in pairs[1::2]], text))
    return out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", [[], ["--k", "-1", "--threshold", "0.3"]])
def test_the_command_prints_what_the_torch_path_prints(
    runs: dict[str, Path], name: str, options: list[str], tmp_path: Path
) -> None:
    data = tmp_path / "in.txt"
    data.write_text("\n".join(_lines(300) + ["", "caf\u00e9 x"]) + "\n", encoding="utf-8")
    args = ["classify", "predict", str(runs[name]), "--input", str(data), *options]
    fast = _cli(args)
    ref = _cli(args, {fastpredict.ENV: "0"})
    assert fast.returncode == ref.returncode == 0, fast.stderr + ref.stderr
    got = _parse(fast.stdout.decode().splitlines())
    want = _parse(ref.stdout.decode().splitlines())
    assert len(got) == len(want) == 302
    for (labels, probs, text), (labels2, probs2, text2) in zip(got, want, strict=True):
        assert (labels, text) == (labels2, text2)
        assert np.allclose(probs, probs2, atol=1.01e-4)  # printed to 4 decimals


@pytest.mark.parametrize("name", ["mlp", "multilabel"])
def test_the_json_output_is_the_torch_path_s(runs: dict[str, Path], name: str) -> None:
    text = "\n".join(_lines(50)).encode()
    args = ["classify", "predict", str(runs[name]), "--k", "3", "--json"]
    fast = _cli(args, stdin=text)
    ref = _cli(args, {fastpredict.ENV: "0"}, stdin=text)
    got = [json.loads(line) for line in fast.stdout.decode().splitlines()]
    want = [json.loads(line) for line in ref.stdout.decode().splitlines()]
    assert len(got) == len(want) == 50
    for a, b in zip(got, want, strict=True):
        assert (a["text"], a["label"]) == (b["text"], b["label"])
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
        assert abs(a["prob"] - b["prob"]) < 2e-6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"good film\n\xff\xfe bad\n", "not valid utf-8"),
        (b"", "has no text to classify"),
        (b"a\x00b\n", "NUL"),
    ],
)
def test_bad_input_is_the_same_error_on_both_paths(
    runs: dict[str, Path], tmp_path: Path, content: bytes, message: str
) -> None:
    data = tmp_path / "in.txt"
    data.write_bytes(content)
    args = ["classify", "predict", str(runs["pooled"]), "--input", str(data)]
    fast = _cli(args)
    ref = _cli(args, {fastpredict.ENV: "0"})
    assert fast.returncode == ref.returncode == 1
    assert fast.stderr == ref.stderr
    assert message.lower() in fast.stderr.decode().lower()
    assert b"Traceback" not in fast.stderr


def test_a_huge_line_and_empty_lines_are_predicted(runs: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("\n" + "funny film " * 200_000 + "\n\n", encoding="utf-8")
    args = ["classify", "predict", str(runs["mlp"]), "--input", str(data)]
    fast = _cli(args)
    ref = _cli(args, {fastpredict.ENV: "0"})
    assert fast.returncode == 0, fast.stderr
    got = _parse(fast.stdout.decode().splitlines())
    want = _parse(ref.stdout.decode().splitlines())
    assert [g[0] for g in got] == [w[0] for w in want] and len(got) == 3
    assert np.allclose([g[1] for g in got], [w[1] for w in want], atol=1.01e-4)


def test_the_command_does_not_import_torch(runs: dict[str, Path]) -> None:
    code = (
        "import sys\nfrom ffnlp.cli.main import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    args = ["classify", "predict", str(runs["pooled"])]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], input=b"a funny film\n", capture_output=True
    )
    assert out.stdout.decode().startswith(("0\t", "1\t"))
    assert out.stderr.decode().strip().splitlines()[-1] == "False"
    off = subprocess.run(
        [sys.executable, "-c", code, *args],
        input=b"a funny film\n",
        capture_output=True,
        env={**os.environ, fastpredict.ENV: "0"},
    )
    assert off.stdout.split(b"\t")[0] == out.stdout.split(b"\t")[0]
    assert off.stderr.decode().strip().splitlines()[-1] == "True"


def _copy(run: Path, dest: Path) -> Path:
    dest.mkdir()
    for f in run.iterdir():
        if f.is_file():
            (dest / f.name).write_bytes(f.read_bytes())
    return dest


def test_a_bag_of_ngrams_run_keeps_its_features_as_arrays(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    assert (runs["mlp"] / ngram_file.FILE).is_file()
    assert not (runs["pooled"] / ngram_file.FILE).exists()  # ids: vocab.json is small
    fast = fastpredict.open_run(runs["mlp"])
    assert fast is not None and isinstance(fast.features, NgramRows)
    # the rows the NumPy path reads from the arrays are those of vocab.json's names
    reference = load(runs["mlp"]).featurizer.to_dict()
    from_names = NgramRows(reference)
    rows = fast.features
    assert rows.types == from_names.types and rows.unigram.tolist() == from_names.unigram.tolist()
    assert rows.idf is not None and rows.idf.tolist() == reference["idf"]
    texts = _lines(300)
    got = rows.rows(*split_chunk(fast.tokenizer, texts))
    want = from_names.rows(*split_chunk(fast.tokenizer, texts))
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)


def test_a_run_without_the_arrays_is_read_from_vocab_json(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    old = _copy(runs["mlp"], tmp_path / "old")
    (old / ngram_file.FILE).unlink()  # a run of an earlier version
    assert fastpredict.open_run(old) is not None
    data = tmp_path / "in.txt"
    data.write_text("\n".join(_lines(200)) + "\n", encoding="utf-8")
    with_file = _cli(["classify", "predict", str(runs["mlp"]), "--input", str(data), "--k", "-1"])
    without = _cli(["classify", "predict", str(old), "--input", str(data), "--k", "-1"])
    assert with_file.returncode == without.returncode == 0, with_file.stderr + without.stderr
    assert with_file.stdout == without.stdout and len(without.stdout.splitlines()) == 200
    assert load(old).predict_proba(["a funny film"]).tolist() == (
        load(runs["mlp"]).predict_proba(["a funny film"]).tolist()
    )


def test_a_damaged_file_of_arrays_is_left_to_the_checked_path(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    run = _copy(runs["mlp"], tmp_path / "run")
    raw = (run / ngram_file.FILE).read_bytes()
    (run / ngram_file.FILE).write_bytes(raw[: len(raw) - 100])
    assert fastpredict.open_run(run) is None
    out = _cli(["classify", "predict", str(run)], stdin=b"a funny film\n")
    assert out.returncode == 1 and out.stdout == b""
    assert out.stderr.decode().startswith(f"Error: {run / ngram_file.FILE} is corrupted")


def test_saving_another_kind_of_run_over_one_removes_its_arrays(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    run = _copy(runs["mlp"], tmp_path / "run")
    pooled = load(runs["pooled"])
    pooled.save(run)
    assert not (run / ngram_file.FILE).exists()
    assert load(run).predict("a funny film") == pooled.predict("a funny film")


@pytest.mark.parametrize("name", ["logreg", "mlp", "pooled"])
def test_the_mapped_weights_are_the_file_s_tensors(runs: dict[str, Path], name: str) -> None:
    path = runs[name] / "model.safetensors"
    mapped = fastpredict.map_weights(path)
    loaded = load_file(str(path))
    assert mapped is not None and mapped.keys() == loaded.keys()
    for key, array in mapped.items():
        assert array.dtype == loaded[key].dtype and np.array_equal(array, loaded[key])
        assert not array.flags.writeable  # pages of the file, never written


def _tensors(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


LAYOUTS = [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 8, True),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 12, False),  # bytes after
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 4, False),  # cut short
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8, False),  # wrong size
    ({"a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}, 8, False),  # not mapped
    (
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},  # overlaps a
        },
        12,
        False,
    ),
    (
        {
            "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},  # a gap before b
        },
        12,
        False,
    ),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, 8, False),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, True]}}, 8, False),
]


@pytest.mark.parametrize(("header", "size", "good"), LAYOUTS)
def test_weights_not_laid_out_as_safetensors_writes_them_are_not_mapped(
    tmp_path: Path, header: dict, size: int, good: bool
) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(_tensors(header, bytes(range(size))))
    mapped = fastpredict.map_weights(path)
    assert (mapped is not None) == good
    if good:
        assert mapped["a"].tolist() == np.frombuffer(bytes(range(8)), "<f4").tolist()


def test_runs_the_numpy_path_does_not_cover_are_predicted_with_torch(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    clf: Classifier = load(runs["mlp"])
    assert fastpredict.open_run(runs["mlp"]) is not None
    arch = json.loads((runs["mlp"] / "model.json").read_text())
    arch["args"]["activation"] = "gelu"  # a GELU has no NumPy form here
    copy = tmp_path / "gelu"
    copy.mkdir()
    for f in runs["mlp"].iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    (copy / "model.json").write_text(json.dumps(arch))
    assert fastpredict.open_run(copy) is None
    out = _cli(["classify", "predict", str(copy)], stdin=b"a funny film\n")
    assert out.returncode == 0 and out.stdout.decode().endswith("\ta funny film\n")
    assert clf.predict("a funny film")[0][0] in ("0", "1")


@pytest.mark.parametrize("name", [*NAMES, "multiclass_mlp"])
def test_the_best_label_path_is_top_k_of_the_probabilities(
    runs: dict[str, Path], name: str
) -> None:
    """``predict(k=1)`` of a single-label run takes each text's best label from the compiled
    head (no (B, K) probabilities in NumPy): the labels and numbers of ``top_k`` over
    ``predict_proba``, with and without a threshold, and the same error for a bad one."""
    from ffnlp.errors import ConfigError

    fast = load(runs[name]).fast_path()
    assert fast is not None
    texts = _lines(120) + ["", "caf\u00e9 \u00a0 x", "unseen zzz"]
    probs = fast.predict_proba(texts)
    for threshold in (None, 0.0, 0.6, 1.0):
        cut = fast.decision_thresholds(threshold)
        want = fastpredict.top_k(probs, fast.labels, 1, cut)
        for size in (1, 7, len(texts)):
            got = [
                p
                for i in range(0, len(texts), size)
                for p in fast.predict(texts[i : i + size], k=1, threshold=threshold)
            ]
            assert got == want
    if jit.enabled() and name != "multilabel":
        sums = fast.fused_sums(texts)
        assert sums is None or fast.forward.best_of_sums(sums) is not None  # the path ran
    with pytest.raises(ConfigError, match="threshold"):
        fast.predict(texts[:2], k=1, threshold=1.5)
    assert fast.predict([], k=1) == []


def test_the_best_label_path_without_the_compiled_head_is_top_k(
    runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A head the compiled call lacks (``best_of_sums`` gives ``None``: a tanh network):
    ``predict(k=1)`` takes the probabilities of the sums it already has, the same answers."""
    fast = load(runs["mlp"]).fast_path()
    assert fast is not None
    texts = _lines(40)
    want = fastpredict.top_k(fast.predict_proba(texts), fast.labels, 1, np.zeros(2))
    monkeypatch.setattr(fast.forward, "best_of_sums", lambda sums: None)
    assert fast.predict(texts, k=1) == want
    assert fast.predict(texts, k=1, threshold=0.7) == fastpredict.top_k(
        fast.predict_proba(texts), fast.labels, 1, np.full(2, 0.7)
    )
