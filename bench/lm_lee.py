"""The LM presets on a corpus no choice of theirs saw: the Lee background corpus.

    python bench/lm_lee.py [--data ../shared/data] [--out bench/out/lee] [--threads 1]

The corpus (``lee_corpus/lee_background.cor``, 300 Australian news documents, one a line) is
split into sentences after ``.``, ``!`` or ``?`` followed by white space, lowercased and cut into
words (apostrophes inside them kept) and punctuation marks; documents 1-250 are the training
text, 251-275 dev and 276-300 test, each written one sentence a line under ``--out``. Then
``ptb_kn5`` and ``ptb_lm_best`` are trained on it (the network with ``--threads`` threads, KN5
mixed in), and the test perplexity is printed for each model and for their mixture: without a
cache, with a 200-word unigram cache, with the unigram cache of 500 words (decay 0.99, the 100
most frequent words left out), and with the preset's caches (1,000 words, decay 0.995, orders
1-3); every share and mixture weight fitted on the dev part. docs/lm.md's "Another corpus" table
is this script's output.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
SPLITS = {"train": (0, 250), "dev": (250, 275), "test": (275, 300)}
CACHES = {  # column -> (size, decay, skip, order)
    "no cache": None,
    "200 words": (200, 1.0, 0, 1),
    "unigram 500/0.99/skip 100": (500, 0.99, 100, 1),
    "the preset's (1000/0.995/100, orders 1-3)": (1000, 0.995, 100, 3),
}


def write_splits(corpus: Path, out: Path) -> dict[str, Path]:
    """The three parts of the corpus, one sentence a line, under ``out``."""
    documents = [d for d in corpus.read_text(encoding="utf-8").split("\n") if d.strip()]
    if len(documents) != 300:
        sys.exit(
            f"{corpus}: expected the Lee background corpus's 300 documents, got {len(documents)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (lo, hi) in SPLITS.items():
        lines = []
        for doc in documents[lo:hi]:
            for sentence in SENTENCE_END.split(doc):
                words = WORD.findall(sentence.lower())
                if words:
                    lines.append(" ".join(words))
        paths[name] = out / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "lee")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    corpus = args.data / "lee_corpus" / "lee_background.cor"
    if not corpus.is_file():
        sys.exit(f"{corpus} not found: pass --data, the folder of the benchmark sets")

    from ffnlp.tasks.lm import load, train_lm

    parts = write_splits(corpus, args.out)
    words = {
        k: sum(len(line.split()) for line in p.read_text().splitlines()) for k, p in parts.items()
    }
    print(f"Lee corpus: {words['train']} training words, {words['dev']} dev, {words['test']} test")
    kn_dir, nn_dir = args.out / "kn5", args.out / "nn_best"
    t0 = time.perf_counter()
    train_lm(parts["train"], parts["dev"], config="ptb_kn5", out=kn_dir, force=True)
    t1 = time.perf_counter()
    train_lm(
        parts["train"],
        parts["dev"],
        config="ptb_lm_best",
        out=nn_dir,
        force=True,
        overrides={"train.threads": args.threads, "samples": 0},
    )
    t2 = time.perf_counter()
    print(
        f"trained: ptb_kn5 {t1 - t0:.1f} s, ptb_lm_best {t2 - t1:.1f} s ({args.threads} thread(s))"
    )
    models = {
        "ptb_kn5": lambda: load(kn_dir),
        "ptb_lm_best": lambda: load(nn_dir, standalone=True),
        "the two mixed": lambda: load(nn_dir, interpolate_with=kn_dir, tune_on=parts["dev"]),
    }
    print("| model | " + " | ".join(CACHES) + " |")
    print("|---" * (len(CACHES) + 1) + "|")
    for name, make in models.items():
        cells = []
        for cache in CACHES.values():
            lm = make()
            if cache is None:
                lm.set_cache(0)
            else:
                size, decay, skip, order = cache
                lm.set_cache(size, decay=decay, skip=skip, order=order)
                lm.fit_cache(lm.encode(parts["dev"]))
            cells.append(f"{lm.perplexity(parts['test']):.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
