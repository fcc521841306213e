"""`ffnlp lm train|eval|generate|export|lr-find`: thin wrappers over ffnlp.tasks.lm."""

from pathlib import Path
from typing import Annotated

import typer

from ffnlp.cli import common
from ffnlp.cli.commands import train_seeds
from ffnlp.cli.common import print_json, print_result, screen
from ffnlp.cli.options import (
    CONFIG_HELP,
    RUN,
    SWEEP,
    Config,
    Json,
    RunOptions,
    Seed,
    Seeds,
    Set,
    Sweep,
    SweepJson,
    help_tables,
    run_dir_option,
    settings,
    with_options,
)
from ffnlp.outputs import check_output_file

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

TRAIN, EVAL, GENERATE, EXPORT = help_tables(
    train={
        "--train": "Training corpus: one sentence a line, tokens separated by spaces (.gz ok).",
        "--dev": "Dev corpus: perplexity each epoch, the best epoch, the interpolation weight.",
        "--test": "Test corpus: perplexity once at the end.",
        "--config": CONFIG_HELP
        + " configs/ptb_lm.toml (neural), configs/ptb_kn5.toml (Kneser-Ney).",
        "--interpolate-with": "Run directory of another LM on the same vocabulary to mix with; "
        "the weight is fitted on --dev.",
    },
    eval={
        "RUN": "Run directory of a trained LM, or an ARPA file (KenLM, SRILM, lm export).",
        "--data": "Corpus to compute the perplexity of (one sentence a line).",
        "--interpolate-with": "Mix with this LM run or ARPA file (same words as RUN's vocabulary).",
        "--weight": "λ, the feed-forward model's share in the mixture, whichever run it is (this "
        "run's when both or neither are feed-forward); default: fitted on --dev, else the weight "
        "fitted at training.",
        "--dev": "Fit the mixture weight on this corpus.",
    },
    generate={
        "RUN": "Run directory of a trained LM.",
        "--prompt": "Words to continue (unknown ones are read as <unk>).",
        "--max-tokens": "Most tokens to sample (at most 100,000).",
        "--temperature": "Sharpen (<1) or flatten (>1) the distribution; 0 = always the likeliest "
        "word.",
        "--top-k": "Sample among the k likeliest words only (0 = all).",
        "--seed": "Random seed: the same seed gives the same text.",
        "--count": "How many samples (seeds seed, seed+1, ...).",
        "--until-eos/--no-until-eos": "Stop at the end of the sentence (</s>).",
        "--interpolate-with": "Sample from the mixture with this LM run.",
        "--json": "Print the samples as JSON.",
    },
    export={
        "RUN": 'Run directory of a Kneser-Ney LM (kind = "kneser_ney").',
        "--arpa": "ARPA file to write (.gz: compressed), read by KenLM, SRILM and ffnlp lm eval.",
        "--json": "Print the file and its n-gram counts as JSON.",
    },
)


@app.command("train")
@with_options(RunOptions)
def train(
    train_file: Annotated[Path, TRAIN("--train")],
    dev: Annotated[Path | None, TRAIN("--dev")] = None,
    test: Annotated[Path | None, TRAIN("--test")] = None,
    config: Annotated[Path | None, TRAIN("--config", "-c")] = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    out: Annotated[Path | None, run_dir_option("lm")] = None,
    seed: Seed = None,
    seeds: Seeds = None,
    interpolate_with: Annotated[Path | None, TRAIN("--interpolate-with")] = None,
    run: RunOptions = RUN,  # with_options: the options every `train` command ends with
) -> None:
    """Train a feed-forward LM, or fit a Kneser-Ney n-gram model (kind = "kneser_ney").

    Example:

        ffnlp lm train --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --dev ../shared/data/ptb/ptb.valid.txt --test ../shared/data/ptb/ptb.test.txt --out runs/ptb_lm

        ffnlp lm train --init-from runs/ptb_lm --train more_text.txt --out runs/ptb_lm_more
    """
    common.begin_training(run)
    if seeds is not None:
        overrides = settings(set_, run, interpolate_with=interpolate_with, one_run=False)
        return train_seeds("lm", seeds, run, (train_file, dev, test), config, overrides, out, seed)
    from ffnlp.tasks.lm import train_lm  # imports torch

    lm = train_lm(
        train_file,
        dev=dev,
        test=test,
        config=config,
        overrides=settings(set_, run),
        seed=seed,
        interpolate_with=interpolate_with,
        **common.recipe_args(run, out),
    )
    common.finish_training(lm, run, screen.lm_train)


@app.command("eval")
def evaluate(
    run: Annotated[Path, EVAL("RUN")],
    data: Annotated[Path, EVAL("--data")],
    interpolate_with: Annotated[Path | None, EVAL("--interpolate-with")] = None,
    weight: Annotated[float | None, EVAL("--weight")] = None,
    dev: Annotated[Path | None, EVAL("--dev")] = None,
    json_: Json = False,
) -> None:
    """Perplexity of a trained LM or an ARPA file (optionally mixed with another) on a corpus.

    Examples:

        ffnlp lm eval runs/ptb_lm --data ../shared/data/ptb/ptb.test.txt --interpolate-with runs/ptb_kn5 --dev ../shared/data/ptb/ptb.valid.txt

        ffnlp lm eval ptb_kn5.arpa --data ../shared/data/ptb/ptb.test.txt
    """
    from ffnlp.tasks.lm import load as load_lm  # imports torch

    lm = load_lm(run, interpolate_with=interpolate_with, tune_on=dev, weight=weight)
    metrics = lm.evaluate(data)
    print_result(metrics, json_, lambda m: screen.perplexity(run, data, lm, m))


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
    json_: Annotated[bool, GENERATE("--json")] = False,
) -> None:
    """Sample text from a trained LM.

    Example:

        ffnlp lm generate runs/ptb_lm --prompt "the company said" --max-tokens 30 --temperature 0.8 --top-k 50 --seed 1
    """
    from ffnlp.tasks.lm import load as load_lm  # imports torch

    lm = load_lm(run, interpolate_with=interpolate_with)
    samples = [
        lm.generate(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            seed=seed + i,
            stop_at_eos=until_eos,
        )
        for i in range(count)
    ]
    screen.unknown_words(samples[0].unknown if samples else [])
    if json_:
        print_json([{"text": s.text, "tokens": s.tokens, "unknown": s.unknown} for s in samples])
        return
    for s in samples:
        typer.echo(s.text)


@app.command("lr-find")
@with_options(Sweep, "sweep")
def lr_find(
    train_file: Annotated[Path, typer.Option("--train", help="Training corpus (as for lm train).")],
    config: Config = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    seed: Seed = None,
    sweep: Sweep = SWEEP,  # with_options: --min-lr ... --out
    json_: SweepJson = False,
) -> None:
    """Learning-rate range test for the feed-forward LM: a few batches at a growing learning rate, the loss plotted, a rate suggested.

    The network, its initialisation and the optimiser are the ones `lm train` would use with the
    same --config and --set; nothing else is written.

    Example:

        ffnlp lm lr-find --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --plot runs/ptb_lr_find.png
    """
    from ffnlp.tasks.lm.lr_find import find_lr  # imports torch

    overrides = settings(set_)
    common.lr_range_test(
        find_lr, train_file, sweep, json_, config=config, overrides=overrides, seed=seed
    )


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
    result = {"arpa": str(arpa), "ngrams": counts}
    print_result(result, json_, lambda _: screen.arpa(arpa, counts))
