"""`ffnlp explain shapes` of a run of any task: the run read by its task's loader, its network
explained by :mod:`ffnlp.inspect.shapes`."""

from pathlib import Path
from typing import Any

from ffnlp.errors import ConfigError, FfnlpError
from ffnlp.folders.folder import a_run, read_arch
from ffnlp.tasks import registry


def explain_run(run: Path, texts: list[str]) -> tuple[dict[str, Any], str, str]:
    """The forward pass of the run in folder ``run`` (a classifier or a feed-forward LM on
    ``texts``; word2vec), as :func:`ffnlp.inspect.shapes.explain_classifier` gives it: the
    report, its table's title and what the cost is counted per."""
    from ffnlp.inspect import shapes as explained  # imports torch

    task = read_arch(run)["task"]
    spec = registry.find(task)  # an unknown task: the classifier's loader says what it is
    network = spec.explain if spec is not None else "classifier"
    if network == "classifier":
        from ffnlp.tasks.classify import load

        return explained.explain_classifier(load(run), texts)
    if network == "language_model":
        from ffnlp.tasks.lm import load as load_lm

        lm = load_lm(run, standalone=True)
        if lm.network is None:
            raise FfnlpError(
                f"{run} holds a Kneser-Ney n-gram model: counts, no matrix products; explain "
                'shapes needs a feed-forward LM (kind = "ffnn")'
            )
        return explained.explain_lm(lm, texts)
    if network == "word_vectors":
        from ffnlp.tasks.w2v import load as load_w2v

        return explained.explain_word2vec(load_w2v(run))
    raise ConfigError(
        f"{run} is {a_run(task)}; explain shapes shows the networks of classifiers, "
        "feed-forward language models and word2vec"
    )
