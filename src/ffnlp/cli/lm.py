"""`ffnlp lm train|eval|generate|export|lr-find`: thin wrappers over ffnlp.tasks.lm."""

from pathlib import Path
from typing import Annotated

import typer

from ffnlp.cli import lr_find as sweep
from ffnlp.cli.common import (
    begin_training,
    err_console,
    finish_training,
    out_console,
    print_json,
    recipe_args,
    screen,
)
from ffnlp.cli.options import (
    CONFIG_HELP,
    RUN,
    Config,
    Json,
    RunOptions,
    Seed,
    Seeds,
    Set,
    run_dir_option,
    run_options,
    settings,
    with_options,
)
from ffnlp.cli.repeat import train_seeds
from ffnlp.outputs import check_output_file

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


LM_CONFIG_HELP = CONFIG_HELP + " configs/ptb_lm.toml (neural), configs/ptb_kn5.toml (Kneser-Ney)."
TRAIN_HELP = "Training corpus: one sentence a line, tokens separated by spaces (.gz ok)."
DEV_HELP = "Dev corpus: perplexity each epoch, the best epoch, the interpolation weight."
INTERPOLATE_HELP = (
    "Run directory of another LM on the same vocabulary to mix with; the weight is fitted on --dev."
)


@app.command("train")
@with_options(run_options)
def train(
    train_file: Annotated[Path, typer.Option("--train", help=TRAIN_HELP)],
    dev: Annotated[Path | None, typer.Option("--dev", help=DEV_HELP)] = None,
    test: Annotated[
        Path | None, typer.Option("--test", help="Test corpus: perplexity once at the end.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help=LM_CONFIG_HELP)] = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    out: Annotated[Path | None, run_dir_option("lm")] = None,
    seed: Seed = None,
    seeds: Seeds = None,
    interpolate_with: Annotated[
        Path | None, typer.Option("--interpolate-with", help=INTERPOLATE_HELP)
    ] = None,
    run: RunOptions = RUN,  # with_options: the options every `train` command ends with
) -> None:
    """Train a feed-forward LM, or fit a Kneser-Ney n-gram model (kind = "kneser_ney").

    Example:

        ffnlp lm train --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --dev ../shared/data/ptb/ptb.valid.txt --test ../shared/data/ptb/ptb.test.txt --out runs/ptb_lm

        ffnlp lm train --init-from runs/ptb_lm --train more_text.txt --out runs/ptb_lm_more
    """
    begin_training(run)
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
        **recipe_args(run, out),
    )
    finish_training(lm, run, screen.lm_train)


@app.command("eval")
def evaluate(
    run: Path = typer.Argument(
        ..., help="Run directory of a trained LM, or an ARPA file (KenLM, SRILM, lm export)."
    ),
    data: Path = typer.Option(
        ..., "--data", help="Corpus to compute the perplexity of (one sentence a line)."
    ),
    interpolate_with: Path = typer.Option(
        None,
        "--interpolate-with",
        help="Mix with this LM run or ARPA file (same words as RUN's vocabulary).",
    ),
    weight: float = typer.Option(
        None,
        "--weight",
        help="λ, the feed-forward model's share in the mixture, whichever run it is (this run's "
        "when both or neither are feed-forward); default: fitted on --dev, else the weight "
        "fitted at training.",
    ),
    dev: Path = typer.Option(None, "--dev", help="Fit the mixture weight on this corpus."),
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
    if json_:
        print_json(metrics)
        return
    mixed = (
        f" mixed with {lm.partner.run_dir} (λ={lm.weight:.3f}, the weight of "
        f"{lm.weighted_model.run_dir})"
        if lm.partner is not None
        else ""
    )
    out_console.print(
        f"{run}{mixed} on {data}: perplexity {metrics['perplexity']:.2f} over {metrics['tokens']} "
        f"tokens ({metrics['sentences']} sentences, </s> counted; OOV rate {metrics['oov_rate']:.2%})"
    )


@app.command("generate")
def generate(
    run: Path = typer.Argument(..., help="Run directory of a trained LM."),
    prompt: str = typer.Option(
        "", "--prompt", "-p", help="Words to continue (unknown ones are read as <unk>)."
    ),
    max_tokens: int = typer.Option(
        30, "--max-tokens", "-n", help="Most tokens to sample (at most 100,000)."
    ),
    temperature: float = typer.Option(
        1.0,
        "--temperature",
        "-t",
        help="Sharpen (<1) or flatten (>1) the distribution; 0 = always the likeliest word.",
    ),
    top_k: int = typer.Option(
        0, "--top-k", "-k", help="Sample among the k likeliest words only (0 = all)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same text."),
    count: int = typer.Option(1, "--count", help="How many samples (seeds seed, seed+1, ...)."),
    until_eos: bool = typer.Option(
        True, "--until-eos/--no-until-eos", help="Stop at the end of the sentence (</s>)."
    ),
    interpolate_with: Path = typer.Option(
        None, "--interpolate-with", help="Sample from the mixture with this LM run."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the samples as JSON."),
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
    if samples and samples[0].unknown:
        words = ", ".join(repr(w) for w in sorted(set(samples[0].unknown)))
        err_console.print(f"note: not in the vocabulary, read as <unk>: {words}", markup=False)
    if json_:
        print_json([{"text": s.text, "tokens": s.tokens, "unknown": s.unknown} for s in samples])
        return
    for s in samples:
        typer.echo(s.text)


@app.command("lr-find")
@with_options(sweep.sweep_options, "lr_range")
def lr_find(
    train_file: Annotated[Path, typer.Option("--train", help="Training corpus (as for lm train).")],
    config: Config = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    seed: Seed = None,
    lr_range: sweep.Sweep = sweep.SWEEP,  # with_options: --min-lr ... --out
    json_: sweep.Json = False,
) -> None:
    """Learning-rate range test for the feed-forward LM: a few batches at a growing learning rate, the loss plotted, a rate suggested.

    The network, its initialisation and the optimiser are the ones `lm train` would use with the
    same --config and --set; nothing else is written.

    Example:

        ffnlp lm lr-find --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --plot runs/ptb_lr_find.png
    """
    from ffnlp.tasks.lm.lr_find import find_lr  # imports torch

    sweep.run(find_lr, train_file, config, settings(set_), seed, lr_range, json_)


@app.command("export")
def export(
    run: Path = typer.Argument(..., help='Run directory of a Kneser-Ney LM (kind = "kneser_ney").'),
    arpa: Path = typer.Option(
        ...,
        "--arpa",
        help="ARPA file to write (.gz: compressed), read by KenLM, SRILM and ffnlp lm eval.",
    ),
    json_: bool = typer.Option(
        False, "--json", help="Print the file and its n-gram counts as JSON."
    ),
) -> None:
    """Write a Kneser-Ney model as an ARPA back-off file with the same probabilities.

    Example:

        ffnlp lm export runs/ptb_kn5 --arpa ptb_kn5.arpa
    """
    from ffnlp.tasks.lm import load as load_lm  # imports torch

    check_output_file(arpa, "--arpa")  # before the work: a folder, a link, read-only
    lm = load_lm(run, standalone=True)
    counts = lm.export_arpa(arpa)
    if json_:
        print_json({"arpa": str(arpa), "ngrams": counts})
        return
    listed = ", ".join(f"{c:,} {n}-grams" for n, c in enumerate(counts, start=1))
    out_console.print(f"{arpa}: {listed}", markup=False)
