"""fastText's model (SubwordSkipGram): its update is fastText's, the fused step makes the same
update as the autograd reference, and the vectors are means of a word's rows."""

from __future__ import annotations

import random

import pytest
import torch

from ffnlp.errors import ModelFileError
from ffnlp.features.subwords import SubwordTable, subword_buckets
from ffnlp.models.kernels.sgns_cpu import fused_step_layout, subword_step_layout
from ffnlp.models.subword_skipgram import SubwordSkipGram

# 80 short words over a small alphabet: many shared n-grams, and buckets shared by collisions
_RNG = random.Random(0)
WORDS = sorted(
    {"".join(_RNG.choice("abcdef") for _ in range(_RNG.randint(1, 7))) for _ in range(100)}
)[:80]


def make(fused: bool = True, workers: int = 1, cbow: bool = False) -> SubwordSkipGram:
    torch.manual_seed(1)
    model = SubwordSkipGram.from_words(
        WORDS, 2, 4, 61, dim=6, fused=fused, workers=workers, cbow=cbow
    )
    with torch.no_grad():
        model.output.weight.normal_(0, 0.5)  # not zero, so both tables move at once
    return model


def random_batch(v: int, pairs: int, seed: int, negatives: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "center": torch.randint(v, (pairs,), generator=g).sort().values,  # runs share a centre
        "context": torch.randint(v, (pairs,), generator=g),
        "negatives": torch.randint(v, (pairs, negatives), generator=g),
    }


def test_the_table_gives_each_word_its_row_and_its_ngram_buckets() -> None:
    model = make()
    assert model.input.num_embeddings == len(WORDS) + 61
    word = WORDS[7]
    rows, offsets = model.bags(torch.tensor([7]))
    expected = [7, *(len(WORDS) + b for b in subword_buckets(word, 2, 4, 61))]
    assert rows.tolist() == expected and offsets.tolist() == [0]
    model.check_subwords()  # a well-formed table passes


def test_vectors_are_the_means_of_the_rows() -> None:
    model = make()
    w = model.input.weight.detach()
    vectors = model.word_vectors()  # (V, D)
    for i in (0, 5, len(WORDS) - 1):
        rows, _ = model.bags(torch.tensor([i]))
        torch.testing.assert_close(vectors[i], w[rows].mean(0))
    unseen = "abcab9"
    rows = [len(WORDS) + b for b in subword_buckets(unseen, 2, 4, 61)]
    assert model.oov_rows(unseen) == rows
    oov = model.oov_vector(unseen)
    assert oov is not None
    torch.testing.assert_close(oov, w[rows].mean(0))
    torch.testing.assert_close(model.ngram_vectors(), w[len(WORDS) :])
    no_ngrams = SubwordSkipGram.from_words(WORDS, 5, 6, 61, dim=6)
    assert no_ngrams.oov_vector("") is None  # "<>" has no 5- or 6-gram


def test_the_gradient_of_a_mean_reaches_each_of_its_rows_in_full() -> None:
    """fastText's unsupervised update: every row of the centre's bag moves by the whole step of
    the mean vector, not by a share of it (the value is still the mean)."""
    model = make(fused=False)
    rows, offsets = model.bags(torch.tensor([3, 9]))
    hidden = model.centre_vectors(rows, offsets)  # (2, D)
    w = model.input.weight.detach()
    torch.testing.assert_close(hidden[0], w[rows[: offsets[1]]].mean(0))
    upstream = torch.randn(2, 6)
    (hidden * upstream).sum().backward()
    grad = model.input.weight.grad.to_dense()
    expected = torch.zeros_like(grad)
    expected.index_add_(0, rows[: offsets[1]], upstream[0].expand(int(offsets[1]), 6))
    expected.index_add_(0, rows[offsets[1] :], upstream[1].expand(len(rows) - int(offsets[1]), 6))
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("ahead", [False, True])
def test_the_fused_step_makes_the_autograd_sgd_update(workers: int, ahead: bool) -> None:
    """sgd_step = loss.backward() + SGD(lr).step() of the plain PyTorch model, on batches with
    repeated centre words, repeated targets and buckets shared between words; with the layout
    computed here or (as the batch producer does) ahead."""
    lr = 0.1
    fused = make(workers=workers).double()  # float64: the two sum in different orders
    ref = make(fused=False).double()
    ref.load_state_dict(fused.state_dict())
    opt = torch.optim.SGD(ref.parameters(), lr=lr)
    for step in range(3):
        batch = random_batch(len(WORDS), 700, seed=step)
        if ahead:
            batch.update(fused_step_layout(batch))
            batch.update(
                subword_step_layout(
                    batch["centre_words"], fused.subword_rows, fused.subword_offsets
                )
            )
        loss = fused.sgd_step(batch, lr)
        opt.zero_grad()
        expected = ref.loss(batch)
        expected.backward()
        opt.step()
        assert loss is not None
        assert loss.item() == pytest.approx(expected.item(), rel=1e-9)
        for name, p in ref.state_dict().items():
            torch.testing.assert_close(fused.state_dict()[name], p, rtol=1e-9, atol=1e-10)


def test_the_fused_step_on_runs_cut_for_a_small_vocabulary() -> None:
    """A vocabulary so small that a centre's run is cut into pieces (the step recomputes its
    layout, bags included): still the reference update."""
    words = ["ab", "bc", "cd", "de", "ea", "abc", "bcd", "cde"]
    torch.manual_seed(0)
    fused = SubwordSkipGram.from_words(words, 2, 3, 13, dim=4)
    ref = SubwordSkipGram.from_words(words, 2, 3, 13, dim=4, fused=False)
    ref.load_state_dict(fused.state_dict())
    batch = random_batch(len(words), 40, seed=5)
    batch.update(fused_step_layout(batch))  # runs of up to 40 / 8 pairs: longer than 8 // 6
    batch.update(
        subword_step_layout(batch["centre_words"], fused.subword_rows, fused.subword_offsets)
    )
    assert fused.sgd_step(batch, 0.05) is not None
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    ref.loss(batch).backward()
    opt.step()
    for name, p in ref.state_dict().items():
        torch.testing.assert_close(fused.state_dict()[name], p, rtol=1e-4, atol=1e-5)


def test_the_step_declines_what_autograd_must_do() -> None:
    batch = random_batch(len(WORDS), 8, seed=0)
    assert make(cbow=True).sgd_step(batch, 0.1) is None
    assert make(fused=False).sgd_step(batch, 0.1) is None
    assert make().sgd_step({**batch, "pair_center": torch.zeros(8, dtype=torch.long)}, 0.1) is None


def test_cbow_averages_every_row_of_the_window_and_updates_each_in_full() -> None:
    model = make(fused=False, cbow=True)
    context = torch.tensor([1, 2, 3, 4, 5])  # windows [1, 2] and [3, 4, 5]
    offsets = torch.tensor([0, 2])
    targets = torch.tensor([[0, 7], [6, 8]])  # (B, T)
    scores = model(context, targets, offsets)  # (B, T)
    w_in, w_out = model.input.weight.detach(), model.output.weight.detach()
    first = torch.cat([model.bags(torch.tensor([1]))[0], model.bags(torch.tensor([2]))[0]])
    torch.testing.assert_close(scores[0], w_out[targets[0]] @ w_in[first].mean(0))
    scores[0, 0].backward()
    grad = model.input.weight.grad.to_dense()
    expected = torch.zeros_like(grad).index_add_(0, first, w_out[0].expand(len(first), 6))
    torch.testing.assert_close(grad, expected)


def test_a_few_steps_lower_the_loss() -> None:
    model = make()
    batch = random_batch(len(WORDS), 100, seed=1)
    before = model.loss(batch).item()
    for _ in range(10):
        model.sgd_step(batch, 0.01)
    assert model.loss(batch).item() < before


def test_damaged_tables_are_refused() -> None:
    model = make()
    with torch.no_grad():
        model.subword_rows[model.subword_offsets[4]] = 5  # word 4's bag starts with another row
    with pytest.raises(ModelFileError, match="a word's bag does not start with its own row"):
        model.check_subwords()
    model = make()
    with torch.no_grad():
        model.subword_rows[-1] = model.input.num_embeddings  # one past the table
    with pytest.raises(ModelFileError, match="subword_rows points outside the input table"):
        model.check_subwords()
    model = make()
    with torch.no_grad():
        model.subword_offsets[-1] -= 1
    with pytest.raises(ModelFileError, match="subword_offsets are not the bounds"):
        model.check_subwords()


def test_set_subwords_refuses_a_table_of_other_settings() -> None:
    model = make()
    with pytest.raises(ValueError, match="another vocabulary or settings"):
        model.set_subwords(SubwordTable(WORDS, 3, 4, 61))
