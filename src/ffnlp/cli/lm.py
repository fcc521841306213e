"""`ffnlp lm train|eval|generate|export|lr-find`: thin wrappers over ffnlp.tasks.lm."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli import common
from ffnlp.cli import options as opt
from ffnlp.cli.common import print_result, screen
from ffnlp.outputs import check_output_file

app = opt.group(help="Feed-forward language model and Kneser-Ney baseline: train, eval, generate.")

TRAIN, EVAL, GENERATE, EXPORT = opt.help_tables(
    train={
        "--train": "Training corpus: one sentence a line, tokens separated by spaces (.gz ok).",
        "--dev": "Dev corpus: perplexity each epoch, the best epoch, the interpolation weight.",
        "--test": "Test corpus: perplexity once at the end.",
        "--config": f"{opt.CONFIG_HELP} configs/ptb_lm.toml (neural), configs/ptb_kn5.toml (Kneser-Ney).",
        "--interpolate-with": "Run directory of another LM on the same vocabulary to mix with; the weight is fitted on --dev.",
    },
    eval={
        "RUN": "Run directory of a trained LM, or an ARPA file (KenLM, SRILM, lm export).",
        "--data": "Corpus to compute the perplexity of (one sentence a line).",
        "--interpolate-with": "Mix with this LM run or ARPA file (same words as RUN's vocabulary).",
        "--weight": "λ, the feed-forward model's share in the mixture (this run's when both or neither are feed-forward); default: fitted on --dev, else at training.",
        "--dev": "Fit the mixture weight (and the cache's share) on this corpus.",
        "--cache": "Mix in the run's cache over the text's last N words (0: none; default: its size).",
        "--cache-weight": "The cache's share, 0..0.999, split over its orders (default: fitted on --dev).",
        "--cache-order": "The cache's n-gram order, 1..5: 1 unigram, 2 + bigram... (default: the run's).",
        "--cache-decay": "Weigh the word k back by decay^(k-1) in the cache, 0 < decay <= 1 (default: the run's).",
        "--cache-skip": "Leave the N most frequent training words out of the cache (default: the run's).",
    },
    generate={
        "RUN": "Run directory of a trained LM.",
        "--prompt": "Words to continue (unknown ones are read as <unk>).",
        "--max-tokens": "Most tokens to sample (at most 100,000).",
        "--temperature": "Sharpen (<1) or flatten (>1) the distribution; 0: the likeliest word.",
        "--top-k": "Sample among the k likeliest words only (0 = all).",
        "--seed": "Random seed: the same seed gives the same text.",
        "--count": "How many samples (seeds seed, seed+1, ...).",
        "--until-eos/--no-until-eos": "Stop at the end of the sentence (</s>).",
        "--interpolate-with": "Sample from the mixture with this LM run.",
    },
    export={
        "RUN": 'Run directory of a Kneser-Ney LM (kind = "kneser_ney").',
        "--arpa": "ARPA file to write (.gz: compressed), read by KenLM, SRILM and ffnlp lm eval.",
        "--json": "Print the file and its n-gram counts as JSON.",
    },
)


@app.command("train")
@opt.with_options(opt.RunOptions)
def train(
    train_file: Annotated[Path, TRAIN("--train")],
    dev: Annotated[Path | None, TRAIN("--dev")] = None,
    test: Annotated[Path | None, TRAIN("--test")] = None,
    config: Annotated[Path | None, TRAIN("--config", "-c")] = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    out: Annotated[Path | None, opt.run_dir_option("lm")] = None,
    seed: opt.Seed = None,
    seeds: opt.Seeds = None,
    interpolate_with: Annotated[Path | None, TRAIN("--interpolate-with")] = None,
    run: opt.RunOptions = opt.RUN,  # with_options: the options every `train` command ends with
) -> None:
    """Train a feed-forward LM, or fit a Kneser-Ney n-gram model (kind = "kneser_ney").

    Example:

        ffnlp lm train --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --dev ../shared/data/ptb/ptb.valid.txt --test ../shared/data/ptb/ptb.test.txt --out runs/ptb_lm
    """
    mixed: dict[str, Any] = {"interpolate_with": interpolate_with}
    common.train("lm", (train_file, dev, test), run, config, set_, out, seed, seeds, **mixed)


@app.command("eval")
def evaluate(
    run: Annotated[Path, EVAL("RUN")],
    data: Annotated[Path, EVAL("--data")],
    interpolate_with: Annotated[Path | None, EVAL("--interpolate-with")] = None,
    weight: Annotated[float | None, EVAL("--weight")] = None,
    dev: Annotated[Path | None, EVAL("--dev")] = None,
    cache: Annotated[int | None, EVAL("--cache")] = None,
    cache_weight: Annotated[float | None, EVAL("--cache-weight")] = None,
    cache_order: Annotated[int | None, EVAL("--cache-order")] = None,
    cache_decay: Annotated[float | None, EVAL("--cache-decay")] = None,
    cache_skip: Annotated[int | None, EVAL("--cache-skip")] = None,
    json_: opt.Json = False,
) -> None:
    """Perplexity of a trained LM or an ARPA file (optionally mixed with another) on a corpus.

    Example:

        ffnlp lm eval runs/ptb_lm --data ../shared/data/ptb/ptb.test.txt --interpolate-with runs/ptb_kn5 --dev ../shared/data/ptb/ptb.valid.txt
    """
    from ffnlp.tasks.lm import load as load_lm  # imports torch

    caching = (cache, cache_weight, cache_order, cache_decay, cache_skip)
    lm = load_lm(run, interpolate_with, dev, weight, False, *caching)
    print_result(lm.evaluate(data), json_, lambda m: screen.perplexity(run, data, lm, m))


@app.command("generate")
def generate(
    run: Annotated[Path, GENERATE("RUN")],
    prompt: Annotated[str, GENERATE("--prompt", "-p")] = "",
    max_tokens: Annotated[int, GENERATE("--max-tokens", "-n")] = 30,
    temperature: Annotated[float, GENERATE("--temperature", "-t")] = 1.0,
    top_k: Annotated[int, GENERATE("--top-k", "-k")] = 0,
    seed: Annotated[int, GENERATE("--seed")] = 0,
    count: Annotated[int, GENERATE("--count")] = 1,
    until_eos: Annotated[bool, GENERATE("--until-eos/--no-until-eos")] = True,
    interpolate_with: Annotated[Path | None, GENERATE("--interpolate-with")] = None,
    json_: opt.Json = False,
) -> None:
    """Sample text from a trained LM.

    Example:

        ffnlp lm generate runs/ptb_lm --prompt "the company said" --max-tokens 30 --temperature 0.8 --top-k 50 --seed 1
    """
    from ffnlp.tasks.lm import load as load_lm  # imports torch

    lm = load_lm(run, interpolate_with=interpolate_with)
    how: dict[str, Any] = {"temperature": temperature, "top_k": top_k, "stop_at_eos": until_eos}
    samples = [lm.generate(prompt, max_tokens, seed=seed + i, **how) for i in range(count)]
    screen.unknown_words(samples[0].unknown if samples else [])
    rows = [{"text": s.text, "tokens": s.tokens, "unknown": s.unknown} for s in samples]
    print_result(rows, json_, screen.samples)


@app.command("lr-find")
@opt.with_options(opt.Sweep, "sweep")
def lr_find(
    train_file: Annotated[Path, typer.Option("--train", help="Training corpus (as for lm train).")],
    config: opt.Config = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    seed: opt.Seed = None,
    sweep: opt.Sweep = opt.SWEEP,  # with_options: --min-lr ... --out
    json_: opt.SweepJson = False,
) -> None:
    """Learning-rate range test for the feed-forward LM: a few batches at a growing learning rate, the loss plotted, a rate suggested.

    The network, its initialisation and the optimiser are the ones `lm train` would use with the
    same --config and --set; nothing else is written.

    Example:

        ffnlp lm lr-find --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --plot runs/ptb_lr_find.png
    """
    from ffnlp.tasks.lm.lr_find import find_lr  # imports torch

    common.lr_range_test(find_lr, train_file, sweep, json_, config, set_, seed)


@app.command("export")
def export(
    run: Annotated[Path, EXPORT("RUN")],
    arpa: Annotated[Path, EXPORT("--arpa")],
    json_: Annotated[bool, EXPORT("--json")] = False,
) -> None:
    """Write a Kneser-Ney model as an ARPA back-off file with the same probabilities.

    Example:

        ffnlp lm export runs/ptb_kn5 --arpa ptb_kn5.arpa
    """
    from ffnlp.tasks.lm import load as load_lm  # imports torch

    check_output_file(arpa, "--arpa")  # before the work: a folder, a link, read-only
    lm = load_lm(run, standalone=True)
    counts = lm.export_arpa(arpa)
    print_result({"arpa": str(arpa), "ngrams": counts}, json_, lambda _: screen.arpa(arpa, counts))
