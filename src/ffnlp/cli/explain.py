"""`ffnlp explain shapes|dead|backprop|graph|numpy-vs-torch`: see inside a network."""

# Over 400 lines on purpose: five commands of one group, each only its options, one library call and the printing.

from functools import partial
from pathlib import Path

import typer

from ffnlp.cli.common import err_console, out_console, print_json, screen
from ffnlp.cli.explain_collapse import collapse
from ffnlp.errors import ConfigError, FfnlpError
from ffnlp.tasks import registry

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


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
    from ffnlp.folders.folder import a_run, read_arch

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


def _classifier_shapes(run: Path, text: list[str], json_: bool) -> None:
    from ffnlp.inspect.shapes import classifier_forward  # imports torch
    from ffnlp.tasks.classify import load  # imports torch

    clf = load(run)
    calls, macs = classifier_forward(clf, list(text))
    model = type(clf.model).__name__
    if json_:
        layers = [c.__dict__ for c in calls]
        print_json(
            {
                "task": "classify",
                "model": model,
                "batch": len(text),
                "layers": layers,
                **_cost(macs),
            }
        )
        return
    screen.layer_calls(f"{run}: forward pass on B = {len(text)} texts", calls)
    screen.cost_line(macs, "text (on average over these texts)")


def _cost(macs: float) -> dict[str, float]:
    return {"macs_per_example": macs, "flops_per_example": 2 * macs}


def _lm_shapes(run: Path, text: list[str], json_: bool) -> None:
    from ffnlp.inspect.shapes import lm_forward, total_macs  # imports torch
    from ffnlp.tasks.lm import load  # imports torch

    lm = load(run, standalone=True)
    if lm.network is None:
        raise FfnlpError(
            f"{run} holds a Kneser-Ney n-gram model: counts, no matrix products; explain shapes "
            'needs a feed-forward LM (kind = "ffnn")'
        )
    lines, sizes = lm_forward(lm, list(text))
    macs = total_macs(lines)
    if json_:
        steps = [line.__dict__ for line in lines]
        print_json({"task": "lm", "sizes": sizes, "lines": steps, **_cost(macs)})
        return
    letters = ", ".join(f"{k} = {v:,}" for k, v in sizes.items())
    screen.computation(f"{run}: feed-forward LM, {letters}", lines)
    screen.cost_line(macs, "predicted word")


def _w2v_shapes(run: Path, json_: bool) -> None:
    from ffnlp.inspect.shapes import skipgram_computation, total_macs  # imports torch
    from ffnlp.tasks.w2v import load  # imports torch

    w2v = load(run)
    model, cfg = w2v.model, w2v.config
    batch = cfg.train.batch_size
    lines = skipgram_computation(model, cfg.model.negative, cfg.model.window, batch)
    macs = total_macs(lines)
    if json_:
        steps = [line.__dict__ for line in lines]
        architecture = cfg.model.architecture
        print_json({"task": "w2v", "architecture": architecture, "lines": steps, **_cost(macs)})
        return
    name = "CBOW" if model.cbow else "skip-gram"
    title = f"{run}: {name}, V = {model.vocab_size:,}, D = {model.dim}, N = {cfg.model.negative}, B = {batch}"
    screen.computation(title, lines)
    screen.cost_line(macs, "centre word" if model.cbow else "(centre, context) pair")


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
    from ffnlp.inspect.diagnostics import dead_units  # imports torch
    from ffnlp.tasks.classify import load, read_split  # imports torch

    clf = load(run)
    examples = read_split(data, clf.config)
    report = dead_units(clf.model, clf.source(examples.texts))  # the inputs; no label read
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
    from ffnlp.inspect.backprop_check import compare_with_autograd, parse_sizes  # imports torch

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
    from ffnlp.inspect.graph import (  # a large module: loaded when the command runs (start-up)
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
        screen.graph(expression, result, diff, fmt)
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
    from ffnlp.inspect.numpy_learner import numpy_vs_torch as side_by_side  # imports torch

    result = side_by_side(
        train,
        dev,
        max_features,
        hidden,
        activation,
        plot,
        on_start=None if json_ else partial(screen.numpy_vs_torch_start, lr, batch_size),
        on_epoch=None if json_ else screen.numpy_vs_torch_epoch,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
    )
    if json_:
        print_json(result)
    else:
        screen.numpy_vs_torch(result, plot)


app.command("collapse")(collapse)  # in its own module, so that the explain commands grow apart
