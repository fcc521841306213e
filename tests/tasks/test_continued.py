"""Continued training (init_from): vocabularies grow, old rows keep their values, new rows are
fresh, labels grow, the lineage is recorded, and resuming a continued run works."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ffnlp.errors import ConfigError, DataError, Interrupted
from ffnlp.features.bag import BagOfNgrams
from ffnlp.tasks.classify import load, resolve_config, train_classifier
from ffnlp.tasks.classify import train as recipe
from ffnlp.tasks.continued import Base, RowMap, open_base, transfer
from ffnlp.tasks.sample import write_sample
from ffnlp.text.vocab import LabelVocab, Vocab
from tests.reliability.rundir_support import SignalAt, assert_same_weights

POOLED = ['model.type="pooled"', 'features.kind="ids"', "features.buckets=500"]
STUB = Base(Path("runs/earlier"), "classify", "toy", {}, "0" * 64)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), seed=0, sizes=(400, 80, 80))


@pytest.fixture(scope="module")
def more(tmp_path_factory) -> dict[str, Path]:
    """Other sentences of the sample, plus a third label and words the first sample lacks."""
    paths = write_sample(tmp_path_factory.mktemp("more"), seed=1, sizes=(300, 60, 60))
    extra = "".join(
        f"2 the {w} film is {w} and forgettable .\n" for w in ("mediocre", "middling", "so-so")
    )
    with paths["train"].open("a", encoding="utf-8") as fh:
        fh.write(extra * 5)
    return paths


@pytest.fixture(scope="module")
def pooled_run(sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "pooled"
    train_classifier(
        sample["train"],
        dev=sample["dev"],
        overrides=[*POOLED, "train.epochs=2", "train.lr=0.05"],
        out=out,
    )
    return out


@pytest.fixture(scope="module")
def mlp_run(sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "mlp"
    train_classifier(
        sample["train"],
        dev=sample["dev"],
        overrides=['model.type="mlp"', "train.epochs=2"],
        out=out,
    )
    return out


# ----------------------------------------------------------------------------- the pieces


class Toy(nn.Module):
    def __init__(self, rows: int, logits: int) -> None:
        super().__init__()
        self.table = nn.Embedding(rows, 4)  # (V, D)
        self.out = nn.Linear(4, logits)  # (K', D)


def test_transfer_keeps_old_rows_and_leaves_new_rows_as_initialised() -> None:
    old = Toy(5, 3)
    new = Toy(8, 4)
    fresh = {k: v.clone() for k, v in new.state_dict().items()}
    rows = RowMap(5, 8, torch.tensor([0, 1, 2, 6, 7]))  # rows 3 and 4 moved down: buckets
    classes = RowMap.appended(3, 4)
    transfer(STUB, old.state_dict(), new, [rows, classes])
    assert torch.equal(new.table.weight[[0, 1, 2, 6, 7]], old.table.weight)
    assert torch.equal(new.table.weight[[3, 4, 5]], fresh["table.weight"][[3, 4, 5]])
    assert torch.equal(new.out.weight[:3], old.out.weight)
    assert torch.equal(new.out.weight[3], fresh["out.weight"][3])
    assert torch.equal(new.out.bias[:3], old.out.bias)


def test_a_binary_head_becomes_a_softmax_over_zero_and_its_logit() -> None:
    old = Toy(5, 1)  # two classes, one logit z
    new = Toy(5, 3)
    transfer(STUB, old.state_dict(), new, [RowMap(1, 3, torch.arange(2), True)])
    x = torch.randn(7, 4)
    with torch.no_grad():
        z = old.out(x)[:, 0]
        logits = new.out(x)
    assert torch.allclose(logits[:, 1] - logits[:, 0], z, atol=1e-6)
    assert torch.equal(new.out.weight[0], torch.zeros(4)) and float(new.out.bias.detach()[0]) == 0.0
    # so the two old classes keep their probabilities relative to each other
    two = torch.softmax(logits[:, :2], dim=1)[:, 1]
    assert torch.allclose(two, torch.sigmoid(z), atol=1e-6)


def test_transfer_refuses_a_shape_that_growth_does_not_explain() -> None:
    with pytest.raises(ConfigError, match=r"'table.weight' is \(5, 4\) in the run and \(6, 4\)"):
        transfer(STUB, Toy(5, 2).state_dict(), Toy(6, 2), [RowMap.appended(5, 7)])


def test_vocab_extended_keeps_ids_adds_counts_and_appends_new_words() -> None:
    old = Vocab.build([["a", "b", "b", "c"]], specials=("<unk>",))
    more = Vocab.build([["d", "d", "b", "e", "f", "f"]], specials=())
    grown = old.extended(more, min_count=2)
    assert grown.itos[: len(old)] == old.itos
    assert grown.itos[len(old) :] == ["d", "f"]  # e is seen once: below min_count
    assert grown.counts[old["b"]] == 3 and grown.counts[grown["d"]] == 2
    assert old.extended(more, min_count=2, max_size=len(old) + 1).itos[len(old) :] == ["d"]
    assert grown.unk_id == old.unk_id


def test_label_vocab_extended_appends_new_labels_in_order() -> None:
    old = LabelVocab.build(["1", "0"])
    assert old.extended(["10", "1", "2"]).labels == ["0", "1", "2", "10"]


def test_bag_grow_appends_new_ngrams_and_counts_idf_over_all_documents() -> None:
    first = [["a", "good", "film"], ["a", "bad", "film"], ["good"]]
    second = [["a", "dull", "film"], ["dull", "and", "bad"]]
    bag = BagOfNgrams((1, 2), weighting="tfidf", sublinear_tf=True).fit(first)
    before = bag.feature_names
    added = bag.grow(second)
    assert bag.feature_names[: len(before)] == before
    assert added == len(bag.feature_names) - len(before) > 0
    assert "dull" in bag.feature_names[len(before) :]
    everything = BagOfNgrams((1, 2), weighting="tfidf", sublinear_tf=True).fit(first + second)
    assert bag.idf_ is not None and everything.idf_ is not None
    reference = dict(zip(everything.feature_names, everything.idf_, strict=True))
    assert set(reference) == set(bag.feature_names)
    for name, value in zip(bag.feature_names, bag.idf_, strict=True):
        assert value == pytest.approx(reference[name]), name
    assert bag.n_documents_ == 5


# ------------------------------------------------------------------ the classifier recipe


def start_of(run: Path, overrides: list[str]) -> tuple[recipe.Start, object]:
    base = open_base(run, "classify")
    cfg = resolve_config(base.config, overrides)
    return recipe.open_start(base, cfg), cfg


@pytest.mark.parametrize("which", ["pooled", "mlp"])
def test_old_rows_keep_their_values_and_new_rows_are_fresh(
    which, pooled_run, mlp_run, more
) -> None:
    run = pooled_run if which == "pooled" else mlp_run
    start, cfg = start_of(run, [])
    old = load(run)
    data = recipe.read_splits(cfg, more["train"], None, None)
    prepared = recipe.prepare(cfg, data, start)
    assert prepared.labels.labels == ["0", "1", "2"]
    assert prepared.rows is not None and prepared.rows.new_size > prepared.rows.old_size
    model, _, _ = recipe.fresh_model(cfg, prepared)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    recipe.continue_model(start, model, prepared)
    table = "embedding.weight" if which == "pooled" else "input.weight"
    before, after = old.model.state_dict()[table], model.state_dict()[table]
    index = prepared.rows.index
    new_rows = torch.ones(prepared.rows.new_size, dtype=torch.bool)
    new_rows[index] = False
    if which == "pooled":
        assert torch.equal(after[index], before)  # words and hash buckets alike
        vocab = old.featurizer.vocab
        grown = prepared.featurizer.vocab
        assert grown.itos[: len(vocab)] == vocab.itos and "mediocre" in grown.itos[len(vocab) :]
        assert torch.equal(after[len(grown) :], before[len(vocab) :])  # buckets moved, intact
    else:  # one logit -> three: the columns of classes 0 and 1 are (0, z)
        assert torch.equal(after[index, 1], before[:, 0])
        assert torch.equal(after[index, 0], torch.zeros(len(index)))
    assert int(new_rows.sum()) > 0
    assert torch.equal(after[new_rows], fresh[table][new_rows])
    assert after[new_rows].abs().sum() > 0  # initialised, not zeros


def test_a_continued_run_records_its_lineage_and_keeps_the_earlier_config(
    pooled_run, more, tmp_path
) -> None:
    out = tmp_path / "continued"
    clf = train_classifier(
        more["train"], dev=more["dev"], overrides=["train.epochs=1"], out=out, init_from=pooled_run
    )
    assert clf.run_dir == out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    lineage = summary["init_from"]
    assert lineage["run"] == str(pooled_run.resolve())
    config_bytes = (pooled_run / "config.toml").read_bytes()
    assert lineage["config_hash"] == hashlib.sha256(config_bytes).hexdigest()
    weights = (pooled_run / "model.safetensors").read_bytes()
    assert lineage["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert lineage["labels_added"] == ["2"] and lineage["model"] == "pooled"
    assert lineage["input_rows"]["after"] > lineage["input_rows"]["before"]
    assert json.loads((out / "init_from.json").read_text(encoding="utf-8")) == lineage
    # the earlier run's configuration is the base; --set applies over it
    assert clf.config.model.type == "pooled" and clf.config.features.buckets == 500
    assert clf.config.train.lr == 0.05 and clf.config.train.epochs == 1
    loaded = load(out)
    assert loaded.labels.labels == ["0", "1", "2"]
    assert loaded.predict("the film is mediocre and forgettable .")[0][0] in {"0", "1", "2"}

    # continuing the continued run keeps the whole chain
    again = train_classifier(
        more["train"], overrides=["train.epochs=1"], out=tmp_path / "again", init_from=out
    )
    assert again.summary["init_from"]["init_from"] == lineage


def test_a_config_file_layers_over_the_earlier_runs_config(pooled_run, more, tmp_path) -> None:
    layer = tmp_path / "layer.toml"
    layer.write_text("[train]\nepochs = 1\nbatch_size = 16\n", encoding="utf-8")
    clf = train_classifier(more["train"], config=layer, out=tmp_path / "run", init_from=pooled_run)
    assert clf.config.train.batch_size == 16 and clf.config.train.lr == 0.05
    assert clf.config.model.type == "pooled"


def test_resume_and_init_from_together_are_refused(pooled_run, more, tmp_path) -> None:
    with pytest.raises(ConfigError, match="--resume and --init-from cannot be used together"):
        train_classifier(more["train"], out=tmp_path / "x", resume=True, init_from=pooled_run)
    assert not (tmp_path / "x").exists()


def test_multilabel_data_cannot_continue_a_single_label_run(pooled_run, tmp_path) -> None:
    data = tmp_path / "multi.txt"
    data.write_text(
        "__label__0 __label__1 good and bad\n__label__1 good\n__label__0 bad\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match="multi-label data, but --init-from .* single-label"):
        train_classifier(data, out=tmp_path / "run", init_from=pooled_run)
    assert not (tmp_path / "run").exists()


def test_an_interrupted_continued_run_resumes_from_the_same_earlier_run(
    pooled_run, more, tmp_path
) -> None:
    settings = ["train.epochs=2", "train.checkpoint=true"]
    straight = tmp_path / "straight"
    train_classifier(more["train"], overrides=settings, out=straight, init_from=pooled_run)
    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train_classifier(
            more["train"],
            overrides=settings,
            out=out,
            init_from=pooled_run,
            callbacks=[SignalAt(5, signal.SIGTERM)],
        )
    assert (out / "init_from.json").is_file() and not (out / "summary.json").exists()
    resumed = train_classifier(more["train"], overrides=settings, out=out, resume=True)
    assert resumed.summary["init_from"]["run"] == str(pooled_run.resolve())
    assert_same_weights(straight, out)
    text = ["a dull film ."]
    assert np.array_equal(load(out).predict_proba(text), load(straight).predict_proba(text))


# ------------------------------------------------------------------ the lm and w2v recipes


def test_a_continued_lm_keeps_the_known_words_rows(sample, tmp_path) -> None:
    from ffnlp.tasks.lm import load as load_lm
    from ffnlp.tasks.lm import resolve_config as lm_config
    from ffnlp.tasks.lm import train as lm_recipe
    from ffnlp.tasks.lm import train_lm

    base_dir = tmp_path / "lm"
    settings = ["train.epochs=1", "model.hidden_sizes=[16]", "model.embedding_dim=8", "samples=0"]
    train_lm(sample["corpus"], overrides=settings, out=base_dir)
    extra = tmp_path / "extra.txt"
    extra.write_text("the zorblax film is a quux .\n" * 4, encoding="utf-8")
    base = open_base(base_dir, "lm")
    cfg = lm_config(base.config)
    start = lm_recipe.open_start(base, cfg)
    vocab = lm_recipe.vocabulary(cfg, extra, None, start)
    old = load_lm(base_dir)
    assert vocab.itos[: len(old.vocab)] == old.vocab.itos
    assert vocab.itos[len(old.vocab) :] == ["quux", "zorblax"]  # ties alphabetical
    model = lm_recipe.fresh_network(cfg, vocab)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    lm_recipe.continue_network(start, model, vocab)
    assert old.network is not None
    known = len(old.vocab)
    for name, before in old.network.state_dict().items():
        after = model.state_dict()[name]
        if after.shape[0] == len(vocab):  # a table with a row per word
            assert torch.equal(after[:known], before), name
            assert torch.equal(after[known:], fresh[name][known:]), name
        else:
            assert torch.equal(after, before), name


def test_a_continued_word2vec_leaves_words_absent_from_the_new_corpus_as_they_were(
    sample, tmp_path
) -> None:
    from ffnlp.tasks.w2v import load as load_w2v
    from ffnlp.tasks.w2v import train_word2vec

    settings = ["train.epochs=1", "model.min_count=2", "model.dim=16"]
    train_word2vec(sample["corpus"], overrides=settings, out=tmp_path / "a")
    extra = tmp_path / "extra.txt"
    extra.write_text("the zorblax film is good .\nthe zorblax plot is dull .\n" * 3, "utf-8")
    more = ["model.sample=0", "train.epochs=3"]  # a tiny corpus: keep every word, train it
    run = train_word2vec(extra, overrides=more, out=tmp_path / "b", init_from=tmp_path / "a")
    old = load_w2v(tmp_path / "a")
    assert run.vocab.itos == [*old.vocab.itos, "zorblax"]
    assert run.vocab.counts[old.vocab["film"]] == old.vocab.counts[old.vocab["film"]] + 3
    seen = {"the", "zorblax", "film", "is", "good", ".", "plot", "dull"}
    for word in ("funny", "boring", "script"):
        assert word not in seen
        assert np.array_equal(run.vector(word), old.vector(word)), word
    assert not np.array_equal(run.vector("film"), old.vector("film"))
    assert run.most_similar("zorblax", k=3)[0][0] != "zorblax"
    assert run.summary["init_from"]["vocab"] == {"before": len(old.vocab), "after": len(run.vocab)}


def test_the_earlier_runs_tensorboard_folder_is_not_inherited(sample, more, tmp_path) -> None:
    pytest.importorskip(
        "tensorboard", reason="needs the tensorboard extra: pip install -e '.[tensorboard]'"
    )
    logs = tmp_path / "tb"
    base = tmp_path / "base"
    train_classifier(
        sample["train"], overrides=["train.epochs=1", f'train.tensorboard="{logs}"'], out=base
    )
    before = sorted(p.name for p in logs.rglob("*"))
    clf = train_classifier(
        more["train"], overrides=["train.epochs=1"], out=tmp_path / "run", init_from=base
    )
    assert clf.config.train.tensorboard == ""
    assert sorted(p.name for p in logs.rglob("*")) == before


def test_resuming_a_continued_run_whose_earlier_run_is_gone_says_so(
    pooled_run, more, tmp_path
) -> None:
    import shutil

    from ffnlp.errors import ModelFileError

    earlier = shutil.copytree(pooled_run, tmp_path / "earlier")
    out = tmp_path / "cut"
    settings = ["train.epochs=2", "train.checkpoint=true"]
    with pytest.raises(Interrupted):
        train_classifier(
            more["train"],
            overrides=settings,
            out=out,
            init_from=earlier,
            callbacks=[SignalAt(3, signal.SIGTERM)],
        )
    shutil.rmtree(earlier)
    with pytest.raises(ModelFileError) as info:
        train_classifier(more["train"], overrides=settings, out=out, resume=True)
    assert str(info.value).startswith(
        f"{out} continues the run {earlier.resolve()} (its init_from.json), which --resume reads "
        "again to grow the same vocabulary: --init-from "
    )
    assert str(info.value).endswith(
        "does not exist; give the directory of a trained run; put that run back"
    )
    assert (out / "init_from.json").is_file()  # the interrupted run is left as it was
