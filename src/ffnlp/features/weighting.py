"""The values of a bag of n-grams' cells from their counts: one function for the PyTorch
featuriser (:class:`ffnlp.features.bag.BagOfNgrams`) and the NumPy predict path
(:mod:`ffnlp.features.fast`), which must give the same numbers. NumPy only (the predict path
imports no torch)."""

from __future__ import annotations

import numpy as np


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
    idf for ``tfidf``; then each text's row divided by its L2 norm where ``l2``."""
    if weighting == "binary":
        values = np.ones_like(tf)
    else:
        values = 1.0 + np.log(tf) if sublinear_tf else tf
        if weighting == "tfidf":
            assert idf is not None
            values = values * idf[col_of]
    if l2:
        norms = np.sqrt(np.bincount(row_of, weights=values * values, minlength=n_rows))
        values = values / norms[row_of]  # a row with no features has no entries to divide
    return values
