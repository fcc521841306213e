"""Hyper-parameter search on Optuna: ``ffnlp tune classify|lm|w2v``.

- :mod:`ffnlp.tune.space`: the search-space file (distributions of config keys), checked against
  the task's configuration before the first trial;
- :mod:`ffnlp.tune.tasks`: what the tuner needs of each task (its config, data, metric, recipe);
- :mod:`ffnlp.tune.objective`: one trial, a normal run folder scored on dev data;
- :mod:`ffnlp.tune.pruning`: the Trainer callback that reports to Optuna and stops pruned trials;
- :mod:`ffnlp.tune.sampling`: TPE seeded per trial number;
- :mod:`ffnlp.tune.prepare`: the options, checked before the first trial;
- :mod:`ffnlp.tune.study`: the study (resuming, parallel workers, --total-trials);
- :mod:`ffnlp.tune.storage`: --storage (SQLite, a journal file, PostgreSQL, MySQL), heartbeats
  and the retry of a dead worker's trial, the warning for a second worker on SQLite;
- :mod:`ffnlp.tune.rescore`: the front-runners re-scored with fresh seeds, against the base;
- :mod:`ffnlp.tune.results`: trials.csv, best.toml, --keep, --refit, --seeds.

Optuna is an optional extra (``pip install 'ffnlp[tune]'``): nothing here imports it until a
study runs, and :func:`~ffnlp.tune.study.tune` says how to install it when it is missing.
"""
