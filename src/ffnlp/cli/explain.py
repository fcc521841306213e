"""`ffnlp explain shapes|dead|backprop|graph|numpy-vs-torch|collapse`: see inside a network."""

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli import options as opt
from ffnlp.cli.common import print_result, screen

app = opt.group(
    help="See inside: layer shapes, dead ReLUs, backprop by hand vs autograd, computation graphs, "
    "NumPy vs PyTorch training, linear collapse."
)

SHAPES, BACKPROP, GRAPH, NUMPY_VS_TORCH, COLLAPSE = opt.help_tables(
    shapes={
        "RUN": "Run directory of a trained classifier, feed-forward LM or word2vec model.",
        "--text": "Texts to push through the network (repeatable): a classifier reads each as a "
        "document, a language model each as a history (its last C words).",
        "--json": "One JSON object: every layer or line, and the cost per example.",
    },
    backprop={
        "--sizes": "Layer sizes D,H1,...,K.",
        "--activation": "relu, tanh or sigmoid.",
        "--batch": "Examples in the random batch.",
    },
    graph={
        "EXPRESSION": 'The expression, e.g. "c*(a+2*b)"; quote it. At most 10,000 characters, '
        "nested at most 100 levels deep.",
        "VALUES": "A value for every variable: name=NUMBER ...",
        "--json": "Print {value, grad, nodes, steps} as JSON.",
        "--dot": "Write the graph as Graphviz DOT to this file (and FILE with .png beside it when "
        "Graphviz's dot is installed).",
    },
    numpy_vs_torch={
        "--train": "Labelled training data (any ffnlp format).",
        "--dev": "Labelled dev data: accuracy after every epoch.",
        "--hidden": "Hidden units of the MLP; 0 = logistic regression.",
        "--activation": "relu, tanh or sigmoid.",
        "--epochs": "Passes over the training data.",
        "--lr": "Learning rate of plain minibatch SGD.",
        "--batch-size": "Examples per minibatch (plain SGD learns these features faster in small "
        "ones).",
        "--max-features": "Keep the most frequent word 1-2-grams (tf-idf). The NumPy network "
        "reads dense rows (B x features), so keep this in the thousands.",
        "--seed": "Seed of the initial weights and the shuffling.",
        "--plot": "Write the two loss curves to this image (.png, .pdf, .svg).",
        "--json": "Print per-epoch and per-step figures as JSON.",
    },
    collapse={
        "RUN": "Run directory of a trained classifier (mlp, pooled or logreg).",
        "--data": "Labelled data to run the network and its collapsed layer on.",
    },
)


@app.command("shapes")
def shapes(
    run: Annotated[Path, SHAPES("RUN")],
    text: Annotated[list[str], SHAPES("--text", "-t")] = [  # noqa: B006 (typer copies it)
        "a gripping , funny film",
        "not good",
    ],
    json_: Annotated[bool, SHAPES("--json")] = False,
) -> None:
    """The forward pass with the shape of every matrix product, and its FLOPs per example.

    Classifiers: every layer the texts go through. Language models: the computation written out,
    e = [E·x(t-C); ...; E·x(t-1)], h = act(W e + b), z = U h, ŷ = softmax(z). word2vec: the
    scores of a pair and its noise words. FLOPs count 2 per multiply-add of the products.

    Example:

        ffnlp explain shapes runs/sst2_ffnn --text "a gripping , funny film" --text "not good"
    """
    from ffnlp.tasks.shapes import explain_run  # imports torch

    report, title, per = explain_run(run, list(text))
    print_result(report, json_, lambda r: screen.shapes(f"{run}: {title}", r, per))


@app.command("dead")
def dead(
    run: opt.ClassifierRun,
    data: Annotated[Path, typer.Option("--data", help="Labelled data to run through the network.")],
    json_: opt.Json = False,
) -> None:
    """Dead ReLUs: hidden units that output zero for every example of --data.

    Example:

        ffnlp explain dead runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.dev
    """
    from ffnlp.tasks.classify.explain import dead_units_of_run  # imports torch

    print_result(dead_units_of_run(run, data), json_, screen.dead_units)


@app.command("backprop")
def backprop(
    sizes: Annotated[str, BACKPROP("--sizes")] = "20,16,8,3",
    activation: Annotated[str, BACKPROP("--activation")] = "tanh",
    batch: Annotated[int, BACKPROP("--batch", min=1)] = 32,
) -> None:
    """Backpropagation by hand (NumPy) against PyTorch autograd and finite differences.

    Example:

        ffnlp explain backprop --sizes 20,16,8,3 --activation relu
    """
    from ffnlp.inspect.backprop_check import compare_with_autograd, parse_sizes  # imports torch

    screen.backprop(compare_with_autograd(parse_sizes(sizes), activation, batch))


@app.command("graph")
def graph(
    expression: Annotated[str, GRAPH("EXPRESSION")],
    values: Annotated[list[str] | None, GRAPH("VALUES")] = None,
    json_: Annotated[bool, GRAPH("--json")] = False,
    dot: Annotated[Path | None, GRAPH("--dot")] = None,
) -> None:
    """Backpropagation on a computation graph, by hand: every node's value and gradient, and the chain rule written out per edge, checked against PyTorch autograd.

    Operators + - * / ** (** before unary minus, as in Python: -a**2 is -(a**2)), parentheses, numbers, variables and the functions exp, log, tanh, sigmoid, relu. An expression that starts with '-' goes after '--': ffnlp explain graph -- "-a**2" a=3

    Example:

        ffnlp explain graph "c*(a+2*b)" a=3 b=1 c=-2
    """
    from ffnlp.inspect.graph import explain_command, fmt  # a large module: when it runs

    result, report, drawn = explain_command(expression, values or [], dot)
    diff = report["autograd_max_abs_diff"]
    print_result(report, json_, lambda _: screen.graph(expression, result, diff, fmt))
    if drawn is not None:
        screen.dot_written(*drawn, on_err=json_)


@app.command("numpy-vs-torch")
def numpy_vs_torch(
    train: Annotated[Path, NUMPY_VS_TORCH("--train")],
    dev: Annotated[Path, NUMPY_VS_TORCH("--dev")],
    hidden: Annotated[int, NUMPY_VS_TORCH("--hidden", min=0)] = 64,
    activation: Annotated[str, NUMPY_VS_TORCH("--activation")] = "relu",
    epochs: Annotated[int, NUMPY_VS_TORCH("--epochs", min=1)] = 5,
    lr: Annotated[float, NUMPY_VS_TORCH("--lr")] = 0.5,
    batch_size: Annotated[int, NUMPY_VS_TORCH("--batch-size", min=1)] = 8,
    max_features: Annotated[int, NUMPY_VS_TORCH("--max-features", min=1)] = 5000,
    seed: Annotated[int, NUMPY_VS_TORCH("--seed")] = 0,
    plot: Annotated[Path | None, NUMPY_VS_TORCH("--plot")] = None,
    json_: Annotated[bool, NUMPY_VS_TORCH("--json")] = False,
) -> None:
    """Train a NumPy network (forward, backward and SGD by hand) and ffnlp's PyTorch model side by side, from the same initial weights on the same minibatches, and compare their losses and dev accuracies.

    Features: tf-idf bags of word 1-2-grams, capped at --max-features columns (the NumPy side works on dense rows). Both sides compute in float64.

    Example:

        ffnlp explain numpy-vs-torch --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --hidden 64 --epochs 3 --plot numpy_vs_torch.png
    """
    from ffnlp.inspect.numpy_learner import numpy_vs_torch as side_by_side  # imports torch

    on_start = None if json_ else partial(screen.numpy_vs_torch_start, lr, batch_size)
    training: dict[str, Any] = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    training["on_epoch"] = None if json_ else screen.numpy_vs_torch_epoch
    result = side_by_side(train, dev, max_features, hidden, activation, plot, on_start, **training)
    print_result(result, json_, lambda r: screen.numpy_vs_torch(r, plot))


@app.command("collapse")
def collapse(
    run: Annotated[Path, COLLAPSE("RUN")],
    data: Annotated[Path | None, COLLAPSE("--data")] = None,
    json_: opt.Json = False,
) -> None:
    """The single layer W0 x + b0 a linear network equals (W0 = WL...W2 W1, b0 = WL(...W2 b1 + b2...) + bL), and its outputs against the network's.

    Only a network with no non-linearity between its layers collapses (model.mlp.activation =
    "identity"; dropout is the identity at evaluation). With --data, both are run on the same
    examples: the largest difference between their logits, and both accuracies.

    Example:

        ffnlp explain collapse runs/sst2_linear --data ../shared/data/sst2/stsa.binary.dev
    """
    from ffnlp.tasks.classify.explain import collapse_run  # imports torch

    print_result(collapse_run(run, data), json_, lambda r: screen.collapse(run, r))
