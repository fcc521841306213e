"""ffnlp.sklearn.TextClassifier follows scikit-learn's estimator contract."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.extras import needs

sk_base = needs("sklearn.base")
clone = sk_base.clone
sk_exceptions = needs("sklearn.exceptions")
NotFittedError = sk_exceptions.NotFittedError
sk_model_selection = needs("sklearn.model_selection")
GridSearchCV, cross_val_score = sk_model_selection.GridSearchCV, sk_model_selection.cross_val_score

from ffnlp.errors import DataError  # noqa: E402
from ffnlp.sklearn import TextClassifier  # noqa: E402

FAST = {"epochs": 4, "dim": 8, "lr": 0.05, "threads": 1, "overrides": ("features.buckets=1000",)}


def _data(n: int = 120, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = random.Random(seed)
    pos, neg, filler = (
        ["good", "great", "lovely", "superb"],
        ["bad", "awful", "poor", "dull"],
        ["the", "a", "film", "plot"],
    )
    texts, labels = [], []
    for i in range(n):
        label = [7, 3][i % 2]  # integer labels, not in sorted order of appearance
        words = [rng.choice((pos if label == 3 else neg) + filler) for _ in range(5)]
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.asarray(labels)


def test_init_only_stores_and_get_set_params_round_trip() -> None:
    est = TextClassifier(dim=32, hidden=(16,), overrides=("train.l2=0.1",))
    params = est.get_params()
    assert params["dim"] == 32 and params["hidden"] == (16,) and params["model"] == "pooled"
    assert est.set_params(dim=8, word_dropout=0.3) is est
    assert (est.dim, est.word_dropout) == (8, 0.3)
    assert not [k for k in vars(est) if k.endswith("_")]  # no learned state before fit
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est


def test_fit_predict_proba_and_score() -> None:
    texts, y = _data()
    est = TextClassifier(**FAST)
    assert est.fit(texts, y) is est
    assert est.classes_.tolist() == [3, 7]
    probs = est.predict_proba(["good great lovely", "awful poor bad"])
    assert probs.shape == (2, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    assert probs[0, 0] > 0.5 and probs[1, 1] > 0.5  # columns follow classes_: 3 (positive) then 7
    assert est.predict(["good great lovely"]).tolist() == [3]
    assert est.score(texts, y) > 0.9
    # clone gives an unfitted copy with the same parameters
    with pytest.raises(NotFittedError):
        clone(est).predict(["good"])


def test_inside_cross_val_score_and_grid_search() -> None:
    texts, y = _data()
    scores = cross_val_score(TextClassifier(**FAST), texts, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    search = GridSearchCV(TextClassifier(**FAST), {"model": ["pooled", "mlp"]}, cv=2)
    search.fit(texts, y)
    assert set(search.best_params_) == {"model"}
    assert search.best_score_ > 0.8
    assert search.best_estimator_.predict(texts[:3]).shape == (3,)


def test_early_stopping_on_a_held_out_share() -> None:
    texts, y = _data()
    est = TextClassifier(**FAST, validation_fraction=0.2).fit(texts, y)
    assert "dev" in est.history_ and est.history_["best_epoch"] is not None


def test_bad_input_is_refused_clearly() -> None:
    texts, y = _data(10)
    with pytest.raises(DataError, match="a classifier needs at least two classes"):
        TextClassifier(**FAST).fit(texts, np.full(10, 1))
    with pytest.raises(ValueError, match="one label per text"):
        TextClassifier(**FAST).fit(texts, y[:5])
    with pytest.raises(ValueError, match="not one string"):
        TextClassifier(**FAST).fit("good film", y)
    with pytest.raises(Exception, match="The 'model' parameter of TextClassifier must be one of"):
        TextClassifier(model="cnn").fit(texts, y)


def test_subwords_give_misspelt_words_their_meaning() -> None:
    texts, y = _data(200)
    fast = {**FAST, "ngrams": 1, "epochs": 8}
    plain = TextClassifier(**fast).fit(texts, y)
    sub = TextClassifier(**fast, minn=3, maxn=5).fit(texts, y)
    unseen = ["greatt lovelyy superbb", "awfull poorr dulll"]  # no training text has these
    p_plain, p_sub = plain.predict_proba(unseen), sub.predict_proba(unseen)
    np.testing.assert_allclose(p_plain[0], p_plain[1])  # both bags empty: the same answer
    assert sub.predict(unseen).tolist() == [3, 7]  # their n-grams carry the meaning
    assert p_sub[0, 0] > 0.7 and p_sub[1, 1] > 0.7
    assert clone(sub).get_params()["maxn"] == 5
