"""The toy regression task (see :mod:`.task`) and its :class:`~ffnlp.tasks.registry.TaskSpec`.

One line makes it known to ffnlp: ``register_task(SPEC)`` (a package of ffnlp puts that call in
its ``spec.py``; the tests make it in a fixture, so that the other tests see only ffnlp's own
tasks).
"""

from ffnlp.tasks.registry import TaskSpec
from tests.tasks.toy_regression.task import ToyConfig, load, train_toy

SPEC = TaskSpec(
    name="toy_regression",
    config=ToyConfig,  # [model] and [train]
    train=train_toy,  # train_toy(train, dev=, test=, config=, overrides=, out=, ...)
    load=load,  # a finished run folder -> ToyRun
    inputs=("train", "dev", "test"),  # the recipe's data; dev and test are scored
    metric="dev.loss",  # mean squared error on dev: what a study minimises by default
    direction="minimize",
    figures=("loss", "r2"),  # summary.json's dev and test figures
    commands=("train",),
    result_type="ToyRun",
)
