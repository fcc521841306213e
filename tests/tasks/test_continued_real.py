"""Continued training on real data (slow): SST-2's classifier continued on MR, PTB's word2vec
continued on the Lee corpus. The full figures (MR's ten folds) are bench/continue.py's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffnlp.experiments.cv import split_off, strata, stratified_folds, subset
from ffnlp.tasks.classify import read_split, resolve_config, train_classifier
from tests.conftest import ROOT, shared_data

pytestmark = pytest.mark.slow


def test_sst2_continued_on_an_mr_fold_beats_scratch_and_the_sst2_model(tmp_path: Path) -> None:
    sst2 = shared_data("sst2")
    mr = shared_data("mr/rt-polarity.all")
    config = ROOT / "configs" / "sst2_ffnn.toml"
    base = train_classifier(
        sst2 / "stsa.binary.train", dev=sst2 / "stsa.binary.dev", config=config, out=tmp_path / "a"
    )
    latin1 = ['data.encoding="latin-1"']
    cfg = resolve_config(config, latin1)
    examples = read_split(mr, cfg)
    keys = strata(examples)
    test_idx = stratified_folds(keys, 10, cfg.train.seed)[0]  # fold 1 of `classify cv`
    train_idx = np.setdiff1d(np.arange(len(examples)), test_idx)
    train_idx, dev_idx = split_off(keys, train_idx, 0.1, cfg.train.seed)
    train, dev, test = (subset(examples, i) for i in (train_idx, dev_idx, test_idx))
    scratch = train_classifier(train, dev=dev, config=config, overrides=latin1, out=tmp_path / "s")
    continued = train_classifier(
        train, dev=dev, overrides=latin1, out=tmp_path / "c", init_from=tmp_path / "a"
    )
    accuracy = {
        name: model.evaluate(test)["accuracy"]
        for name, model in (("base", base), ("scratch", scratch), ("continued", continued))
    }
    assert accuracy["continued"] > accuracy["scratch"] + 0.03, accuracy
    assert accuracy["continued"] > accuracy["base"], accuracy
    assert continued.summary["init_from"]["run"] == str((tmp_path / "a").resolve())
    assert continued.summary["init_from"]["input_rows"]["after"] > len(
        base.featurizer.bag.vocabulary_
    )


def test_ptb_word2vec_continued_on_lee_knows_new_words_and_keeps_its_similarity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ffnlp.tasks.w2v import train_word2vec

    ptb = shared_data("ptb/ptb.train.txt.gz")
    lee = shared_data("lee_corpus/lee_background.cor")
    monkeypatch.chdir(ROOT)  # the preset names its evaluation files relative to the checkout
    config = ROOT / "configs" / "ptb_w2v.toml"
    base = train_word2vec(ptb, config=config, out=tmp_path / "ptb")
    continued = train_word2vec(
        lee, overrides=["corpus.lowercase=true"], out=tmp_path / "lee", init_from=tmp_path / "ptb"
    )
    added = continued.vocab.itos[len(base.vocab) :]
    assert continued.vocab.itos[: len(base.vocab)] == base.vocab.itos
    assert len(added) > 100
    neighbours = continued.most_similar(added[0], k=5)
    assert len(neighbours) == 5 and all(w != added[0] for w, _ in neighbours)
    before = base.summary["evaluation"]["similarity"]["wordsim353.tsv"]["spearman"]
    after = continued.summary["evaluation"]["similarity"]["wordsim353.tsv"]["spearman"]
    assert after >= 0.95 * before, (before, after)
    lineage = continued.summary["init_from"]
    assert lineage["vocab"] == {"before": len(base.vocab), "after": len(continued.vocab)}
