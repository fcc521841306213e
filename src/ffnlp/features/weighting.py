"""The values of a bag of n-grams' cells from their counts: one function for the PyTorch
featuriser (:class:`ffnlp.features.bag.BagOfNgrams`) and the NumPy predict path
(:mod:`ffnlp.features.fast`), which must give the same numbers; and the log-count ratios of the
``nbsvm`` weighting (:func:`log_count_ratios`), fitted on the training split. NumPy only (the
predict path imports no torch).

``nbsvm`` is the feature scaling of Wang & Manning's NBSVM (ACL 2012): each n-gram's value is its
binary indicator times its log-count ratio ``r = log((p / |p|_1) / (q / |q|_1))``, ``p`` (``q``)
the number of positive (negative) training texts that hold it plus the smoothing ``alpha``. With
two classes ``r`` is that of the second label against the first. With K > 2 classes, or several
labels a text, each label has its one-vs-rest ratio ``r_k`` and a feature's weight is the largest
``|r_k|``: a single scaled input that a network reads for every label, how strongly the feature
tells some label from the others. The sign of ``r`` does not matter to a model that learns a
weight per feature (it absorbs it); the magnitude does: it scales how fast and how far the
feature's weight moves.
"""

from __future__ import annotations

import numpy as np

_LABELS_AT_ONCE = 256
MAX_CHAR_N = 10  # the longest character n-gram a bag of n-grams may hold (char_range)


def not_words(words: object) -> list[object]:
    """The entries of ``words`` (features.contrast_words) that are not words as a tokenizer gives
    them: not a string, empty, or holding whitespace. The config's check and the bag's share it."""
    seq = words if isinstance(words, (list, tuple)) else [words]
    return [w for w in seq if not isinstance(w, str) or not w or any(c.isspace() for c in w)]


WEIGHTED = ("tfidf", "nbsvm")  # the weightings that multiply each cell by a per-feature weight


def weigh_counts(
    tf: np.ndarray,
    col_of: np.ndarray,
    row_of: np.ndarray,
    n_rows: int,
    *,
    weighting: str,
    sublinear_tf: bool,
    idf: np.ndarray | None,
    l2: bool,
) -> np.ndarray:
    """float64 values of the cells (``tf``: each cell's count; ``col_of`` / ``row_of``: its
    feature and text): binary, or counts (``1 + log`` with ``sublinear_tf``) times the feature's
    idf for ``tfidf``; for ``nbsvm`` the feature's log-count ratio (passed as ``idf``: the
    per-feature weights) for every cell; then each text's row divided by its L2 norm where
    ``l2``."""
    if weighting == "binary":
        values = np.ones_like(tf)
    elif weighting == "nbsvm":
        assert idf is not None
        values = idf[col_of].astype(np.float64)
    else:
        values = 1.0 + np.log(tf) if sublinear_tf else tf
        if weighting == "tfidf":
            assert idf is not None
            values = values * idf[col_of]
    if l2:
        norms = np.sqrt(np.bincount(row_of, weights=values * values, minlength=n_rows))
        values = values / norms[row_of]  # a row with no features has no entries to divide
    return values


def log_count_ratios(
    row_of: np.ndarray,
    col_of: np.ndarray,
    n_features: int,
    targets: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """(F,) float64 per-feature weights of the ``nbsvm`` weighting (see the module's docstring).

    ``row_of`` / ``col_of``: the (text, feature) pairs where a training text holds a feature,
    each pair once; ``targets``: (N,) each text's class id, or (N, K) 0/1 label sets
    (multi-label); ``alpha`` > 0: the smoothing added to every count."""
    from scipy import sparse

    targets = np.asarray(targets)
    n_texts = len(targets)
    if targets.ndim == 1:  # class ids: a one-hot (N, K) label matrix
        n_classes = max(int(targets.max()) + 1 if n_texts else 0, 2)
        labels = sparse.csr_matrix(
            (np.ones(n_texts), (np.arange(n_texts), targets)), shape=(n_texts, n_classes)
        )
    else:
        labels = sparse.csr_matrix(targets.astype(np.float64))
    held = sparse.csr_matrix(
        (np.ones(len(row_of)), (col_of, row_of)), shape=(n_features, n_texts)
    )  # (F, N) 1 where text n holds feature f
    holding = np.asarray(held.sum(axis=1)).ravel()  # (F,) texts that hold each feature
    best = np.zeros(n_features, dtype=np.float64)
    for first in range(0, labels.shape[1], _LABELS_AT_ONCE):  # (F, 256) float64s at a time
        per_label = (held @ labels[:, first : first + _LABELS_AT_ONCE]).toarray()  # (F, k)
        p = per_label + alpha  # the texts of label k that hold f, smoothed
        q = (holding[:, None] - per_label) + alpha  # those of the other labels
        ratios = np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))  # (F, k)
        if targets.ndim == 1 and labels.shape[1] == 2:
            return ratios[:, 1]  # two classes: Wang & Manning's r (the first label's is -r)
        np.maximum(best, np.abs(ratios).max(axis=1), out=best)
    return best
