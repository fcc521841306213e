"""ARPA files: a Kneser-Ney model exported scores exactly like the model (checked by ffnlp's reader
and by a back-off reader written from the format's definition), the file's structure, files from
other tools, bad files, and the CLI."""

from __future__ import annotations

import gzip
import math
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError
from ffnlp.models.arpa import BackoffNgram, read_arpa, write_arpa
from ffnlp.tasks.lm import load, train_lm
from ffnlp.tasks.lm.result import load_arpa
from tests.conftest import shared_data
from tests.extras import needs

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park", "<unk>"]


def write_corpus(path: Path, sentences: int, seed: int, extra: tuple[str, ...] = ()) -> Path:
    rng = random.Random(seed)
    lines = [
        " ".join(rng.choice(WORDS + list(extra)) for _ in range(rng.randint(1, 9)))
        for _ in range(sentences)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def kn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("arpa")
    train = write_corpus(root / "train.txt", 300, 0)
    test = write_corpus(root / "test.txt", 40, 1, extra=("zebra", "unicorn"))
    run = root / "kn4"
    train_lm(train, overrides=['kind="kneser_ney"', "kneser_ney.order=4", "samples=0"], out=run)
    arpa = root / "kn4.arpa"
    load(run).export_arpa(arpa)
    return {"train": train, "test": test, "run": run, "arpa": arpa, "root": root}


# ------------------------------------------------------------------------------------------------
# a back-off reader written from the format's definition (dicts, one sentence at a time)


def parse_arpa(
    text: str,
) -> tuple[dict[int, int], dict[int, list[tuple[float, tuple, float | None]]]]:
    """The \\data\\ counts and, per order, the entries in file order."""
    counts: dict[int, int] = {}
    sections: dict[int, list[tuple[float, tuple, float | None]]] = defaultdict(list)
    order = 0
    for line in text.split("\n"):
        line = line.strip()
        if not line or line in ("\\data\\", "\\end\\"):
            continue
        if line.startswith("ngram "):
            n, c = line[6:].split("=")
            counts[int(n)] = int(c)
        elif line.endswith("-grams:"):
            order = int(line[1:].split("-")[0])
        else:
            fields = line.split("\t")
            words = tuple(fields[1].split(" "))
            assert len(words) == order
            bow = float(fields[2]) if len(fields) == 3 else None
            sections[order].append((float(fields[0]), words, bow))
    return counts, sections


def textbook_scores(arpa_text: str, sentences: list[list[str]]) -> list[float]:
    """ln p of every word and </s> of every sentence, by the back-off rule read literally."""
    _, sections = parse_arpa(arpa_text)
    prob = {words: p for entries in sections.values() for p, words, _ in entries}
    bow = {words: b for entries in sections.values() for _, words, b in entries if b is not None}
    order = max(sections)

    def log10p(word: str, history: tuple[str, ...]) -> float:
        if history + (word,) in prob:
            return prob[history + (word,)]
        return bow.get(history, 0.0) + log10p(word, history[1:])

    vocab = {w for (w,) in (words for _, words, _ in sections[1])}
    out = []
    for sentence in sentences:
        tokens = ["<s>"] + [w if w in vocab else "<unk>" for w in sentence] + ["</s>"]
        for i in range(1, len(tokens)):
            history = tuple(tokens[max(0, i - order + 1) : i])
            out.append(log10p(tokens[i], history) * math.log(10))
    return out


def check_structure(arpa_text: str) -> None:
    """What an ARPA file must satisfy: counts as announced, each section sorted by the order of
    the unigram section, log10 probabilities <= 0, every prefix and suffix of a listed n-gram
    listed, a back-off weight exactly on the n-grams that start a longer one, no <s> predicted."""
    counts, sections = parse_arpa(arpa_text)
    assert sorted(counts) == sorted(sections) == list(range(1, len(counts) + 1))
    for n, entries in sections.items():
        assert counts[n] == len(entries), f"{n}-grams: {counts[n]} announced, {len(entries)} listed"
    rank = {words[0]: i for i, (_, words, _) in enumerate(sections[1])}
    assert list(rank)[:1] == ["<s>"]
    listed = {n: {words for _, words, _ in entries} for n, entries in sections.items()}
    top = max(sections)
    for n, entries in sections.items():
        keys = [tuple(rank[w] for w in words) for _, words, _ in entries]
        assert keys == sorted(keys), f"the {n}-grams are not sorted"
        for p, words, b in entries:
            assert p <= 0, f"{words}: log10 probability {p} > 0"
            if n > 1:
                assert words[:-1] in listed[n - 1] and words[1:] in listed[n - 1]
                assert "<s>" not in words[1:] and "</s>" not in words[:-1]
            starts_longer = n < top and any(g[:-1] == words for g in listed.get(n + 1, ()))
            if words != ("</s>",):
                assert (b is not None) == starts_longer, f"{words}: back-off weight {b}"
    unigram_mass = sum(10**p for p, words, _ in sections[1] if words != ("<s>",))
    assert unigram_mass == pytest.approx(1.0, abs=1e-9)


# ------------------------------------------------------------------------------------------------
# the exported file scores like the model


def test_the_arpa_file_gives_the_models_log_probs_token_for_token(kn: dict[str, Path]) -> None:
    model = load(kn["run"])
    corpus = model.encode(kn["test"])  # holds words the model never saw (-> <unk>)
    assert corpus.unknown > 0
    ours = model.own_log_probs(corpus)
    from_file = load_arpa(kn["arpa"], model.vocab).own_log_probs(corpus)
    # the file holds each value at full precision: equal up to ln vs log10 rounding
    np.testing.assert_allclose(from_file, ours, rtol=1e-13, atol=0)
    # and bit for bit what the back-off form of the model computes in memory
    assert model.ngram is not None and not isinstance(model.ngram, BackoffNgram)
    in_memory = BackoffNgram.from_kneser_ney(model.ngram).log_probs(corpus.ids.numpy())
    np.testing.assert_array_equal(from_file, in_memory)


def test_a_reader_written_from_the_format_definition_agrees(kn: dict[str, Path]) -> None:
    model = load(kn["run"])
    sentences = [line.split() for line in kn["test"].read_text().split("\n") if line.strip()]
    reference = textbook_scores(kn["arpa"].read_text(encoding="utf-8"), sentences)
    np.testing.assert_allclose(reference, model.own_log_probs(model.encode(kn["test"])), rtol=1e-12)


def test_kenlm_reads_the_file_and_gives_the_same_log_probs(kn: dict[str, Path]) -> None:
    kenlm = needs("kenlm")
    model = load(kn["run"])
    reader = kenlm.Model(str(kn["arpa"]))
    theirs = []
    for line in kn["test"].read_text(encoding="utf-8").split("\n"):
        if line.strip():  # log10 p of each word and of </s>; float32 inside KenLM
            theirs += [score for score, _, _ in reader.full_scores(line, bos=True, eos=True)]
    ours = model.own_log_probs(model.encode(kn["test"])) / math.log(10)
    np.testing.assert_allclose(theirs, ours, atol=2e-5, rtol=0)


def test_the_file_is_well_formed(kn: dict[str, Path]) -> None:
    check_structure(kn["arpa"].read_text(encoding="utf-8"))


def test_next_word_distributions_from_the_file_are_the_models(kn: dict[str, Path]) -> None:
    model = load(kn["run"])
    arpa = load_arpa(kn["arpa"], model.vocab)
    ids = model.encode(kn["test"]).ids.tolist()
    for t in range(1, 30):
        p = arpa.next_distribution(ids[:t])
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(p, model.next_distribution(ids[:t]), rtol=1e-12)


def test_a_gzip_file_and_its_own_vocabulary(kn: dict[str, Path], tmp_path: Path) -> None:
    model = load(kn["run"])
    packed = tmp_path / "kn4.arpa.gz"
    counts = model.export_arpa(packed)
    assert gzip.decompress(packed.read_bytes()) == kn["arpa"].read_bytes()
    alone = load(packed)  # an ARPA file loads by itself, with the file's vocabulary
    assert isinstance(ffnlp.load(packed), type(alone))
    assert alone.kind == "arpa" and set(alone.vocab.itos) == set(model.vocab.itos)
    assert alone.perplexity(kn["test"]) == pytest.approx(model.perplexity(kn["test"]), rel=1e-12)
    assert counts == [len(model.vocab) + 1] + model.summary["ngrams"][1:]


def test_an_order_one_model_and_a_re_export(tmp_path: Path, kn: dict[str, Path]) -> None:
    run = tmp_path / "kn1"
    train_lm(
        kn["train"], overrides=['kind="kneser_ney"', "kneser_ney.order=1", "samples=0"], out=run
    )
    model = load(run)
    model.export_arpa(tmp_path / "kn1.arpa")
    check_structure((tmp_path / "kn1.arpa").read_text(encoding="utf-8"))
    again = load(tmp_path / "kn1.arpa")
    again.export_arpa(tmp_path / "again.arpa")  # an ARPA model writes itself back
    assert load(tmp_path / "again.arpa").perplexity(kn["test"]) == pytest.approx(
        model.perplexity(kn["test"]), rel=1e-12
    )


def test_a_vocabulary_holding_s_cannot_be_written(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("<s> a b\na b <s>\n", encoding="utf-8")
    train_lm(
        corpus,
        overrides=['kind="kneser_ney"', "kneser_ney.order=2", "samples=0"],
        out=tmp_path / "r",
    )
    with pytest.raises(DataError, match="the vocabulary holds '<s>', which an ARPA file cannot"):
        load(tmp_path / "r").export_arpa(tmp_path / "r.arpa")


# ------------------------------------------------------------------------------------------------
# files written by other tools

OTHER_TOOL = """some tool's banner before the data

\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-99\t<s>\t-0.5
-0.5\t</s>
-1.0\ta\t-0.25
-0.8\tb
-1.5\t<unk>

\\2-grams:
-0.2\t<s> a
-0.3 a b
-0.1\ta </s>

\\end\\
"""


def test_a_bigram_file_from_another_tool_is_scored_by_the_back_off_rule(tmp_path: Path) -> None:
    arpa = tmp_path / "other.arpa"
    arpa.write_text(OTHER_TOOL, encoding="utf-8")
    text = tmp_path / "t.txt"
    text.write_text("a b\nb zzz a\n", encoding="utf-8")
    lm = load(arpa)
    expected_log10 = [
        -0.2,  # <s> a: listed
        -0.3,  # a b: listed
        -0.5 + 0.0,  # b </s>: b has no weight -> p(</s>)
        -0.5 - 0.8,  # <s> b: bow(<s>) p(b)
        -1.5,  # b <unk>: p(<unk>)
        -1.0,  # <unk> a: p(a)
        -0.1,  # a </s>: listed
    ]
    got = lm.own_log_probs(lm.encode(text))
    np.testing.assert_allclose(got, np.array(expected_log10) * math.log(10), rtol=1e-12)
    assert lm.evaluate(text)["tokens"] == 7


def test_a_file_without_unk_gets_minus_100_for_unknown_words(tmp_path: Path) -> None:
    arpa = tmp_path / "nounk.arpa"
    arpa.write_text(
        OTHER_TOOL.replace("ngram 1=5", "ngram 1=4").replace("-1.5\t<unk>\n", ""), encoding="utf-8"
    )
    text = tmp_path / "t.txt"
    text.write_text("zzz\n", encoding="utf-8")
    got = load(arpa).own_log_probs(load(arpa).encode(text))
    assert got[0] == pytest.approx((-0.5 - 100.0) * math.log(10))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("\\data\\", "data"), "no \\\\data\\\\ line; is this an ARPA file"),
        (lambda s: s.replace("ngram 2=3", "ngram 2=4"), "announces 4 2-grams, the .* holds 3"),
        (
            lambda s: s.replace("-0.3 a b", "0.3 a b"),
            r"bad.arpa:16: the log10 probability '0.3' of 'a b' must be a finite number at most 0",
        ),
        (lambda s: s.replace("-0.3 a b", "nan a b"), r":16: the log10 probability 'nan' of 'a b'"),
        (lambda s: s.replace("-0.3 a b", "NaN a b"), r":16: the log10 probability 'NaN' of 'a b'"),
        (lambda s: s.replace("-0.3 a b", "-inf a b"), r":16: the log10 probability '-inf'"),
        (lambda s: s.replace("-0.3 a b", "inf a b"), r":16: the log10 probability 'inf'"),
        (
            lambda s: s.replace("-0.8\tb", "-infinity\tb"),
            r":11: the log10 probability '-infinity' of 'b'",
        ),
        (
            lambda s: s.replace("-1.5\t<unk>", "nan\t<unk>"),
            r":12: the log10 probability 'nan' of '<unk>'",
        ),
        (
            lambda s: s.replace("-1.0\ta\t-0.25", "-1.0\ta\tinf"),
            r":10: the log10 back-off weight 'inf' of 'a' must be a finite number",
        ),
        (
            lambda s: s.replace("-1.0\ta\t-0.25", "-1.0\ta\t-inf"),
            r":10: the log10 back-off weight '-inf'",
        ),
        (
            lambda s: s.replace("-1.0\ta\t-0.25", "-1.0\ta\tnan"),
            r":10: the log10 back-off weight 'nan'",
        ),
        (
            lambda s: s.replace("-99\t<s>\t-0.5", "-99\t<s>\tnan"),
            r":8: the log10 back-off weight 'nan' of '<s>'",
        ),
        (
            lambda s: s.replace("-99\t<s>\t-0.5", "nan\t<s>\t-0.5"),
            r":8: the log10 probability 'nan' of '<s>'",
        ),
        (lambda s: s.replace("-0.3 a b", "-0.3 a b c d"), "a 2-gram line is 'log10-prob"),
        (lambda s: s.replace("-0.3 a b", "-0.3 c b"), "the 2-gram 'c b' holds 'c', which is not"),
        (lambda s: s.replace("-0.1\ta </s>", "-0.1\ta b"), "the 2-gram 'a b' is listed twice"),
        (lambda s: s.replace("\\end\\", ""), "no \\\\end\\\\ line; the file is cut short"),
        (lambda s: s.replace("-0.5\t</s>\n", "").replace("ngram 1=5", "ngram 1=4"), "lack </s>"),
        (lambda s: s.replace("-0.3 a b", "-0.3 x"), "a 2-gram line"),
        (lambda s: s.replace("-0.3 a b", "oops a b"), "is not a number"),
    ],
)
def test_a_bad_file_is_refused_with_the_line(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    arpa = tmp_path / "bad.arpa"
    arpa.write_text(edit(OTHER_TOOL), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_arpa(arpa)


def test_only_the_start_marker_may_have_a_minus_infinite_probability(tmp_path: Path) -> None:
    """<s>'s own probability is never used (it only starts a sentence): -inf there is read as
    some tools write it, and scores as -99 does."""
    arpa = tmp_path / "inf.arpa"
    arpa.write_text(OTHER_TOOL.replace("-99\t<s>", "-inf\t<s>"), encoding="utf-8")
    text = tmp_path / "t.txt"
    text.write_text("a b\n", encoding="utf-8")
    ours = tmp_path / "ours.arpa"
    ours.write_text(OTHER_TOOL, encoding="utf-8")
    got = load(arpa).own_log_probs(load(arpa).encode(text))
    np.testing.assert_array_equal(got, load(ours).own_log_probs(load(ours).encode(text)))
    assert np.isfinite(got).all()


def test_a_missing_prefix_is_named(tmp_path: Path) -> None:
    text = OTHER_TOOL.replace("ngram 2=3", "ngram 2=3\nngram 3=1").replace(
        "\\end\\", "\\3-grams:\n-0.1\tb a </s>\n\n\\end\\"
    )
    arpa = tmp_path / "noprefix.arpa"
    arpa.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match="the 3-gram 'b a </s>' has no prefix in the 2-grams"):
        read_arpa(arpa)


def test_mixing_needs_the_same_words(kn: dict[str, Path]) -> None:
    model = load(kn["run"])
    other = kn["root"] / "fewer.arpa"
    other.write_text(OTHER_TOOL, encoding="utf-8")
    with pytest.raises(DataError, match="its words are not the run's vocabulary"):
        read_arpa(other, model.vocab)


def test_write_checks_the_word_list(kn: dict[str, Path], tmp_path: Path) -> None:
    model = load(kn["run"])
    assert model.ngram is not None
    backoff = BackoffNgram.from_kneser_ney(model.ngram)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="need one word per id"):
        write_arpa(backoff, model.vocab.itos[:-1], tmp_path / "x.arpa")


# ------------------------------------------------------------------------------------------------
# the CLI and the mixture with a neural LM


def test_cli_export_eval_and_interpolate(kn: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    arpa = tmp_path / "cli.arpa"
    result = runner.invoke(app, ["lm", "export", str(kn["run"]), "--arpa", str(arpa), "--json"])
    assert result.exit_code == 0, result.output
    assert '"ngrams"' in result.output and arpa.read_bytes() == kn["arpa"].read_bytes()
    result = runner.invoke(app, ["lm", "eval", str(arpa), "--data", str(kn["test"]), "--json"])
    assert result.exit_code == 0, result.output
    expected = load(kn["run"]).perplexity(kn["test"])
    assert f"{expected:.6f}"[:8] in result.output

    nn_run = tmp_path / "nn"
    small = [
        "model.embedding_dim=8",
        "model.hidden_sizes=[8]",
        "model.context_size=2",
        "train.epochs=1",
        "train.threads=1",
        "samples=0",
    ]
    train_lm(kn["train"], overrides=small, out=nn_run, interpolate_with=arpa, dev=kn["test"])
    with_file = load(nn_run, interpolate_with=arpa, weight=0.3).perplexity(kn["test"])
    with_run = load(nn_run, interpolate_with=kn["run"], weight=0.3).perplexity(kn["test"])
    assert with_file == pytest.approx(with_run, rel=1e-12)
    result = runner.invoke(
        app,
        [
            "lm",
            "eval",
            str(nn_run),
            "--data",
            str(kn["test"]),
            "--interpolate-with",
            str(arpa),
            "--weight",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"perplexity {with_file:.2f}" in result.output
    # lambda is the feed-forward model's weight whichever run is named first (docs/lm.md)
    mixed_other_way = load(arpa, interpolate_with=nn_run, weight=0.3).perplexity(kn["test"])
    assert mixed_other_way == pytest.approx(with_file, rel=1e-9)

    result = runner.invoke(app, ["lm", "export", str(nn_run), "--arpa", str(tmp_path / "n.arpa")])
    assert result.exit_code == 1
    assert "is a feed-forward LM; only n-gram models" in result.output
    with pytest.raises(ConfigError, match="only n-gram models"):
        load(nn_run).export_arpa(tmp_path / "n.arpa")


# ------------------------------------------------------------------------------------------------
# Penn Treebank (slow)


@pytest.fixture(scope="module")
def ptb_kn5(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    train = shared_data("ptb/ptb.train.txt.gz")
    test = shared_data("ptb/ptb.test.txt")
    root = tmp_path_factory.mktemp("ptb_kn5")
    config = Path(__file__).resolve().parents[2] / "configs" / "ptb_kn5.toml"
    train_lm(train, test=test, config=config, out=root / "run", overrides=["samples=0"])
    load(root / "run").export_arpa(root / "kn5.arpa")
    return {"run": root / "run", "arpa": root / "kn5.arpa", "test": test}


@pytest.mark.slow
def test_ptb_kn5_read_back_from_arpa_scores_the_same_perplexity(ptb_kn5: dict[str, Path]) -> None:
    run_ppl = load(ptb_kn5["run"]).summary["test"]["perplexity"]
    arpa_ppl = load(ptb_kn5["arpa"]).perplexity(ptb_kn5["test"])
    assert f"{arpa_ppl:.4g}" == f"{run_ppl:.4g}" == "141.2"  # 141.19 (Mikolov 2012: 141.2)
    assert arpa_ppl == pytest.approx(run_ppl, rel=1e-10)


@pytest.mark.slow
def test_ptb_kn5_arpa_file_is_well_formed(ptb_kn5: dict[str, Path]) -> None:
    text = ptb_kn5["arpa"].read_text(encoding="utf-8")
    counts, sections = parse_arpa(text)
    assert counts == {n: len(sections[n]) for n in sections}
    assert counts[1] == 10001  # 10,000 words + <s>
    for n, entries in sections.items():
        assert all(p <= 0 for p, _, _ in entries)
        if n > 1:  # prefixes listed, weights where a longer n-gram starts
            lower = {w: b for _, w, b in sections[n - 1]}
            assert all(
                w[:-1] in lower and lower[w[:-1]] is not None
                for _, w, _ in entries
                if w[:-1] != ("</s>",)
            )


@pytest.mark.slow
def test_kenlm_scores_the_exported_file_like_ffnlp(ptb_kn5: dict[str, Path]) -> None:
    kenlm = needs("kenlm")
    model = kenlm.Model(str(ptb_kn5["arpa"]))
    total, tokens = 0.0, 0
    for line in ptb_kn5["test"].read_text(encoding="utf-8").split("\n"):
        if line.strip():
            total += model.score(line.strip(), bos=True, eos=True)  # log10, </s> included
            tokens += len(line.split()) + 1
    kenlm_ppl = 10 ** (-total / tokens)
    ours = load(ptb_kn5["arpa"]).perplexity(ptb_kn5["test"])
    assert f"{kenlm_ppl:.4g}" == f"{ours:.4g}"
