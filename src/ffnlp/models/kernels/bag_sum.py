"""The sum (or mean) of each bag's table rows in one compiled call, for predicting.

:func:`ffnlp.models.numpy_forward.bag_sum` adds a bag's rows left to right whichever way it
takes (a running sum, SciPy's CSR product, the position loop); on a server's few texts the
NumPy calls around that work cost more than the work. :func:`bag_sums` is the same loop in one
call: ``out[b] += weight * table[id]`` for each id of bag b in order, in the table's type (no
fused multiply-add, no reordering: the same numbers as those paths, which the parity tests
check), then the division by the bag's length for a mean. NumPy only, no PyTorch; compiled
through :mod:`ffnlp.jit`, which decides whether it runs.
"""

from __future__ import annotations

import numpy as np

from ffnlp import jit


@jit.kernel()
def bag_sums(table, ids, offsets, weights, mean):
    """(B, D) in ``table``'s type: bag b's rows ``table[ids[offsets[b]:offsets[b+1]]]`` times
    ``weights`` (``(0,)``: none) added in order, divided by their count where ``mean``; an
    empty bag gives zeros."""
    n_bags = offsets.shape[0] - 1
    width = table.shape[1]
    out = np.zeros((n_bags, width), dtype=table.dtype)
    weighted = weights.shape[0] > 0
    for b in range(n_bags):
        for j in range(offsets[b], offsets[b + 1]):
            row = ids[j]
            if weighted:
                w = weights[j]
                for d in range(width):
                    out[b, d] += w * table[row, d]
            else:
                for d in range(width):
                    out[b, d] += table[row, d]
        count = offsets[b + 1] - offsets[b]
        if mean and count > 0:
            scale = table.dtype.type(count)
            for d in range(width):
                out[b, d] /= scale
    return out
