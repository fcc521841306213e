"""Language modelling end to end: corpus -> model (feed-forward or Kneser-Ney) -> run directory.

Both kinds share the vocabulary, the id stream and the perplexity convention of
:mod:`ffnlp.text.corpus`: perplexity = exp(mean negative log-likelihood per predicted token over the
whole text), where every word and one ``</s>`` per sentence are predicted, the leading ``</s>``
is not.  A neural run can be interpolated with a Kneser-Ney run (or the other way round), the
mixture weight fitted on the dev text by EM.

The package: :mod:`.config` (LMConfig, resolve_config), :mod:`.evaluate` (per-token scores,
perplexity, the mixture), :mod:`.result` (LanguageModel, load), :mod:`.train` (train_lm).

Python API::

    lm = train_lm("ptb.train.txt.gz", dev="ptb.valid.txt", test="ptb.test.txt",
                  config="ptb_lm", out="runs/ptb_lm")
    lm.perplexity("ptb.test.txt")
    lm.generate("the company said", max_tokens=20, seed=1)
    lm = load("runs/ptb_lm")
    kn = load("kn5.arpa")          # an ARPA file from any tool; lm.export_arpa(path) writes one
"""

from ffnlp.tasks.lm.config import KINDS, KNConfig, LMConfig, resolve_config
from ffnlp.tasks.lm.evaluate import fit_mixture_weight, mix_log_probs, perplexity_of
from ffnlp.tasks.lm.result import Generation, LanguageModel, load, load_arpa, load_lm
from ffnlp.tasks.lm.train import train_lm

__all__ = [
    "SPEC",
    "KINDS",
    "Generation",
    "KNConfig",
    "LMConfig",
    "LanguageModel",
    "fit_mixture_weight",
    "load",
    "load_arpa",
    "load_lm",
    "mix_log_probs",
    "perplexity_of",
    "resolve_config",
    "train_lm",
]
from ffnlp.tasks.lm.spec import SPEC  # registers the task (last: it names the above)
