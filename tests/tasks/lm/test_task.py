"""The lm task end to end on a synthetic corpus: run directory, loading, interpolation, generation, CLI."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file as save_arrays
from typer.testing import CliRunner

import ffnlp
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.models.io import load_ngram
from ffnlp.models.kneser_ney import KneserNey
from ffnlp.tasks.lm import fit_mixture_weight, load, load_lm, mix_log_probs, train_lm

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park"]
SMALL = [
    "model.embedding_dim=8",
    "model.hidden_sizes=[16]",
    "model.context_size=3",
    "train.epochs=2",
    "train.batch_size=64",
    "train.threads=1",
    "samples=2",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    paths = {}
    for name, n, extra in (("train", 150, []), ("dev", 20, ["zebra"]), ("test", 20, [])):
        lines = [
            " ".join(rng.choice(WORDS + extra) for _ in range(rng.randint(3, 8))) for _ in range(n)
        ]
        paths[name] = root / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def runs(corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    nn_dir, kn_dir = root / "nn", root / "kn"
    train_lm(corpus["train"], corpus["dev"], corpus["test"], overrides=SMALL, out=nn_dir)
    train_lm(
        corpus["train"],
        corpus["dev"],
        corpus["test"],
        overrides=['kind="kneser_ney"', "kneser_ney.order=3"],
        out=kn_dir,
        interpolate_with=nn_dir,
    )
    return {"nn": nn_dir, "kn": kn_dir}


def test_run_directory_and_summary(runs: dict[str, Path]) -> None:
    nn_dir = runs["nn"]
    for name in (
        "config.toml",
        "vocab.json",
        "model.safetensors",
        "model.json",
        "metrics.jsonl",
        "summary.json",
        "plots/loss.png",
        "plots/dev_perplexity.png",
        "checkpoint",
    ):
        assert (nn_dir / name).exists(), name
    summary = json.loads((nn_dir / "summary.json").read_text())
    for key in ("train_seconds", "tokens_per_second"):
        assert summary[key] > 0
    for split in ("dev", "test"):
        assert 1 < summary[split]["perplexity"] < 13
        assert summary[split]["perplexity"] == pytest.approx(math.exp(summary[split]["loss"]))
    assert len(summary["samples"]) == 2
    # "auto" resolved once and reported; model.json keeps the setting for wherever it trains next
    from ffnlp.precision import choose_precision

    assert summary["precision"] == choose_precision("auto", "cpu").as_dict()
    assert json.loads((nn_dir / "model.json").read_text())["args"]["config"]["precision"] == "auto"
    assert summary["threads"] == 1  # train.threads = 1 in SMALL
    epochs = [json.loads(line) for line in (nn_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["dev"]["perplexity"] for r in epochs if r["event"] == "epoch"]


def test_loaded_models_give_the_summary_perplexities(runs: dict[str, Path], corpus) -> None:
    for kind in ("nn", "kn"):
        summary = json.loads((runs[kind] / "summary.json").read_text())
        lm = load(runs[kind], standalone=True)
        assert lm.perplexity(corpus["test"]) == pytest.approx(
            summary["test"]["perplexity"], rel=1e-6
        )


def test_interpolation_weight_is_fitted_and_never_worse_on_dev(
    runs: dict[str, Path], corpus
) -> None:
    summary = json.loads((runs["kn"] / "summary.json").read_text())
    mixed = summary["interpolated"]
    assert 0 <= mixed["weight"] <= 1
    assert mixed["dev"]["perplexity"] <= summary["dev"]["perplexity"] + 1e-9
    lm = load(runs["kn"])  # follows interpolate_with, with the fitted weight
    assert lm.partner is not None and lm.weight == pytest.approx(mixed["weight"])
    assert lm.perplexity(corpus["test"]) == pytest.approx(mixed["test"]["perplexity"], rel=1e-6)
    p = lm.next_distribution([0, 2, 3])
    assert p.sum() == pytest.approx(1.0, abs=1e-6)


def test_lambda_is_the_feed_forward_models_weight_in_train_eval_and_load(
    runs: dict[str, Path], corpus, tmp_path: Path
) -> None:
    """The Kneser-Ney run was trained with --interpolate-with the neural run: λ it reports is
    the neural model's weight, as `lm eval` reports it for the same pair, either way round."""
    from ffnlp.cli.main import app

    mixed = json.loads((runs["kn"] / "summary.json").read_text())["interpolated"]
    lam = mixed["weight"]
    assert mixed["weight_of"] == str(runs["nn"]) and 0 < lam < 1
    saved = json.loads((runs["kn"] / "interpolation.json").read_text())
    assert saved["weight"] == lam and saved["weight_of"] == str(runs["nn"])
    # the neural model's share of the mixture that `lm train` fitted: the KN run's is 1 - λ
    nn_alone, kn_alone = (load(runs[k], standalone=True) for k in ("nn", "kn"))
    dev = nn_alone.encode(corpus["dev"])
    assert lam == pytest.approx(
        fit_mixture_weight(nn_alone.own_log_probs(dev), kn_alone.own_log_probs(dev)), abs=1e-9
    )
    runner = CliRunner()
    reported = []
    for first, second in (("nn", "kn"), ("kn", "nn")):
        for extra in (["--interpolate-with", str(runs[second]), "--dev", str(corpus["dev"])], []):
            if first == "nn" and not extra:
                continue  # the neural run was trained alone: no weight of its own to reuse
            args = ["lm", "eval", str(runs[first]), "--data", str(corpus["test"]), "--json"]
            res = runner.invoke(app, args + extra)
            assert res.exit_code == 0, res.output
            out = json.loads(res.stdout)
            assert out["weight"] == pytest.approx(lam, abs=1e-9), (first, extra)
            assert out["weight_of"] == str(runs["nn"])
            assert out["perplexity"] == pytest.approx(mixed["test"]["perplexity"], rel=1e-6)
            reported.append(out["weight"])
    assert len(reported) == 3
    res = runner.invoke(app, ["lm", "eval", str(runs["kn"]), "--data", str(corpus["test"])])
    assert f"λ={lam:.3f}, the weight of {runs['nn']})" in " ".join(res.stdout.split())
    # --weight is λ too: the neural model's share, whichever run is named first
    for first, second in (("nn", "kn"), ("kn", "nn")):
        lm = load(runs[first], interpolate_with=runs[second], weight=0.3)
        assert lm.weight == 0.3 and lm.weighted_model.kind == "ffnn"
        assert lm.perplexity(corpus["test"]) == pytest.approx(
            load(runs["nn"], interpolate_with=runs["kn"], weight=0.3).perplexity(corpus["test"]),
            rel=1e-9,
        )
    # a run whose interpolation.json predates λ's one meaning held its own share there
    old = tmp_path / "old_kn"
    shutil.copytree(runs["kn"], old)
    (old / "interpolation.json").write_text(
        json.dumps({"with": str(runs["nn"]), "weight": 1 - lam}), encoding="utf-8"
    )
    assert load(old).weight == pytest.approx(lam, abs=1e-12)


def test_mixture_weight_by_em_matches_a_grid_search() -> None:
    rng = np.random.default_rng(0)
    a, b = np.log(rng.uniform(0.01, 1, 500)), np.log(rng.uniform(0.01, 1, 500))
    weight = fit_mixture_weight(a, b)
    grid = np.linspace(0.001, 0.999, 999)
    best = grid[np.argmax([mix_log_probs(a, b, w).sum() for w in grid])]
    assert weight == pytest.approx(best, abs=2e-3)


def test_generation_is_reproducible_with_a_seed(runs: dict[str, Path]) -> None:
    for kind in ("nn", "kn"):
        lm = load(runs[kind], standalone=True)
        first = lm.generate("the cat", max_tokens=12, temperature=0.9, top_k=5, seed=7)
        again = lm.generate("the cat", max_tokens=12, temperature=0.9, top_k=5, seed=7)
        assert first.tokens == again.tokens
        assert 1 <= len(first.tokens) <= 12
        others = {
            tuple(lm.generate("the", max_tokens=12, seed=s, stop_at_eos=False).tokens)
            for s in range(5)
        }
        assert len(others) > 1
        greedy = lm.generate("the", max_tokens=5, temperature=0, stop_at_eos=False)
        assert (
            greedy.tokens
            == lm.generate("the", max_tokens=5, temperature=0, seed=3, stop_at_eos=False).tokens
        )


def test_unknown_prompt_words_are_reported(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"])
    out = lm.generate("the zebra", max_tokens=3, seed=0)
    assert out.unknown == ["zebra"]


def test_errors_name_the_fix(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="model.json is missing"):
        load(tmp_path)
    with pytest.raises(ConfigError, match="pass --dev FILE to fit it"):
        load(runs["nn"], interpolate_with=runs["kn"])
    with pytest.raises(
        ConfigError, match="The 'top_k' parameter of LanguageModel.generate must be an int >= 0"
    ):
        load(runs["nn"]).generate("the", top_k=-1)


def test_a_run_of_another_task_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(runs["nn"], tmp_path / "run")
    arch = json.loads((tmp_path / "run" / "model.json").read_text())
    arch["task"] = "classify"
    (tmp_path / "run" / "model.json").write_text(json.dumps(arch))
    with pytest.raises(
        ModelFileError, match="is a classify run, not an lm run; use ffnlp classify"
    ):
        load(tmp_path / "run")


def test_load_lm_is_a_deprecated_alias_of_load(runs: dict[str, Path], corpus) -> None:
    with pytest.warns(DeprecationWarning, match="use ffnlp.tasks.lm.load"):
        old = load_lm(runs["kn"], standalone=True)
    new = load(runs["kn"], standalone=True)
    assert old.perplexity(corpus["test"]) == new.perplexity(corpus["test"])


def _save_kn_the_old_way(ngram: KneserNey, run_dir: Path) -> None:
    """How run folders held a Kneser-Ney model before models/io.py wrote them (kept verbatim as
    the format reference): the tables under these exact keys, the header as model.json's args."""
    arrays = {"unigram": ngram.unigram}
    for n, tab in enumerate(ngram.orders, start=2):
        arrays[f"order{n}.keys"] = tab.keys
        arrays[f"order{n}.numerator"] = tab.numerator
        arrays[f"order{n}.denominator"] = tab.denominator
        arrays[f"order{n}.gamma"] = tab.gamma
    header = {
        "order": ngram.order,
        "vocab_size": ngram.vocab_size,
        "eos_id": ngram.eos_id,
        "discounts": [list(d) for d in ngram.discount_table],
        "ngrams": [ngram.vocab_size] + [len(t.keys) for t in ngram.orders],
    }
    save_arrays(
        {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(run_dir / "model.safetensors")
    )
    arch = {"task": "lm", "type": "kneser_ney", "args": header}
    (run_dir / "model.json").write_text(json.dumps(arch, indent=2), encoding="utf-8")


def test_a_kneser_ney_run_saved_in_the_old_format_loads(
    runs: dict[str, Path], corpus, tmp_path: Path
) -> None:
    kn = load(runs["kn"], standalone=True)
    assert kn.ngram is not None
    new_files = {
        name: (runs["kn"] / name).read_bytes() for name in ("model.safetensors", "model.json")
    }
    old_dir = tmp_path / "old"
    shutil.copytree(runs["kn"], old_dir)
    for name in ("model.safetensors", "model.json"):
        (old_dir / name).unlink()
    _save_kn_the_old_way(kn.ngram, old_dir)
    for name, data in new_files.items():  # the files written today are the old ones, byte for byte
        assert (old_dir / name).read_bytes() == data, name
    mixed = load(runs["kn"])  # the run was trained with interpolate_with: ffnlp.load mixes too
    for old, new in ((load(old_dir, standalone=True), kn), (ffnlp.load(old_dir), mixed)):
        assert old.perplexity(corpus["test"]) == new.perplexity(corpus["test"])
        np.testing.assert_array_equal(old.next_distribution([0, 2]), new.next_distribution([0, 2]))


def test_a_damaged_kneser_ney_run_names_the_file(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="describes a 'ffnn_lm' model, not a Kneser-Ney one"):
        load_ngram(runs["nn"])
    run = tmp_path / "run"
    shutil.copytree(runs["kn"], run)
    arch = json.loads((run / "model.json").read_text())
    arch["args"]["order"] = "3"
    (run / "model.json").write_text(json.dumps(arch))
    with pytest.raises(
        ModelFileError,
        match=r"run/model.json: the Kneser-Ney model header is invalid: "
        r"'order' must be an integer; got '3'; retrain the model",
    ):
        load(run, standalone=True)
    (run / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="model.safetensors cannot be read .*corrupted"):
        load(run, standalone=True)
    (run / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="model.safetensors is missing"):
        load(run, standalone=True)


def test_cli_eval_and_generate(runs: dict[str, Path], corpus) -> None:
    from ffnlp.cli.main import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["lm", "eval", str(runs["nn"]), "--data", str(corpus["test"]), "--json"]
    )
    assert res.exit_code == 0, res.output
    expected = json.loads((runs["nn"] / "summary.json").read_text())["test"]["perplexity"]
    assert json.loads(res.stdout)["perplexity"] == pytest.approx(expected, rel=1e-6)
    res = runner.invoke(
        app,
        [
            "lm",
            "eval",
            str(runs["nn"]),
            "--data",
            str(corpus["test"]),
            "--interpolate-with",
            str(runs["kn"]),
            "--dev",
            str(corpus["dev"]),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "mixed with" in res.stdout
    args = [
        "lm",
        "generate",
        str(runs["nn"]),
        "--prompt",
        "the zebra",
        "--max-tokens",
        "8",
        "--seed",
        "3",
        "--top-k",
        "4",
    ]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    assert first.stdout.startswith("the zebra")
    assert "not in the vocabulary, read as <unk>: 'zebra'" in first.stderr
    res = runner.invoke(app, ["lm", "generate", str(runs["nn"] / "nope")])
    assert res.exit_code == 1
    assert "Error:" in res.stderr and "nope does not exist" in res.stderr


def test_cli_train(corpus, tmp_path: Path) -> None:
    from ffnlp.cli.main import app

    res = CliRunner().invoke(
        app,
        [
            "lm",
            "train",
            "--train",
            str(corpus["train"]),
            "--dev",
            str(corpus["dev"]),
            "--set",
            'kind="kneser_ney"',
            "--out",
            str(tmp_path / "kn"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["kind"] == "kneser_ney" and summary["dev"]["perplexity"] > 1
