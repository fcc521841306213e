"""A classifier's layers after its first sum, and its probabilities, in one compiled call.

:meth:`ffnlp.models.numpy_forward.NumpyForward.from_sums` then ``probabilities`` take a dozen
NumPy calls (a bias, an activation, a product and a bias per layer, the conversions and the
sigmoid or softmax); on a server's micro-batch of a few texts those calls' own overhead is more
than their work. :func:`dense_probabilities` is the same computation as one loop over the texts:

- the first bias added to the sums (an ``mlp``'s or ``logreg``'s, a projected ``pooled``'s
  output bias), and the activation where the model applies one before its next layer;
- each further linear layer (weights ``(out, in)`` row-major, back to back in one flat array,
  their widths in ``dims``), with the activation between two layers;
- the head: a sigmoid giving ``[1 - p, p]`` for two classes, a softmax, or one sigmoid per label
  for a multi-label run, computed in float64 from the float32 logits and stored in float32, as
  ``NumpyForward.probabilities`` does.

Each product is summed in float32 in input order (NumPy's BLAS may block it another way: the two
agree to float rounding, which the parity tests bound). Only the activations whose float32 form
is exact here are covered (:data:`ACTIVATION_CODES`); the caller takes the NumPy path for the
others. Compiled through :mod:`ffnlp.jit`; importing this module compiles nothing.
"""

from __future__ import annotations

import numpy as np

from ffnlp import jit

ACTIVATION_CODES = {"identity": 0, "relu": 1, "hardtanh": 2, "leaky_relu": 3}
"""The activations :func:`dense_probabilities` applies, by the code it takes."""
LEAKY_SLOPE = 0.01  # ffnlp.models.activations.LEAKY_SLOPE, as numpy_forward's
HEAD_BINARY, HEAD_SOFTMAX, HEAD_MULTILABEL = 0, 1, 2


# The GIL is kept, as for the fused featurisers (ffnlp.features.fast_compiled): a server calls
# this in a thread beside its event loop, and the call is over in microseconds.
@jit.kernel(nogil=False)
def dense_probabilities(
    h,  # (B, dims[0]) float32 the sums of the first layer's rows (read only)
    first_bias,  # (dims[0],) float32 added to h first; (0,): none
    activate_first,  # apply the activation to h before the first layer of ``weights``
    activation,  # ACTIVATION_CODES' code, also applied between two layers
    dims,  # (L+1,) int64 the widths: dims[0] of h, then each layer's output
    weights,  # float32 the L layers' weights, each (dims[l+1], dims[l]) row-major, back to back
    biases,  # float32 their biases, back to back
    head,  # HEAD_BINARY, HEAD_SOFTMAX or HEAD_MULTILABEL
):
    """``(probs, best, top)``: (B, K) float32 probabilities (K is 2 for HEAD_BINARY, one
    logit; else dims[-1]), each row's most probable column (the first of equal maxima, as
    ``argmax``) and its probability."""
    n = h.shape[0]
    layers = dims.shape[0] - 1
    widest = 0
    for i in range(dims.shape[0]):
        widest = max(widest, dims[i])
    logits = dims[layers]
    width = 2 if head == HEAD_BINARY else logits
    out = np.empty((n, width), dtype=np.float32)
    best = np.zeros(n, dtype=np.int64)
    top_p = np.empty(n, dtype=np.float32)
    x = np.empty(widest, dtype=np.float32)
    y = np.empty(widest, dtype=np.float32)
    z = np.empty(logits, dtype=np.float64)
    slope = np.float32(LEAKY_SLOPE)
    has_bias = first_bias.shape[0] > 0
    for b in range(n):
        for i in range(dims[0]):
            v = h[b, i]
            if has_bias:
                v = v + first_bias[i]
            x[i] = v
        w_at = 0
        b_at = 0
        for layer in range(layers):
            size_in = dims[layer]
            size_out = dims[layer + 1]
            if layer > 0 or activate_first:
                for i in range(size_in):
                    v = x[i]
                    if activation == 1:
                        if v < 0:
                            v = np.float32(0)
                    elif activation == 2:
                        if v < -1:
                            v = np.float32(-1)
                        elif v > 1:
                            v = np.float32(1)
                    elif activation == 3 and not v >= 0:  # NaN too, as np.where's
                        v = v * slope
                    x[i] = v
            for o in range(size_out):
                acc = np.float32(0)
                row = w_at + o * size_in
                for i in range(size_in):
                    acc += x[i] * weights[row + i]
                y[o] = acc + biases[b_at + o]
            w_at += size_out * size_in
            b_at += size_out
            for o in range(size_out):
                x[o] = y[o]
        for o in range(logits):
            z[o] = np.float64(x[o])
        if head == HEAD_BINARY:
            p = np.float32(1.0 / (1.0 + np.exp(-z[0])))
            out[b, 0] = np.float32(1) - p
            out[b, 1] = p
        elif head == HEAD_MULTILABEL:
            for o in range(logits):
                out[b, o] = np.float32(1.0 / (1.0 + np.exp(-z[o])))
        else:
            top = z[0]
            for o in range(1, logits):
                top = max(top, z[o])
            total = 0.0
            for o in range(logits):
                z[o] = np.exp(z[o] - top)
                total += z[o]
            for o in range(logits):
                out[b, o] = np.float32(z[o] / total)
        j = 0
        for o in range(1, width):
            if out[b, o] > out[b, j]:
                j = o
        best[b] = j
        top_p[b] = out[b, j]
    return out, best, top_p
