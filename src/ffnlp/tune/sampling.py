"""The sampler: Optuna's TPE, its random numbers for trial n drawn from a seed made of the
study's seed and n.

One seeded TPESampler per process would make two workers started together on one study draw the
same first trials, and a resumed study repeat the start of the first session's random search.
Seeding per trial number instead makes every trial's draw depend on the seed, its number and the
trials before it, whichever process runs it: a study run by one process is reproducible, and
parallel or resumed workers explore different points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

STARTUP_TRIALS = 10  # random trials before TPE models the results (Optuna's default)


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s draw: NumPy's SeedSequence of (seed, number), so that
    neighbouring trials get unrelated streams (seeds 0 and 3 of NumPy's legacy generator start
    with nearly the same numbers)."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededTPE(BaseSampler):
    """TPE (Optuna's defaults, constant liar for parallel workers) seeded per trial number."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._current: tuple[int, TPESampler] | None = None

    def settings(self) -> dict[str, Any]:
        """What tune.json records of the sampler."""
        return {
            "class": "TPESampler",
            "seed": self.seed,
            "seeding": "SeedSequence([seed, trial number])",
            "n_startup_trials": STARTUP_TRIALS,
            "constant_liar": True,
        }

    def _for(self, trial: FrozenTrial) -> TPESampler:
        if self._current is None or self._current[0] != trial.number:
            sampler = TPESampler(
                seed=trial_seed(self.seed, trial.number),
                n_startup_trials=STARTUP_TRIALS,
                constant_liar=True,
            )
            self._current = (trial.number, sampler)
        return self._current[1]

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._for(trial).after_trial(study, trial, state, values)
        self._current = None

    def reseed_rng(self) -> None:  # the seed of each trial is fixed by design
        pass
