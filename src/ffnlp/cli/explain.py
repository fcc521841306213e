"""`ffnlp explain shapes|dead|backprop|graph|numpy-vs-torch`: see inside a network."""

# Over 400 lines on purpose: five commands of one group, each only its options, one library call and the printing.

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from ffnlp.cli.common import err_console, out_console, print_json
from ffnlp.cli.explain_collapse import collapse

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def _classifier(run: Path):
    from ffnlp.tasks.classify import load

    return load(run)


@app.command("shapes")
def shapes(
    run: Path = typer.Argument(
        ..., help="Run directory of a trained classifier, feed-forward LM or word2vec model."
    ),
    text: list[str] = typer.Option(
        ["a gripping , funny film", "not good"],
        "--text",
        "-t",
        help="Texts to push through the network (repeatable): a classifier reads each as a "
        "document, a language model each as a history (its last C words).",
    ),
    json_: bool = typer.Option(
        False, "--json", help="One JSON object: every layer or line, and the cost per example."
    ),
) -> None:
    """The forward pass with the shape of every matrix product, and its FLOPs per example.

    Classifiers: every layer the texts go through. Language models: the computation written out,
    e = [E·x(t-C); ...; E·x(t-1)], h = act(W e + b), z = U h, ŷ = softmax(z). word2vec: the
    scores of a pair and its noise words. FLOPs count 2 per multiply-add of the products.

    Example:

        ffnlp explain shapes runs/sst2_ffnn --text "a gripping , funny film" --text "not good"
    """
    from ffnlp.errors import ConfigError
    from ffnlp.models.io import a_run, read_arch
    from ffnlp.tasks import registry

    task = read_arch(run)["task"]
    spec = registry.find(task)  # an unknown task: the classifier's loader says what it is
    network = spec.explain if spec is not None else "classifier"
    if network == "language_model":
        _lm_shapes(run, text, json_)
    elif network == "word_vectors":
        _w2v_shapes(run, json_)
    elif network == "classifier":
        _classifier_shapes(run, text, json_)
    else:
        raise ConfigError(
            f"{run} is {a_run(task)}; explain shapes shows the networks of classifiers, "
            "feed-forward language models and word2vec"
        )


def _cost_line(macs: float, per: str) -> str:
    return (
        f"forward: {macs:,.0f} multiply-adds = {2 * macs:,.0f} FLOPs per {per} "
        "(matrix products; biases, activations and softmax left out)"
    )


def _classifier_shapes(run: Path, text: list[str], json_: bool) -> None:
    import torch

    from ffnlp.inspect.shapes import classifier_calls, classifier_macs

    clf = _classifier(run)
    tokens = clf.tokenizer.tokenize_all(text)
    source = clf.featurizer.source(tokens, list(text), torch.zeros(len(text), dtype=torch.long))
    batch = next(iter(source.batches(len(text), None)))
    calls = classifier_calls(clf.model, batch)
    macs = classifier_macs(clf.model, batch)
    if json_:
        print_json(
            {
                "task": "classify",
                "model": type(clf.model).__name__,
                "batch": len(text),
                "layers": [c.__dict__ for c in calls],
                "macs_per_example": macs,
                "flops_per_example": 2 * macs,
            }
        )
        return
    table = Table(title=f"{run}: forward pass on B = {len(text)} texts")
    for col in ("layer", "module", "input", "output", "matrix product", "mult-adds", "params"):
        table.add_column(col, justify="right" if col in ("mult-adds", "params") else "left")
    for c in calls:
        table.add_row(
            Text(c.name),
            Text(c.kind),
            Text(" ".join(str(s) for s in c.inputs)),
            Text(str(c.output)),
            Text(c.product),
            f"{c.macs:,}" if c.macs else "",
            f"{c.params:,}",
        )
    out_console.print(table)
    out_console.print(_cost_line(macs, "text (on average over these texts)"))


def _computation_table(title: str, lines: list) -> Table:
    table = Table(title=title)
    table.add_column("step")
    table.add_column("matrix product (letters) = (numbers)")
    table.add_column("output")
    table.add_column("mult-adds / example", justify="right")
    for line in lines:  # Text: the formulas' brackets (W_in[x(t)]) are not Rich markup
        table.add_row(
            Text(line.formula),
            Text(line.product),
            Text(line.output),
            f"{line.macs:,}" if line.macs else "",
        )
    return table


def _lm_shapes(run: Path, text: list[str], json_: bool) -> None:
    import torch

    from ffnlp.errors import FfnlpError
    from ffnlp.inspect.shapes import lm_computation, total_macs
    from ffnlp.tasks.lm import load
    from ffnlp.text.corpus import mask_before_sentence_start

    lm = load(run, standalone=True)
    net = lm.network
    if net is None:
        raise FfnlpError(
            f"{run} holds a Kneser-Ney n-gram model: counts, no matrix products; explain shapes "
            'needs a feed-forward LM (kind = "ffnn")'
        )
    C = net.config.context_size
    contexts = []
    for t in text:
        words = t.lower().split() if lm.config.data.lowercase else t.split()
        history = [lm.eos_id, *lm.vocab.encode(words)]
        contexts.append([lm.eos_id] * max(0, C - len(history)) + history[-C:])
    context = torch.tensor(contexts, dtype=torch.long)  # (B, C)
    if not lm.config.data.cross_sentences:
        context = mask_before_sentence_start(context, lm.eos_id)
    lines = lm_computation(net, len(text))
    net.eval()
    with torch.no_grad():  # the real forward pass, to show it gives what the lines say
        out = net.log_probs(context)  # (B, V)
    assert tuple(out.shape) == (len(text), net.vocab_size)
    macs = total_macs(lines)
    hidden = [m.out_features for m in net.hidden if isinstance(m, torch.nn.Linear)]
    sizes = {"B": len(text), "C": C, "D": net.embedding.embedding_dim}
    sizes.update({"H" if len(hidden) == 1 else f"H{i}": h for i, h in enumerate(hidden, 1)})
    sizes["V"] = net.vocab_size
    if json_:
        print_json(
            {
                "task": "lm",
                "sizes": sizes,
                "lines": [line.__dict__ for line in lines],
                "macs_per_example": macs,
                "flops_per_example": 2 * macs,
            }
        )
        return
    letters = ", ".join(f"{k} = {v:,}" for k, v in sizes.items())
    out_console.print(_computation_table(f"{run}: feed-forward LM, {letters}", lines))
    out_console.print(_cost_line(macs, "predicted word"))


def _w2v_shapes(run: Path, json_: bool) -> None:
    from ffnlp.inspect.shapes import skipgram_computation, total_macs
    from ffnlp.tasks.w2v import load

    w2v = load(run)
    cfg = w2v.config
    lines = skipgram_computation(
        w2v.model, cfg.model.negative, cfg.model.window, cfg.train.batch_size
    )
    macs = total_macs(lines)
    name = "CBOW" if w2v.model.cbow else "skip-gram"
    per = "centre word" if w2v.model.cbow else "(centre, context) pair"
    if json_:
        print_json(
            {
                "task": "w2v",
                "architecture": cfg.model.architecture,
                "lines": [line.__dict__ for line in lines],
                "macs_per_example": macs,
                "flops_per_example": 2 * macs,
            }
        )
        return
    title = (
        f"{run}: {name}, V = {w2v.model.vocab_size:,}, D = {w2v.model.dim}, "
        f"N = {cfg.model.negative}, B = {cfg.train.batch_size}"
    )
    out_console.print(_computation_table(title, lines))
    out_console.print(_cost_line(macs, per))


@app.command("dead")
def dead(
    run: Path = typer.Argument(..., help="Run directory of a trained classifier."),
    data: Path = typer.Option(..., "--data", help="Labelled data to run through the network."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Dead ReLUs: hidden units that output zero for every example of --data.

    Example:

        ffnlp explain dead runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.dev
    """
    import torch

    from ffnlp.inspect.diagnostics import dead_units
    from ffnlp.tasks.classify import read_split

    clf = _classifier(run)
    examples = read_split(data, clf.config)
    tokens = clf.tokenizer.tokenize_all(examples.texts)
    source = clf.featurizer.source(
        tokens, examples.texts, torch.zeros(len(examples), dtype=torch.long)
    )
    report = dead_units(clf.model, source)
    if json_:
        print_json(report)
        return
    if not report:
        out_console.print("This network has no ReLU layers.")
    for name, r in report.items():
        out_console.print(
            f"{name}: {r['dead']} of {r['units']} units never fire ({r['dead_fraction']:.1%})"
        )


@app.command("backprop")
def backprop(
    sizes: str = typer.Option("20,16,8,3", "--sizes", help="Layer sizes D,H1,...,K."),
    activation: str = typer.Option("tanh", "--activation", help="relu, tanh or sigmoid."),
    batch: int = typer.Option(32, "--batch", min=1, help="Examples in the random batch."),
) -> None:
    """Backpropagation by hand (NumPy) against PyTorch autograd and finite differences.

    Example:

        ffnlp explain backprop --sizes 20,16,8,3 --activation relu
    """
    from ffnlp.inspect.backprop_check import compare_with_autograd, parse_sizes

    result = compare_with_autograd(parse_sizes(sizes), activation, batch)
    out_console.print(f"loss: NumPy {result['loss_numpy']:.8f}, torch {result['loss_torch']:.8f}")
    for i, err in enumerate(result["max_abs_diff"]):
        out_console.print(f"layer {i + 1}: max |dW_numpy - dW_autograd| = {err:.2e}")
    out_console.print(f"finite differences: worst relative error {result['finite_difference']:.2e}")


@app.command("graph")
def graph(
    expression: str = typer.Argument(
        ...,
        help='The expression, e.g. "c*(a+2*b)"; quote it. At most 10,000 characters, nested '
        "at most 100 levels deep.",
    ),
    values: list[str] = typer.Argument(None, help="A value for every variable: name=NUMBER ..."),
    json_: bool = typer.Option(False, "--json", help="Print {value, grad, nodes, steps} as JSON."),
    dot: Path = typer.Option(
        None,
        "--dot",
        help="Write the graph as Graphviz DOT to this file "
        "(and FILE with .png beside it when Graphviz's dot is installed).",
    ),
) -> None:
    """Backpropagation on a computation graph, by hand: every node's value and gradient, and the chain rule written out per edge, checked against PyTorch autograd.

    Operators + - * / ** (** before unary minus, as in Python: -a**2 is -(a**2)), parentheses, numbers, variables and the functions exp, log, tanh, sigmoid, relu. An expression that starts with '-' goes after '--': ffnlp explain graph -- "-a**2" a=3

    Example:

        ffnlp explain graph "c*(a+2*b)" a=3 b=1 c=-2
    """
    from ffnlp.inspect.graph import (
        autograd_max_diff,
        check_dot_path,
        explain,
        fmt,
        parse_assignments,
        write_dot,
    )

    if dot is not None:
        check_dot_path(dot)  # before the work: a folder, a link, a read-only place
    result = explain(expression, parse_assignments(values or []))
    diff = autograd_max_diff(result)
    drawn = write_dot(result, dot) if dot is not None else None
    if json_:
        print_json({**result.to_dict(), "autograd_max_abs_diff": diff})
    else:
        table = Table(title=f"L = {expression}: forward (inputs first), then dL/dnode")
        for col in ("node", "expression", "op", "inputs", "value", "dL/dnode"):
            table.add_column(col, justify="right" if col in ("value", "dL/dnode") else "left")
        for node in result.nodes:
            table.add_row(
                node.name,
                node.text,
                node.op,
                " ".join(result.nodes[i].name for i in node.inputs),
                fmt(node.value),
                "" if node.grad is None else fmt(node.grad),
            )
        out_console.print(table)
        out_console.print("Backward, last node first: the chain rule on every edge", style="bold")
        for step in result.steps:
            out_console.print(
                f"  {result.line(step)}    ({step.rule})",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        grads = ", ".join(f"dL/d{name} = {fmt(g)}" for name, g in result.grads().items())
        out_console.print(f"L = {fmt(result.output.value)}" + (f"; {grads}" if grads else ""))
        out_console.print(f"PyTorch autograd (float64) agrees: max |difference| = {diff:.2g}")
    if drawn is not None:
        dot_path, png = drawn
        note = f"wrote {dot_path}" + (
            f" and {png}" if png else " (PNG skipped: Graphviz's dot is not on PATH)"
        )
        console = err_console if json_ else out_console
        console.print(note, markup=False, highlight=False, soft_wrap=True)


@app.command("numpy-vs-torch")
def numpy_vs_torch(
    train: Path = typer.Option(..., "--train", help="Labelled training data (any ffnlp format)."),
    dev: Path = typer.Option(..., "--dev", help="Labelled dev data: accuracy after every epoch."),
    hidden: int = typer.Option(
        64, "--hidden", min=0, help="Hidden units of the MLP; 0 = logistic regression."
    ),
    activation: str = typer.Option("relu", "--activation", help="relu, tanh or sigmoid."),
    epochs: int = typer.Option(5, "--epochs", min=1, help="Passes over the training data."),
    lr: float = typer.Option(0.5, "--lr", help="Learning rate of plain minibatch SGD."),
    batch_size: int = typer.Option(
        8,
        "--batch-size",
        min=1,
        help="Examples per minibatch (plain SGD learns these features faster in small ones).",
    ),
    max_features: int = typer.Option(
        5000,
        "--max-features",
        min=1,
        help="Keep the most frequent word 1-2-grams (tf-idf). The NumPy network reads dense rows "
        "(B x features), so keep this in the thousands.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial weights and the shuffling."),
    plot: Path = typer.Option(
        None, "--plot", help="Write the two loss curves to this image (.png, .pdf, .svg)."
    ),
    json_: bool = typer.Option(
        False, "--json", help="Print per-epoch and per-step figures as JSON."
    ),
) -> None:
    """Train a NumPy network (forward, backward and SGD by hand) and ffnlp's PyTorch model side by side, from the same initial weights on the same minibatches, and compare their losses and dev accuracies.

    Features: tf-idf bags of word 1-2-grams, capped at --max-features columns (the NumPy side works on dense rows). Both sides compute in float64.

    Example:

        ffnlp explain numpy-vs-torch --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --hidden 64 --epochs 3 --plot numpy_vs_torch.png
    """
    from ffnlp.errors import ConfigError
    from ffnlp.inspect.numpy_learner import read_bag_of_ngrams, train_side_by_side
    from ffnlp.outputs import check_output_file

    if plot is not None:
        if plot.suffix.lower() not in (".png", ".pdf", ".svg"):
            raise ConfigError(f"--plot {plot}: name an image file ending in .png, .pdf or .svg")
        check_output_file(plot, "--plot")  # before the training: a folder, a link, read-only
    data = read_bag_of_ngrams(train, dev, max_features=max_features)
    model = "logistic regression" if hidden == 0 else f"MLP ({hidden} {activation} units)"
    if not json_:
        out_console.print(
            f"{model} on {data.num_features} features, SGD lr={lr}, batch "
            f"{batch_size}: NumPy (by hand) vs PyTorch (autograd)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    columns = ("epoch", "steps", "loss NumPy", "loss PyTorch", "dev acc NumPy", "dev acc PyTorch")
    header = "  ".join(f"{c:>{max(len(c), 6)}}" for c in columns)

    def row(record: dict) -> None:  # printed as each epoch ends
        if record["epoch"] == 1:
            out_console.print(header, markup=False, highlight=False)
        np_, pt = record["numpy"], record["torch"]
        cells = (
            record["epoch"],
            record["steps"],
            f"{np_['loss']:.6f}",
            f"{pt['loss']:.6f}",
            f"{np_['dev_accuracy']:.2%}",
            f"{pt['dev_accuracy']:.2%}",
        )
        line = "  ".join(f"{v:>{max(len(c), 6)}}" for c, v in zip(columns, cells, strict=True))
        out_console.print(line, markup=False, highlight=False)

    result = train_side_by_side(
        data.x_train,
        data.y_train,
        data.x_dev,
        data.y_dev,
        len(data.labels),
        hidden=[hidden] if hidden else [],
        activation=activation,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        on_epoch=None if json_ else row,
    )
    steps = len(result.step_loss["numpy"])
    if plot is not None:
        from ffnlp.report.plots import plot_loss_curves

        plot_loss_curves(
            {
                "NumPy (by hand)": result.step_loss["numpy"],
                "PyTorch (autograd)": result.step_loss["torch"],
            },
            plot,
            title=f"{model}: training loss, NumPy vs PyTorch",
            window=max(1, min(100, steps // 30)),
        )
    if json_:
        print_json({"model": model, "num_features": data.num_features, **result.to_dict()})
        return
    out_console.print(
        f"over {steps} steps: max |loss NumPy - loss PyTorch| = "
        f"{result.max_step_loss_diff:.1e}; after training, max |weight difference| = "
        f"{result.max_weight_diff:.1e}",
        highlight=False,
        soft_wrap=True,
    )
    if plot is not None:
        out_console.print(f"wrote {plot}", markup=False, highlight=False, soft_wrap=True)


app.command("collapse")(collapse)  # its own module, so that the explain commands grow apart
