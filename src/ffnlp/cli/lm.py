"""`ffnlp lm train|eval|generate|export|lr-find`: thin wrappers over ffnlp.tasks.lm."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ffnlp.cli.common import (
    CONFIG_HELP,
    DIAGNOSTICS_OPTION,
    FORCE_OPTION,
    INIT_FROM_OPTION,
    MAX_RESTARTS_OPTION,
    NPROC_OPTION,
    QUIET_OPTION,
    RESUME_OPTION,
    SEED_OPTION,
    SEEDS_OPTION,
    SET_OPTION,
    SUMMARY_JSON_OPTION,
    TENSORBOARD_OPTION,
    command_settings,
    diagnostics_settings,
    err_console,
    lineage_line,
    out_console,
    print_json,
    progress_callbacks,
    refuse_with_seeds,
    relaunch_as_processes,
    run_dir_option,
    setup_logging,
)
from ffnlp.cli.lr_find import JSON_OPTION as LR_FIND_JSON_OPTION
from ffnlp.cli.lr_find import MAX_LR_OPTION, MIN_LR_OPTION, PLOT_OPTION, STEPS_OPTION
from ffnlp.cli.lr_find import OUT_OPTION as LR_FIND_OUT_OPTION
from ffnlp.cli.lr_find import check_outputs as check_lr_find_outputs
from ffnlp.cli.lr_find import report as report_lr_find
from ffnlp.config import tensorboard_settings

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


@app.command("train")
def train(
    train_file: Path = typer.Option(
        ...,
        "--train",
        help="Training corpus: one sentence a line, tokens separated by spaces (.gz ok).",
    ),
    dev: Path = typer.Option(
        None,
        "--dev",
        help="Dev corpus: perplexity each epoch, the best epoch, the interpolation weight.",
    ),
    test: Path = typer.Option(None, "--test", help="Test corpus: perplexity once at the end."),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help=CONFIG_HELP + " configs/ptb_lm.toml (neural), configs/ptb_kn5.toml (Kneser-Ney).",
    ),
    set_: list[str] = SET_OPTION,
    out: Path = run_dir_option("lm"),
    seed: int = SEED_OPTION,
    seeds: str = SEEDS_OPTION,
    interpolate_with: Path = typer.Option(
        None,
        "--interpolate-with",
        help="Run directory of another LM on the same vocabulary to mix with; the weight is fitted on --dev.",
    ),
    resume: Path = RESUME_OPTION,
    init_from: Path = INIT_FROM_OPTION,
    diagnostics: bool = DIAGNOSTICS_OPTION,
    tensorboard: Path = TENSORBOARD_OPTION,
    force: bool = FORCE_OPTION,
    quiet: bool = QUIET_OPTION,
    json_: bool = SUMMARY_JSON_OPTION,
    nproc: int = NPROC_OPTION,
    max_restarts: int = MAX_RESTARTS_OPTION,
) -> None:
    """Train a feed-forward LM, or fit a Kneser-Ney n-gram model (kind = "kneser_ney").

    Example:

        ffnlp lm train --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --dev ../shared/data/ptb/ptb.valid.txt --test ../shared/data/ptb/ptb.test.txt --out runs/ptb_lm

        ffnlp lm train --init-from runs/ptb_lm --train more_text.txt --out runs/ptb_lm_more
    """
    from ffnlp.tasks.lm import train_lm

    relaunch_as_processes(nproc, max_restarts)
    setup_logging(quiet or json_)
    sets = command_settings(set_, diagnostics_settings(diagnostics))
    if seeds is not None:
        from ffnlp.cli.repeat import parse_seeds, run_repeat

        refuse_with_seeds(
            **{
                "--seed": seed is not None,
                "--resume": resume is not None,
                "--force": force,
                "--init-from": init_from is not None,
            }
        )
        if interpolate_with is not None:
            sets = command_settings(sets, {"interpolate_with": str(interpolate_with)})
        seed_list = parse_seeds(seeds)
        run_repeat(
            "lm",
            train_file,
            dev,
            test,
            config,
            sets,
            seed_list,
            out,
            tensorboard=tensorboard,
            quiet=quiet,
            json_=json_,
        )
        return
    sets = command_settings(sets, tensorboard_settings(tensorboard))
    lm = train_lm(
        train_file,
        dev=dev,
        test=test,
        config=config,
        overrides=sets,
        out=resume if resume is not None else out,
        seed=seed,
        resume=resume is not None,
        callbacks=progress_callbacks(quiet or json_),
        interpolate_with=interpolate_with,
        force=force,
        init_from=init_from,
    )
    summary = lm.summary
    if json_:
        print_json(summary)
        return
    if quiet:
        return
    table = Table(title=f"ffnlp lm ({summary['kind']}): {lm.run_dir}")
    table.add_column("split")
    table.add_column("perplexity", justify="right")
    table.add_column("tokens", justify="right")
    for split in ("dev", "test"):
        if split in summary:
            table.add_row(
                split, f"{summary[split]['perplexity']:.2f}", str(summary[split]["tokens"])
            )
    interp = summary.get("interpolated")
    if interp:
        for split in ("dev", "test"):
            if split in interp:
                table.add_row(
                    f"{split} (mixed, λ={interp['weight']:.3f})",
                    f"{interp[split]['perplexity']:.2f}",
                    "",
                )
    out_console.print(table)
    if interp:
        out_console.print(f"λ: the weight of {interp['weight_of']} in the mixture", markup=False)
    lineage = lineage_line(summary)
    if lineage:
        out_console.print(lineage, markup=False)
    out_console.print(
        f"trained in {summary['train_seconds']:.1f} s ({summary['tokens_per_second']:.0f} tokens/s)"
        + (f"; best epoch {summary['best_epoch']}" if summary.get("best_epoch") else "")
    )
    for sample in summary.get("samples", []):
        out_console.print(f"  sample: {sample}", markup=False)


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
    json_: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Perplexity of a trained LM or an ARPA file (optionally mixed with another) on a corpus.

    Examples:

        ffnlp lm eval runs/ptb_lm --data ../shared/data/ptb/ptb.test.txt --interpolate-with runs/ptb_kn5 --dev ../shared/data/ptb/ptb.valid.txt

        ffnlp lm eval ptb_kn5.arpa --data ../shared/data/ptb/ptb.test.txt
    """
    from ffnlp.tasks.lm import load as load_lm

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
    from ffnlp.tasks.lm import load as load_lm

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
def lr_find(
    train_file: Path = typer.Option(..., "--train", help="Training corpus (as for lm train)."),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    seed: int = SEED_OPTION,
    min_lr: float = MIN_LR_OPTION,
    max_lr: float = MAX_LR_OPTION,
    steps: int = STEPS_OPTION,
    plot: Path = PLOT_OPTION,
    out: Path = LR_FIND_OUT_OPTION,
    json_: bool = LR_FIND_JSON_OPTION,
) -> None:
    """Learning-rate range test for the feed-forward LM: a few batches at a growing learning rate, the loss plotted, a rate suggested.

    The network, its initialisation and the optimiser are the ones `lm train` would use with the
    same --config and --set; nothing else is written.

    Example:

        ffnlp lm lr-find --config ptb_lm --train ../shared/data/ptb/ptb.train.txt.gz --plot runs/ptb_lr_find.png
    """
    from ffnlp.tasks.lm.lr_find import find_lr

    setup_logging(json_)
    check_lr_find_outputs(plot, out)  # before the sweep
    result = find_lr(
        train_file,
        config=config,
        overrides=command_settings(set_),
        seed=seed,
        lr_min=min_lr,
        lr_max=max_lr,
        steps=steps,
    )
    report_lr_find(result, plot, out, json_, f"lr range test: {config or 'default config'}")


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
    from ffnlp.outputs import check_output_file
    from ffnlp.tasks.lm import load as load_lm

    check_output_file(arpa, "--arpa")  # before the work: a folder, a link, read-only
    lm = load_lm(run, standalone=True)
    counts = lm.export_arpa(arpa)
    if json_:
        print_json({"arpa": str(arpa), "ngrams": counts})
        return
    listed = ", ".join(f"{c:,} {n}-grams" for n, c in enumerate(counts, start=1))
    out_console.print(f"{arpa}: {listed}", markup=False)
