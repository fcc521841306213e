"""`ffnlp w2v train|eval|neighbors|export`: thin wrappers over ffnlp.tasks.w2v."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ffnlp.cli.common import (
    CONFIG_HELP,
    DIAGNOSTICS_OPTION,
    FORCE_OPTION,
    QUIET_OPTION,
    RESUME_OPTION,
    SEED_OPTION,
    SET_OPTION,
    SUMMARY_JSON_OPTION,
    diagnostics_overrides,
    out_console,
    print_json,
    progress_callbacks,
    run_dir_option,
    setup_logging,
)
from ffnlp.outputs import check_output_file

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

VECTORS_HELP = (
    "An ffnlp w2v run directory or a vectors file (word2vec text/binary, GloVe, fastText .vec)."
)


@app.command("train")
def train(
    corpus: Path = typer.Option(
        ...,
        "--corpus",
        help="Plain-text corpus, one sentence a line, tokens separated by spaces (.gz ok).",
    ),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    out: Path = run_dir_option("w2v"),
    seed: int = SEED_OPTION,
    resume: Path = RESUME_OPTION,
    diagnostics: bool = DIAGNOSTICS_OPTION,
    force: bool = FORCE_OPTION,
    quiet: bool = QUIET_OPTION,
    json_: bool = SUMMARY_JSON_OPTION,
) -> None:
    """Train skip-gram (or CBOW) word vectors with negative sampling.

    Example:

        ffnlp w2v train --corpus ../shared/data/ptb/ptb.train.txt.gz --config configs/ptb_w2v.toml --out runs/ptb_w2v
    """
    from ffnlp.tasks.w2v import train_word2vec

    setup_logging(quiet or json_)
    run = train_word2vec(
        corpus,
        config=config,
        overrides=list(set_) + diagnostics_overrides(diagnostics),
        out=resume if resume is not None else out,
        seed=seed,
        resume=resume is not None,
        callbacks=progress_callbacks(quiet or json_),
        force=force,
    )
    s = run.summary
    if json_:
        print_json(s)
        return
    if quiet:
        return
    out_console.print(
        f"[bold]ffnlp w2v[/bold]: {s['vocab_size']} words x {run.model.dim} dims in {run.run_dir}; "
        f"{s['corpus_tokens']} tokens x {s['epochs']} epochs in {s['train_seconds']:.1f} s "
        f"= {s['words_per_second']:,.0f} words/s"
    )
    _print_evaluation(s.get("evaluation", {}))


@app.command("eval")
def evaluate(
    vectors: Path = typer.Argument(..., help=VECTORS_HELP),
    similarity: list[Path] = typer.Option(
        [],
        "--similarity",
        help="Word-similarity file 'w1 w2 score' (repeatable), e.g. wordsim353.tsv.",
    ),
    analogies: Path = typer.Option(
        None, "--analogies", help="Analogy questions (questions-words.txt format)."
    ),
    restrict: int = typer.Option(
        30000,
        "--restrict",
        help="Analogies: search among this many most frequent words (gensim's restrict_vocab).",
    ),
    fmt: str = typer.Option(
        "auto",
        "--format",
        help="Vectors file format: auto, word2vec-text, word2vec-binary, glove, fasttext-vec.",
    ),
    json_: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Word similarity (Spearman, OOV rate) and analogies (3CosAdd, 3CosMul, per section).

    Example:

        ffnlp w2v eval runs/ptb_w2v --similarity ../shared/data/word_similarity/wordsim353.tsv --analogies ../shared/data/word_analogy/questions-words.txt --json
    """
    from ffnlp.tasks.w2v import evaluate_vectors, load_word_vectors

    if not similarity and analogies is None:
        raise typer.BadParameter(
            "give --similarity FILE and/or --analogies FILE", param_hint="--similarity"
        )
    wv = load_word_vectors(vectors, format=fmt)
    result = evaluate_vectors(wv, similarity, analogies, restrict)
    if json_:
        print_json(result)
        return
    _print_evaluation(result)


@app.command("neighbors")
def neighbors(
    vectors: Path = typer.Argument(..., help=VECTORS_HELP),
    words: list[str] = typer.Argument(..., help="Query words."),
    k: int = typer.Option(10, "--k", "-k", help="Neighbours per word."),
    plot: Path = typer.Option(
        None,
        "--plot",
        help="Also save a 2-D PCA projection of the words and their neighbours (PNG).",
    ),
    fmt: str = typer.Option("auto", "--format", help="Vectors file format (see eval)."),
    json_: bool = typer.Option(
        False, "--json", help="Print {word: [[neighbour, cosine], ...]} as JSON."
    ),
) -> None:
    """Nearest neighbours by cosine similarity.

    Example:

        ffnlp w2v neighbors runs/ptb_w2v stock york president --k 5 --plot runs/ptb_w2v/plots/neighbours.png
    """
    from ffnlp.tasks.w2v import load_word_vectors

    if k < 1:
        raise typer.BadParameter("--k must be at least 1", param_hint="--k")
    if plot is not None:
        check_output_file(plot, "--plot")
    wv = load_word_vectors(vectors, format=fmt)
    result = {w: wv.most_similar(w, k) for w in words}
    if plot is not None:
        from ffnlp.report.plots import plot_projection

        plot_projection(wv, words, plot, neighbours=k)
    if json_:
        print_json({w: [[n, s] for n, s in ns] for w, ns in result.items()})
        return
    for w, ns in result.items():
        out_console.print(f"[bold]{w}[/bold]: " + ", ".join(f"{n} ({s:.3f})" for n, s in ns))
    if plot is not None:
        out_console.print(f"projection saved to {plot}")


@app.command("export")
def export(
    vectors: Path = typer.Argument(..., help=VECTORS_HELP),
    fmt: str = typer.Option(
        "word2vec-text",
        "--format",
        help="word2vec-text or word2vec-binary (both read by gensim's load_word2vec_format).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="File to write."),
) -> None:
    """Write the vectors in word2vec text or binary format.

    Example:

        ffnlp w2v export runs/ptb_w2v --format word2vec-text --output ptb.vec
    """
    from ffnlp.tasks.w2v import load_word_vectors

    if fmt not in ("word2vec-text", "word2vec-binary"):
        raise typer.BadParameter(
            "--format must be word2vec-text or word2vec-binary", param_hint="--format"
        )
    check_output_file(output, "--output")
    wv = load_word_vectors(vectors)
    wv.save(output, format=fmt)
    out_console.print(f"{len(wv)} vectors of dimension {wv.dim} written to {output} ({fmt})")


def _print_evaluation(result: dict) -> None:
    if result.get("similarity"):
        table = Table(title="word similarity")
        for col in ("file", "spearman", "pairs", "oov rate"):
            table.add_column(col, justify="left" if col == "file" else "right")
        for name, r in result["similarity"].items():
            table.add_row(name, f"{r['spearman']:.3f}", str(r["pairs"]), f"{r['oov_rate']:.1%}")
        out_console.print(table)
    if result.get("analogy"):
        a = result["analogy"]
        table = Table(
            title=f"analogies ({a['questions']} answered, {a['skipped']} skipped, "
            f"top {a['restrict']} words)"
        )
        for col in ("section", "questions", "3CosAdd", "3CosMul"):
            table.add_column(col, justify="left" if col == "section" else "right")
        for name, s in a["sections"].items():
            table.add_row(name, str(s["questions"]), _pct(s["3cosadd"]), _pct(s["3cosmul"]))
        table.add_row(
            "[bold]total[/bold]", str(a["questions"]), _pct(a["3cosadd"]), _pct(a["3cosmul"])
        )
        out_console.print(table)


def _pct(x: float) -> str:
    return "-" if x != x else f"{x:.1%}"
