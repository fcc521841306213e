"""The public API: every task trains from Python and loads back with ffnlp.load."""

from __future__ import annotations

import pytest

import ffnlp
from ffnlp.tasks.sample import write_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("s"), sizes=(300, 60, 60))


def test_load_dispatches_on_the_task(sample, tmp_path) -> None:
    small = ["train.threads=1"]
    ffnlp.train_classifier(
        sample["train"], out=tmp_path / "c", overrides=["train.epochs=1", *small]
    )
    ffnlp.train_lm(
        sample["train"],
        dev=sample["dev"],
        out=tmp_path / "lm",
        overrides=[
            "data.min_count=1",
            "train.epochs=1",
            "model.embedding_dim=8",
            "model.hidden_sizes=[8]",
            *small,
        ],
    )
    ffnlp.train_word2vec(
        sample["corpus"],
        out=tmp_path / "w",
        overrides=["model.dim=8", "model.min_count=2", "train.epochs=1", "model.workers=1", *small],
    )
    clf, lm, w2v = (ffnlp.load(tmp_path / d) for d in ("c", "lm", "w"))
    assert type(clf).__name__ == "Classifier" and clf.predict("good film")[0][0] in ("0", "1")
    assert type(lm).__name__ == "LanguageModel" and lm.generate("the", max_tokens=3, seed=0).tokens
    assert type(w2v).__name__ == "Word2VecRun" and len(w2v.most_similar("good", 3)) == 3


def test_load_of_a_folder_that_is_not_a_run(tmp_path) -> None:
    with pytest.raises(ffnlp.ModelFileError, match="is not an ffnlp run directory"):
        ffnlp.load(tmp_path)


def test_public_names_are_the_real_objects_with_their_signatures() -> None:
    import inspect

    from ffnlp.tasks import classify, lm, w2v

    assert ffnlp.train_classifier is classify.train_classifier
    assert ffnlp.train_lm is lm.train_lm
    assert ffnlp.train_word2vec is w2v.train_word2vec
    assert (ffnlp.Classifier, ffnlp.LanguageModel, ffnlp.Word2VecRun) == (
        classify.Classifier,
        lm.LanguageModel,
        w2v.Word2VecRun,
    )
    # the data and the configuration, then the keywords every recipe shares, declared once
    from ffnlp.tasks.request import RunKeywords

    first = {
        ffnlp.train_classifier: ["train", "dev", "test", "config"],
        ffnlp.train_lm: ["train", "dev", "test", "config", "interpolate_with"],
        ffnlp.train_word2vec: ["corpus", "config"],  # one corpus, no dev/test split
    }
    for fn, names in first.items():
        *params, keywords = inspect.signature(fn).parameters.values()
        assert [p.name for p in params] == names
        assert keywords.kind is inspect.Parameter.VAR_KEYWORD
        assert "Unpack[RunKeywords]" in str(keywords.annotation)
    shared = ["overrides", "out", "seed", "callbacks", "resume", "force", "init_from"]
    assert list(RunKeywords.__annotations__) == shared
    assert set(ffnlp.__all__) <= set(dir(ffnlp))


def test_importing_ffnlp_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, ffnlp; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_unknown_public_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'train_gpt'"):
        ffnlp.train_gpt  # noqa: B018
