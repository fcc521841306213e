"""train_word2vec end to end on a small synthetic corpus: run directory, export to gensim, streaming,
CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ffnlp import jit
from ffnlp.errors import ConfigError, DataError
from ffnlp.features.embeddings import load_vectors
from ffnlp.tasks.w2v import Word2VecRun, resolve_config, train_word2vec
from tests.extras import needs

# a 20-word corpus: every word is "frequent" (no subsampling) and each batch must stay small, as a
# batch sums the updates of every pair in it (see docs/w2v.md)
FAST = [
    "train.epochs=2",
    "model.dim=16",
    "model.min_count=2",
    "train.checkpoint=false",
    "model.sample=0",
    "train.batch_size=64",
]


def topic_corpus(path: Path, sentences: int = 1500, seed: int = 0) -> Path:
    """Two topics whose words co-occur only within their topic; plus shared function words."""
    rng = np.random.default_rng(seed)
    topics = [
        ["cat", "dog", "pet", "fur", "paw", "tail", "bark", "meow"],
        ["stock", "market", "share", "price", "trade", "bank", "fund", "bond"],
    ]
    glue = ["the", "a", "of", "and"]
    lines = []
    for _ in range(sentences):
        topic = topics[rng.integers(2)]
        words = [str(w) for w in rng.choice(topic + glue, size=rng.integers(4, 12))]
        lines.append(" ".join(words))
    lines.insert(5, "")  # a blank line is skipped
    lines.insert(9, "lonely")  # a one-word sentence gives no pair
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Word2VecRun:
    tmp = tmp_path_factory.mktemp("w2v")
    corpus = topic_corpus(tmp / "corpus.txt")
    return train_word2vec(corpus, overrides=[*FAST, "train.epochs=4"], out=tmp / "run")


def test_run_directory_and_summary(run: Word2VecRun) -> None:
    d = run.run_dir
    assert d is not None
    for name in (
        "config.toml",
        "vocab.json",
        "model.safetensors",
        "model.json",
        "vectors.bin",
        "metrics.jsonl",
        "summary.json",
    ):
        assert (d / name).is_file(), name
    summary = json.loads((d / "summary.json").read_text())
    assert (
        summary["vocab_size"] == len(run.vocab) == 20
    )  # 16 topic words + 4 glue; "lonely" < min_count
    assert summary["words_per_second"] > 0 and summary["train_seconds"] > 0
    assert summary["corpus_tokens"] == summary["corpus_words_in_vocab"] + 1
    assert summary["epochs"] == 4


def test_vectors_learn_the_topics(run: Word2VecRun) -> None:
    wv = run.wv
    same = np.mean([wv.similarity("cat", w) for w in ("dog", "pet", "fur")])
    other = np.mean([wv.similarity("cat", w) for w in ("stock", "market", "bond")])
    assert same > other + 0.3
    top = [w for w, _ in wv.most_similar("stock", 5)]
    assert set(top) <= {
        "market",
        "share",
        "price",
        "trade",
        "bank",
        "fund",
        "bond",
        "the",
        "a",
        "of",
        "and",
    }


def test_export_loads_in_gensim_with_the_same_neighbours(run: Word2VecRun, tmp_path: Path) -> None:
    gensim_models = needs("gensim.models")
    for fmt, binary in (("word2vec-text", False), ("word2vec-binary", True)):
        path = tmp_path / f"v.{fmt}"
        run.export(path, format=fmt)
        kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
        assert kv.index_to_key == run.wv.words
        for word in ("cat", "stock", "the"):
            ours = [w for w, _ in run.wv.most_similar(word, 5)]
            theirs = [w for w, _ in kv.most_similar(word, topn=5)]
            assert ours == theirs


def test_load_run_and_vectors_file_agree(run: Word2VecRun) -> None:
    assert run.run_dir is not None
    import ffnlp

    again = ffnlp.load(run.run_dir)
    assert isinstance(again, Word2VecRun)
    np.testing.assert_array_equal(again.wv.vectors, run.wv.vectors)
    words, vectors = load_vectors(run.run_dir)  # what the classifiers' pretrained option reads
    assert words == run.wv.words
    np.testing.assert_array_equal(vectors, run.wv.vectors)


def test_streaming_from_disk_gives_the_same_vectors(tmp_path: Path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt", sentences=600)
    small = ["corpus.chunk_tokens=1000", *FAST]
    mem = train_word2vec(corpus, overrides=small, out=tmp_path / "mem")
    disk = train_word2vec(
        corpus, overrides=[*small, "corpus.max_memory_tokens=0"], out=tmp_path / "disk"
    )
    np.testing.assert_array_equal(mem.wv.vectors, disk.wv.vectors)
    assert not list((tmp_path / "disk").glob("*.ids"))  # the temporary token file is removed


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "FFNLP_JIT=0"])
def test_the_compiled_step_trains_and_the_pytorch_step_stays_behind_ffnlp_jit(
    compiled: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default skip-gram trains with the compiled Hogwild kernel, here 2 threads sharing each
    batch; FFNLP_JIT=0 takes the PyTorch step. Both learn the topics; summary.json says which.
    (The compiled step trains pair by pair, so a large batch is safe even on 20 words; the
    PyTorch step sums a batch's updates and needs small ones here.)"""
    if compiled and not jit.enabled():
        pytest.skip("compiled kernels are off here (FFNLP_JIT=0 or numba missing)")
    monkeypatch.setenv("FFNLP_JIT", "1" if compiled else "0")
    jit.reset()
    try:
        corpus = topic_corpus(tmp_path / "c.txt", sentences=2500)
        run = train_word2vec(
            corpus,
            overrides=[
                *FAST,
                f"train.batch_size={1024 if compiled else 64}",
                "model.workers=2",
                "train.epochs=3",
            ],
            out=tmp_path / "run",
        )
    finally:
        monkeypatch.delenv("FFNLP_JIT")
        jit.reset()
    summary = run.summary
    assert summary["step"] == ("compiled-hogwild" if compiled else "pytorch")
    assert summary["prefetch_thread"] is not compiled  # the compiled step's batches need none
    epochs = [
        json.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if '"event": "epoch"' in line
    ]
    losses = [e["train"]["loss"] for e in epochs]
    assert len(losses) == 3 and losses[-1] < losses[0] < 4.2  # 6 * log 2 = 4.16 at the start
    wv = run.wv
    same = np.mean([wv.similarity("cat", w) for w in ("dog", "pet", "fur")])
    other = np.mean([wv.similarity("cat", w) for w in ("stock", "market", "bond")])
    assert same > other + 0.3


def test_cbow_trains(tmp_path: Path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt", sentences=800)
    run = train_word2vec(
        corpus,
        overrides=[*FAST, 'model.architecture="cbow"', "train.lr=0.05"],
        out=tmp_path / "cbow",
    )
    assert run.summary["architecture"] == "cbow"
    assert run.wv.similarity("cat", "dog") > run.wv.similarity("cat", "bond")


def test_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no tokens"):
        train_word2vec(empty, out=tmp_path / "r1")
    few = tmp_path / "few.txt"
    few.write_text("a b c\n", encoding="utf-8")
    with pytest.raises(DataError, match="no word occurs at least model.min_count = 5 times"):
        train_word2vec(few, out=tmp_path / "r2")
    with pytest.raises(ConfigError, match="model.windw"):
        resolve_config(None, ["model.windw=3"])


def test_cli_train_eval_neighbors_export(tmp_path: Path) -> None:
    from ffnlp.cli.main import app

    corpus = topic_corpus(tmp_path / "c.txt", sentences=800)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        "cat\tdog\t9\ncat\tstock\t1\nmarket\tshare\t8\npaw\tbond\t0.5\nzzz\tcat\t3\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["w2v", "train", "--corpus", str(corpus), "--out", str(out), "--json"]
    for s in FAST:
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert {"words_per_second", "train_seconds", "vocab_size"} <= set(summary)

    # --resume DIR, as in the classify and lm commands: one more epoch from the checkpoint
    resumed = tmp_path / "resumed"
    first = ["w2v", "train", "--corpus", str(corpus), "--out", str(resumed), "--quiet"]
    first += [x for s in FAST if s != "train.checkpoint=false" for x in ("--set", s)]
    assert runner.invoke(app, first).exit_code == 0
    log = (resumed / "metrics.jsonl").read_text()
    more = ["w2v", "train", "--corpus", str(corpus), "--resume", str(resumed), "--json"]
    result = runner.invoke(app, [*more, "--set", "train.epochs=3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["epochs"] == 3
    assert (resumed / "metrics.jsonl").read_text().startswith(log)  # continued, not restarted

    result = runner.invoke(app, ["w2v", "eval", str(out), "--similarity", str(pairs), "--json"])
    assert result.exit_code == 0, result.output
    ev = json.loads(result.output)
    assert ev["similarity"]["pairs.tsv"]["oov_rate"] == pytest.approx(0.2)
    assert -1 <= ev["similarity"]["pairs.tsv"]["spearman"] <= 1

    plot = tmp_path / "proj.png"
    result = runner.invoke(
        app,
        ["w2v", "neighbors", str(out), "cat", "stock", "--k", "3", "--json", "--plot", str(plot)],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["cat"]) == 3
    assert plot.stat().st_size > 1000

    vec = tmp_path / "out.vec"
    result = runner.invoke(
        app, ["w2v", "export", str(out), "--format", "word2vec-text", "--output", str(vec)]
    )
    assert result.exit_code == 0, result.output
    words, _ = load_vectors(vec)
    assert len(words) == summary["vocab_size"]

    result = runner.invoke(app, ["w2v", "neighbors", str(out), "nosuchword"])
    assert result.exit_code == 1
    assert "Error: the word 'nosuchword' is not in the vocabulary" in result.output


def test_shared_negatives_train(tmp_path: Path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt", sentences=800)
    run = train_word2vec(
        corpus, overrides=[*FAST, "model.shared_negatives=5"], out=tmp_path / "shared"
    )
    assert run.wv.similarity("cat", "dog") > run.wv.similarity("cat", "bond")


def test_ptb_config_has_the_documented_settings() -> None:
    root = Path(__file__).resolve().parents[3]
    cfg = resolve_config(root / "configs/ptb_w2v.toml")
    m = cfg.model
    assert (m.dim, m.window, m.negative, m.min_count, cfg.train.epochs) == (100, 5, 5, 5, 5)
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.schedule) == ("sgd", 0.025, "linear")


@pytest.mark.slow
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "FFNLP_JIT=0"])
def test_ptb_vectors_are_as_good_as_gensims(
    compiled: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PTB train, the documented config: similarity close to gensim's (bench/w2v.py: 0.16-0.18,
    0.12), with the compiled step (2 threads) and with the PyTorch one."""
    from tests.conftest import shared_data

    ptb = shared_data("ptb/ptb.train.txt.gz")
    ws = shared_data("word_similarity/wordsim353.tsv")
    sl = shared_data("word_similarity/simlex999.txt")
    if compiled and not jit.enabled():
        pytest.skip("compiled kernels are off here (FFNLP_JIT=0 or numba missing)")
    root = Path(__file__).resolve().parents[3]
    monkeypatch.setenv("FFNLP_JIT", "1" if compiled else "0")
    jit.reset()
    try:
        run = train_word2vec(
            ptb,
            config=root / "configs/ptb_w2v.toml",
            out=tmp_path / "ptb",
            overrides=[
                f"evaluation.similarity=['{ws}', '{sl}']",
                'evaluation.analogies=""',
                "train.checkpoint=false",
                "model.workers=2",
            ],
        )
    finally:
        monkeypatch.delenv("FFNLP_JIT")
        jit.reset()
    assert run.summary["step"] == ("compiled-hogwild" if compiled else "pytorch")
    sim = run.summary["evaluation"]["similarity"]
    assert run.summary["vocab_size"] == 9858
    assert sim["wordsim353.tsv"]["oov_rate"] == pytest.approx(116 / 353)
    assert sim["wordsim353.tsv"]["spearman"] > 0.13
    assert sim["simlex999.txt"]["spearman"] > 0.09
