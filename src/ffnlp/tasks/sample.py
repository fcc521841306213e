"""A small built-in sample, generated rather than copied: movie-review-like sentences.

Sentences are drawn from templates over small lists of positive and negative words, with
negation ("not") flipping the polarity, intensifiers and neutral filler, so that a bag-of-bigrams
model has something to learn that unigrams alone do not capture.  Deterministic for a seed.
"""

from __future__ import annotations

import random
from pathlib import Path

POSITIVE = [
    "good",
    "great",
    "funny",
    "moving",
    "clever",
    "charming",
    "gripping",
    "beautiful",
    "warm",
    "sharp",
    "delightful",
    "brilliant",
    "tender",
    "smart",
    "fresh",
]
NEGATIVE = [
    "bad",
    "dull",
    "boring",
    "clumsy",
    "flat",
    "tedious",
    "silly",
    "ugly",
    "cold",
    "bland",
    "awful",
    "messy",
    "shallow",
    "stale",
    "weak",
]
SUBJECTS = [
    "the film",
    "this movie",
    "the plot",
    "the acting",
    "the script",
    "the ending",
    "the cast",
    "the director 's work",
    "the story",
    "the soundtrack",
]
INTENSIFIERS = ["", "", "very ", "really ", "quite ", "truly ", "rather "]
FILLER = [
    "",
    "",
    "",
    " , all things considered",
    " , i think",
    " in the end",
    " from start to finish",
    " for most of its running time",
]
TEMPLATES = [
    "{s} is {i}{a}{f} .",
    "{s} was {i}{a}{f} .",
    "{s} feels {i}{a}{f} .",
    "what a {i}{a} film{f} .",
    "{s} is {i}{a} and {a2}{f} .",
]


def sentence(rng: random.Random) -> tuple[int, str]:
    """One (label, sentence): 1 positive, 0 negative."""
    label = rng.randint(0, 1)
    negate = rng.random() < 0.25
    surface = label if not negate else 1 - label  # "not good" is negative
    words = POSITIVE if surface == 1 else NEGATIVE
    template = rng.choice(TEMPLATES)
    a = words[rng.randrange(len(words))]
    a2 = words[rng.randrange(len(words))]
    if negate:
        template = template.replace(" is {i}", " is not {i}").replace(" was {i}", " was not {i}")
        template = template.replace(" feels {i}", " does not feel {i}")
        if "not" not in template:
            template = "{s} is not {i}{a}{f} ."
        template = template.replace(" and {a2}", "")
    text = template.format(
        s=rng.choice(SUBJECTS), i=rng.choice(INTENSIFIERS), a=a, a2=a2, f=rng.choice(FILLER)
    )
    return label, text


def write_sample(
    folder: str | Path, seed: int = 0, sizes: tuple[int, int, int] = (2000, 300, 300)
) -> dict[str, Path]:
    """Write train/dev/test files of ``LABEL text`` lines plus a plain corpus; return their paths.
    The four files are written together or not at all (:class:`ffnlp.fileio.Outputs`)."""
    from ffnlp.fileio import Outputs

    folder = Path(folder)
    rng = random.Random(seed)
    paths: dict[str, Path] = {}
    corpus_lines: list[str] = []
    with Outputs() as outputs:
        outputs.folder(folder)
        for split, n in zip(("train", "dev", "test"), sizes, strict=True):
            rows = [sentence(rng) for _ in range(n)]
            paths[split] = folder / f"{split}.txt"
            outputs.write(paths[split], "".join(f"{y} {t}\n" for y, t in rows))
            corpus_lines.extend(t for _, t in rows)
        paths["corpus"] = folder / "corpus.txt"
        outputs.write(paths["corpus"], "\n".join(corpus_lines) + "\n")
    return paths
