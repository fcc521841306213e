"""PairBatches: the batch dicts the model reads, and the same batches with or without prefetch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ffnlp.tasks.w2v import EncodedCorpus, PairBatches, resolve_config
from tests.tasks.w2v.test_train import topic_corpus


def _source(tmp_path: Path, *overrides: str, step_layout: bool = False) -> PairBatches:
    cfg = resolve_config(None, ["model.min_count=1", "corpus.chunk_tokens=1000", *overrides])
    enc = EncodedCorpus.read(topic_corpus(tmp_path / "c.txt", 300), cfg.corpus, min_count=1)
    return PairBatches(enc, cfg.model, prefetch=False, step_layout=step_layout)


def _first(source: PairBatches) -> dict[str, torch.Tensor]:
    return next(iter(source.batches(64, torch.Generator().manual_seed(3))))


def test_skipgram_batch_keys_and_shapes(tmp_path: Path) -> None:
    b = _first(_source(tmp_path, "model.negative=3"))
    assert list(b) == ["center", "context", "negatives", "targets"]
    pairs = len(b["center"])
    assert pairs > 0 and b["context"].shape == (pairs,) and b["negatives"].shape == (pairs, 3)
    assert torch.equal(b["targets"], torch.cat([b["context"][:, None], b["negatives"]], 1))


def test_the_fused_step_layout_is_added_to_skipgram_batches(tmp_path: Path) -> None:
    plain = _first(_source(tmp_path))
    laid_out = _first(_source(tmp_path, step_layout=True))
    assert list(laid_out)[:4] == list(plain) and len(laid_out) > len(plain)
    assert all(torch.equal(plain[k], laid_out[k]) for k in plain)


def test_shared_noise_batch_keys_and_shapes(tmp_path: Path) -> None:
    b = _first(_source(tmp_path, "model.shared_negatives=4", "model.negative=6"))
    # the first key counts the batch's examples: its pairs
    assert list(b) == ["context", "center", "pair_center", "noise_weight", "negatives"]
    pairs, centers = len(b["context"]), len(b["center"])
    assert b["pair_center"].shape == (pairs,) and b["negatives"].shape == (centers, 4)
    assert int(b["pair_center"].max()) == centers - 1
    counts = torch.bincount(b["pair_center"], minlength=centers)
    torch.testing.assert_close(b["noise_weight"], counts.float() * 6 / 4)


def test_cbow_batch_keys_and_shapes(tmp_path: Path) -> None:
    b = _first(_source(tmp_path, 'model.architecture="cbow"', "model.negative=2"))
    assert list(b) == ["center", "context", "offsets", "negatives"]
    centers = len(b["center"])
    assert b["offsets"].shape == (centers,) and b["negatives"].shape == (centers, 2)
    assert b["offsets"][0] == 0 and torch.all(b["offsets"][1:] > b["offsets"][:-1])
    assert int(b["offsets"][-1]) < len(b["context"])


@pytest.mark.parametrize("overrides", [[], ["model.shared_negatives=3"]])
def test_prefetch_thread_gives_the_same_batches(tmp_path: Path, overrides: list[str]) -> None:
    source = _source(tmp_path, *overrides)
    a = list(source.batches(64, torch.Generator().manual_seed(3)))
    source.prefetch = True
    b = list(source.batches(64, torch.Generator().manual_seed(3)))
    assert len(a) == len(b) == source.num_batches(64)
    for x, y in zip(a, b, strict=True):
        assert list(x) == list(y)
        assert all(torch.equal(x[k], y[k]) for k in x)
    # stopping early shuts the producer thread down
    it = source.batches(64, torch.Generator().manual_seed(3))
    next(it)
    it.close()
