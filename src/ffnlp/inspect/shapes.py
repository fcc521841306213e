"""What happens to the shapes, and what a forward pass costs.

``trace_shapes(model, run)`` hooks each leaf module, calls ``run()`` (a forward pass on a real
batch) and returns one row per call: the module, its input and output shapes, and for the layers
that are matrix products (Linear, EmbeddingBag, Embedding) the product written out, e.g.
``(32, 300) @ (300, 64)``, with its multiply-adds.

``lm_computation`` and ``skipgram_computation`` write a language model's or word2vec's
computation out line by line (``e = [E·x(t-3); E·x(t-2); E·x(t-1)]``, ``h = tanh(W e + b)``, ...)
from the model's own weights, each product with its shapes in letters and numbers;
``classifier_macs`` is a classifier's cost. Costs are multiply-adds of the matrix products per
example; FLOPs are twice that (biases, activations and softmax left out, as usual).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ffnlp.models.lm import FeedForwardLM, ResidualBlock
from ffnlp.models.mlp import MLP
from ffnlp.models.protocols import Scorer
from ffnlp.models.skipgram import SkipGram


@dataclass
class LayerCall:
    name: str
    kind: str
    inputs: list[tuple[int, ...]]
    output: tuple[int, ...]
    params: int
    product: str  # "" when the layer is not a matrix product
    macs: int  # multiply-adds of the product (0 otherwise)


def _shape(x: Any) -> tuple[int, ...] | None:
    return tuple(x.shape) if torch.is_tensor(x) else None


def _product(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> tuple[str, int]:
    if isinstance(module, nn.Linear):
        rows = int(output.numel() // module.out_features)
        return (
            f"({rows}, {module.in_features}) @ ({module.in_features}, {module.out_features})",
            rows * module.in_features * module.out_features,
        )
    if isinstance(module, nn.EmbeddingBag):
        ids = inputs[0]
        bags = int(output.shape[0])
        n, d = int(ids.numel()), module.embedding_dim
        return (
            f"sparse ({bags}, {module.num_embeddings}; {n} nz) @ ({module.num_embeddings}, {d})",
            n * d,
        )
    if isinstance(module, nn.Embedding):
        n = int(inputs[0].numel())
        return f"look-up: {n} rows of ({module.num_embeddings}, {module.embedding_dim})", 0
    return "", 0


def trace_shapes(model: nn.Module, run: Callable[[], Any]) -> list[LayerCall]:
    """Run ``run()`` with hooks on every leaf module of ``model``; the calls in order."""
    calls: list[LayerCall] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        if not torch.is_tensor(out):
            return
        product, macs = _product(module, inputs, out)
        calls.append(
            LayerCall(
                name=names.get(module, "?"),
                kind=type(module).__name__,
                inputs=[s for s in (_shape(x) for x in inputs) if s is not None],
                output=tuple(out.shape),
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                product=product,
                macs=macs,
            )
        )

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return calls


def classifier_calls(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[LayerCall]:
    """The layer calls of a classifier's forward pass on ``batch`` (:func:`trace_shapes`). A
    feature MLP given dense rows multiplies them by its first layer's (F, H1) table directly,
    which no hook sees: its row is added after the input dropout, as the product it is."""
    from ffnlp.models.feature_mlp import FeatureMLP

    if not isinstance(model, Scorer):
        raise TypeError(f"{type(model).__name__} has no logits(batch): it is not a classifier")
    calls = trace_shapes(model, lambda: model.logits(batch))
    if not isinstance(model, FeatureMLP) or "x" not in batch:
        return calls
    rows, features = (int(n) for n in batch["x"].shape)
    width = model.input.embedding_dim
    first = LayerCall(
        name="input",
        kind="Linear (F, H1) table",
        inputs=[(rows, features)],
        output=(rows, width),
        params=features * width + width,
        product=f"({rows}, {features}) @ ({features}, {width})",
        macs=rows * features * width,
    )
    at = sum(c.name.startswith("input_dropout") for c in calls)
    return [*calls[:at], first, *calls[at:]]


# ---------------------------------------------------------------------------------------------
# a model's computation written out, with the shapes of every product, and its cost per example


@dataclass
class Product:
    """One line of a computation written out: the formula, its matrix product with the shapes in
    letters and in numbers, the shape of the result, and the product's multiply-adds per example
    (0 for look-ups and element-wise steps)."""

    formula: str
    product: str
    output: str
    macs: int = 0


def _dims(letters: str, numbers: tuple[int | str, ...]) -> str:
    """``(B, C·D) = (2, 12)``."""
    return f"({letters}) = {_numbers(numbers)}"


def _numbers(numbers: tuple[int | str, ...]) -> str:
    return "(" + ", ".join(str(n) for n in numbers) + ")"


def _matmul(a: str, b: str, a_num: tuple[int | str, ...], b_num: tuple[int | str, ...]) -> str:
    """``(B, C·D) @ (C·D, H) = (2, 12) @ (12, 5)``."""
    return f"({a}) @ ({b}) = {_numbers(a_num)} @ {_numbers(b_num)}"


def _context(c: int) -> str:
    """``[E·x(t-3); E·x(t-2); E·x(t-1)]``, or with an ellipsis past four words."""
    words = [f"E·x(t-{k})" for k in range(c, 0, -1)]
    return "[" + ("; ".join(words) if c <= 4 else f"{words[0]}; ...; {words[-1]}") + "]"


def lm_computation(model: FeedForwardLM, batch: int) -> list[Product]:
    """The feed-forward LM's forward pass written out from its own weights, for a batch of
    ``batch`` contexts::

        e = [E·x(t-C); ...; E·x(t-1)]   (B, C·D)
        h = act(W e + b)                (B, C·D) @ (C·D, H)   -> (B, H)
        z = U h + b_z                   (B, H) @ (H, V)       -> (B, V)   (tied: U = E)
        ŷ = softmax(z)                                           (B, V)

    With ``history = "fofe"`` the input is written as the C look-ups, their code z and
    e = [x_K; ...; x_1; z]; residual blocks add one line each (two products) and a layer norm.
    """
    cfg = model.config
    B, C = batch, cfg.context_size
    V, D = (int(n) for n in model.embedding.weight.shape)
    linears = [m for m in model.hidden if isinstance(m, nn.Linear)]
    act = cfg.activation
    if cfg.history == "fofe":
        lines, e_letters = _fofe_lines(cfg.fofe_alpha, cfg.fofe_exact, B, C, V, D), "(K+1)·D"
    else:
        e_letters = "C·D"
        lines = [
            Product(
                f"e = {_context(C)}",
                f"{C} look-ups of rows of E {_dims('V, D', (V, D))}",
                _dims("B, C·D", (B, C * D)),
            )
        ]
    x, x_letters, width = "e", e_letters, model.input_width
    for i, linear in enumerate(linears, start=1):
        h = "h" if len(linears) == 1 else f"h{i}"
        H = "H" if len(linears) == 1 else f"H{i}"
        w, b = ("W", "b") if len(linears) == 1 else (f"W{i}", f"b{i}")
        inner = f"{w} {x} + {b}"
        out = linear.out_features
        lines.append(
            Product(
                f"{h} = {inner}" if act == "identity" else f"{h} = {act}({inner})",
                _matmul(f"B, {x_letters}", f"{x_letters}, {H}", (B, width), (width, out)),
                _dims(f"B, {H}", (B, out)),
                width * out,
            )
        )
        x, x_letters, width = h, H, out
    if model.blocks:
        lines += _residual_lines(model, x, x_letters, B, width)
    if model.projection is not None:  # tied weights with H != D: back to D first
        lines.append(
            Product(
                f"h' = P {x}",
                _matmul(f"B, {x_letters}", f"{x_letters}, D", (B, width), (width, D)),
                _dims("B, D", (B, D)),
                width * D,
            )
        )
        x, x_letters, width = "h'", "D", D
    if model.adaptive is not None:
        lines += _adaptive_lines(model.adaptive, x, x_letters, B, V)
        return lines
    output = model.output
    assert output is not None  # a full softmax, the adaptive one returned above
    bias = " + b_z" if output.bias is not None else ""
    tied = "   (tied: U = E)" if cfg.tie_weights else ""
    lines.append(
        Product(
            f"z = U {x}{bias}{tied}",
            _matmul(f"B, {x_letters}", f"{x_letters}, V", (B, width), (width, V)),
            _dims("B, V", (B, V)),
            width * V,
        )
    )
    if model.direct is not None:
        width0 = model.input_width
        lines.append(
            Product(
                "z = z + W_d e   (direct connections)",
                _matmul(f"B, {e_letters}", f"{e_letters}, V", (B, width0), (width0, V)),
                _dims("B, V", (B, V)),
                width0 * V,
            )
        )
    lines.append(Product("ŷ = softmax(z)", "", _dims("B, V", (B, V))))
    return lines


def _fofe_lines(alpha: float, K: int, B: int, C: int, V: int, D: int) -> list[Product]:
    """The FOFE history: the C look-ups, their code z (a weighted sum: C·D multiply-adds per
    example), and the input e = [the K most recent embeddings; z]."""
    lines = [
        Product(
            f"x_k = E·x(t-k), k = 1..{C}",
            f"{C} look-ups of rows of E {_dims('V, D', (V, D))}",
            _dims("B, C, D", (B, C, D)),
        ),
        Product(
            f"z = Σ_k {alpha:g}^(k-1) x_k   (FOFE code of the C words)",
            f"(B, D, C) @ (C) = ({B}, {D}, {C}) @ ({C})",
            _dims("B, D", (B, D)),
            C * D,
        ),
    ]
    words = [f"x_{k}" for k in range(K, 0, -1)]
    shown = "; ".join(words) if K <= 4 else f"{words[0]}; ...; {words[-1]}"
    lines.append(
        Product(
            f"e = [{shown}; z]" if K else "e = z",
            "",
            _dims("B, (K+1)·D", (B, (K + 1) * D)),
        )
    )
    return lines


def _residual_lines(
    model: FeedForwardLM, x: str, letters: str, B: int, width: int
) -> list[Product]:
    """Each pre-norm residual block's two products, then the closing layer norm."""
    lines = []
    act = model.config.activation
    for i, block in enumerate(model.blocks, start=1):
        assert isinstance(block, ResidualBlock)
        R = block.inner.out_features
        lines.append(
            Product(
                f"{x} = {x} + Wb{i} {act}(Wa{i} LN({x}) + ba{i}) + bb{i}   (residual block {i})",
                f"(B, {letters}) @ ({letters}, R) @ (R, {letters}) = ({B}, {width}) @ ({width}, {R}) "
                f"@ ({R}, {width})",
                _dims(f"B, {letters}", (B, width)),
                2 * width * R,
            )
        )
    lines.append(Product(f"{x} = LN({x})", "", _dims(f"B, {letters}", (B, width))))
    return lines


def _adaptive_lines(
    adaptive: nn.AdaptiveLogSoftmaxWithLoss, x: str, letters: str, B: int, V: int
) -> list[Product]:
    """The adaptive softmax's products: the head (frequent words and one score per cluster), then
    each tail cluster through its smaller projection (every cluster: the whole distribution)."""
    width = adaptive.in_features
    head = adaptive.head.out_features
    lines = [
        Product(
            f"z_head = U_0 {x}   ({adaptive.shortlist_size} words + {adaptive.n_clusters} clusters)",
            _matmul(f"B, {letters}", f"{letters}, S", (B, width), (width, head)),
            _dims("B, S", (B, head)),
            width * head,
        )
    ]
    for i, tail in enumerate(adaptive.tail, start=1):
        down, up = (m for m in tail.children() if isinstance(m, nn.Linear))
        r, n = down.out_features, up.out_features
        lines.append(
            Product(
                f"z_{i} = U_{i} (P_{i} {x})   (cluster {i}: {n} words)",
                f"({letters}) @ ({letters}, r{i}) @ (r{i}, n{i}) = ({B}, {width}) @ ({width}, {r}) "
                f"@ ({r}, {n})",
                _dims(f"B, n{i}", (B, n)),
                width * r + r * n,
            )
        )
    lines.append(
        Product(
            "log ŷ = log_softmax(z_head) + log_softmax(z_i) per cluster", "", _dims("B, V", (B, V))
        )
    )
    return lines


def skipgram_computation(
    model: SkipGram, negatives: int, window: int = 5, batch: int = 1
) -> list[Product]:
    """Skip-gram (or CBOW) with negative sampling, one line per step, for ``batch`` examples
    (skip-gram: (centre, context) pairs; CBOW: centre words with their windows)."""
    V, D, N, B = model.vocab_size, model.dim, negatives, batch
    if model.cbow:
        first = Product(
            f"v = mean(W_in[x(t-W)], ..., W_in[x(t+W)])   (up to 2W = {2 * window} words)",
            f"sparse ({B}, V; <= {2 * window} nz a row) @ (V, D) = ({B}, {V}) @ ({V}, {D})",
            _dims("B, D", (B, D)),
            2 * window * D,
        )
        target = "x(t)"
    else:
        first = Product(
            "v = W_in[x(t)]",
            f"a look-up of a row of W_in {_dims('V, D', (V, D))}",
            _dims("B, D", (B, D)),
        )
        target = "x(t+j)"
    return [
        first,
        Product(
            f"u = W_out[{target}, n_1, ..., n_N]   (N = {N} noise words)",
            f"1+N look-ups of rows of W_out {_dims('V, D', (V, D))}",
            _dims("B, 1+N, D", (B, 1 + N, D)),
        ),
        Product(
            "s = u v",
            _matmul("B, 1+N, D", "B, D, 1", (B, 1 + N, D), (B, D, 1)),
            _dims("B, 1+N", (B, 1 + N)),
            (1 + N) * D,
        ),
        Product("loss = -log σ(s_0) - Σ_k log σ(-s_k)", "", "(B,)"),
    ]


def classifier_macs(model: nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Multiply-adds of one example's forward pass through a classifier, averaged over ``batch``
    (sparse inputs cost their non-zeros: a bag of L ids pooled into D dimensions is a sparse
    product (1, V) @ (V, D) with L non-zeros, L·D multiply-adds)."""
    from ffnlp.models.feature_mlp import FeatureMLP
    from ffnlp.models.logreg import LogisticRegression
    from ffnlp.models.pooled import PooledEmbeddingClassifier

    rows = int(batch["x"].shape[0]) if "x" in batch else int(batch["offsets"].numel())
    per_row = (  # features (dense) or non-zeros (sparse) of one example
        int(batch["x"].shape[1]) if "x" in batch else batch["ids"].numel() / max(rows, 1)
    )
    if isinstance(model, LogisticRegression):
        return per_row * model.linear.embedding_dim
    if isinstance(model, FeatureMLP):
        rest = [m for m in model.rest.modules() if isinstance(m, MLP)]
        return per_row * model.input.embedding_dim + sum(m.macs_per_example() for m in rest)
    if isinstance(model, PooledEmbeddingClassifier):
        pools = 2 if model.pooling == "mean_max" else 1
        return pools * per_row * model.embedding.embedding_dim + model.mlp.macs_per_example()
    members = getattr(model, "members", None)
    if isinstance(members, nn.ModuleList):  # an ensemble (model.ensemble): every member's pass
        return sum(classifier_macs(member, batch) for member in members)
    raise TypeError(f"no cost model for {type(model).__name__}")


def total_macs(lines: list[Product]) -> int:
    return sum(line.macs for line in lines)


def classifier_forward(clf: Any, texts: list[str]) -> tuple[list[LayerCall], float]:
    """A trained classifier's forward pass on ``texts``, layer by layer, and its multiply-adds
    per text (on average over these texts)."""
    tokens = clf.tokenizer.tokenize_all(texts)
    labels = torch.zeros(len(texts), dtype=torch.long)  # (B,) unread: the forward pass only
    source = clf.featurizer.source(tokens, list(texts), labels)
    batch = next(iter(source.batches(len(texts), None)))
    return classifier_calls(clf.model, batch), classifier_macs(clf.model, batch)


def lm_forward(lm: Any, texts: list[str]) -> tuple[list[Product], dict[str, int]]:
    """A trained feed-forward LM's computation on ``texts`` read as histories (their last C
    words), checked against its real forward pass, and the sizes its letters stand for."""
    from ffnlp.text.corpus import mask_before_sentence_start

    net = lm.network
    C = net.config.context_size
    contexts = []
    for t in texts:
        words = t.lower().split() if lm.config.data.lowercase else t.split()
        history = [lm.eos_id, *lm.vocab.encode(words)]
        contexts.append([lm.eos_id] * max(0, C - len(history)) + history[-C:])
    context = torch.tensor(contexts, dtype=torch.long)  # (B, C)
    if not lm.config.data.cross_sentences:
        context = mask_before_sentence_start(context, lm.eos_id)
    lines = lm_computation(net, len(texts))
    net.eval()
    with torch.no_grad():  # the real forward pass, to show it gives what the lines say
        out = net.log_probs(context)  # (B, V)
    assert tuple(out.shape) == (len(texts), net.vocab_size)
    hidden = [m.out_features for m in net.hidden if isinstance(m, nn.Linear)]
    sizes = {"B": len(texts), "C": C, "D": net.embedding.embedding_dim}
    if net.config.history == "fofe":
        sizes["K"] = net.config.fofe_exact
    sizes.update({"H" if len(hidden) == 1 else f"H{i}": h for i, h in enumerate(hidden, 1)})
    inner = [b.inner.out_features for b in net.blocks if isinstance(b, ResidualBlock)]
    if inner:
        sizes["R"] = inner[0]
    sizes["V"] = net.vocab_size
    return lines, sizes


def _cost(macs: float) -> dict[str, float]:
    return {"macs_per_example": macs, "flops_per_example": 2 * macs}


def explain_classifier(clf: Any, texts: list[str]) -> tuple[dict[str, Any], str, str]:
    """`explain shapes` of a trained classifier on ``texts``: its report (every layer, the cost
    per example), the title of its table and what the cost is counted per."""
    calls, macs = classifier_forward(clf, texts)
    model = type(clf.model).__name__
    layers = [c.__dict__ for c in calls]
    report = {"task": "classify", "model": model, "batch": len(texts), "layers": layers}
    title = f"forward pass on B = {len(texts)} texts"
    return {**report, **_cost(macs)}, title, "text (on average over these texts)"


def explain_lm(lm: Any, texts: list[str]) -> tuple[dict[str, Any], str, str]:
    """`explain shapes` of a trained feed-forward LM, as :func:`explain_classifier`."""
    lines, sizes = lm_forward(lm, texts)
    steps = [line.__dict__ for line in lines]
    report = {"task": "lm", "sizes": sizes, "lines": steps, **_cost(total_macs(lines))}
    letters = ", ".join(f"{k} = {v:,}" for k, v in sizes.items())
    return report, f"feed-forward LM, {letters}", "predicted word"


def explain_word2vec(w2v: Any) -> tuple[dict[str, Any], str, str]:
    """`explain shapes` of trained word vectors: the scores of a pair (or a window) and its noise
    words, as :func:`explain_classifier`."""
    model, cfg = w2v.model, w2v.config
    batch = cfg.train.batch_size
    lines = skipgram_computation(model, cfg.model.negative, cfg.model.window, batch)
    steps = [line.__dict__ for line in lines]
    report = {"task": "w2v", "architecture": cfg.model.architecture, "lines": steps}
    name = "CBOW" if model.cbow else "skip-gram"
    title = (
        f"{name}, V = {model.vocab_size:,}, D = {model.dim}, N = {cfg.model.negative}, B = {batch}"
    )
    per = "centre word" if model.cbow else "(centre, context) pair"
    return {**report, **_cost(total_macs(lines))}, title, per
