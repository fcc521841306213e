"""`ffnlp w2v train|eval|neighbors|doesnt-match|export`: thin wrappers over ffnlp.tasks.w2v."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    SET_OPTION,
    SUMMARY_JSON_OPTION,
    TENSORBOARD_OPTION,
    command_settings,
    diagnostics_settings,
    lineage_line,
    out_console,
    print_json,
    progress_callbacks,
    relaunch_as_processes,
    run_dir_option,
    setup_logging,
)
from ffnlp.config import tensorboard_settings
from ffnlp.outputs import check_output_file

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

VECTORS_HELP = (
    "An ffnlp w2v run directory or a vectors file (word2vec text/binary, GloVe, fastText .vec). "
    "The run of a model.type = fasttext model also answers words outside its vocabulary, from "
    "their character n-grams."
)


@app.command("train")
def train(
    corpus: Path = typer.Option(
        ...,
        "--corpus",
        help="Plain-text corpus, one sentence a line, tokens separated by spaces (.gz ok).",
    ),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    similarity: list[Path] = typer.Option(
        [],
        "--similarity",
        help="A word-similarity file (word, word, score a line) evaluated after every epoch and "
        "at the end; repeat it for several (evaluation.similarity).",
    ),
    analogies: Path = typer.Option(
        None,
        "--analogies",
        help="Analogy questions (Google's questions-words.txt format) evaluated at the end "
        "(evaluation.analogies).",
    ),
    set_: list[str] = SET_OPTION,
    out: Path = run_dir_option("w2v"),
    seed: int = SEED_OPTION,
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
    """Train skip-gram (or CBOW) word vectors with negative sampling; with model.type =
    fasttext, over words and their character n-grams, so that unseen words get vectors too.

    Skip-gram trains pair by pair, as gensim does, in a compiled kernel on model.workers threads.
    FFNLP_JIT=0, CBOW, model.shared_negatives and torchrun take the PyTorch step.

    Examples:

        ffnlp w2v train --corpus ../shared/data/ptb/ptb.train.txt.gz --config ptb_w2v --out runs/ptb_w2v

        ffnlp w2v train --corpus ../shared/data/ptb/ptb.train.txt.gz --config ptb_fasttext --similarity ../shared/data/word_similarity/wordsim353.tsv --out runs/ptb_fasttext

        ffnlp w2v train --init-from runs/ptb_w2v --corpus ../shared/data/lee_corpus/lee_background.cor --out runs/ptb_then_lee
    """
    from ffnlp.tasks.w2v import train_word2vec

    relaunch_as_processes(nproc, max_restarts)
    setup_logging(quiet or json_)
    # the evaluation files given here replace the config's (as --set would)
    evaluation: dict[str, Any] = {}
    if similarity:
        evaluation["evaluation.similarity"] = [str(p) for p in similarity]
    if analogies is not None:
        evaluation["evaluation.analogies"] = str(analogies)
    run = train_word2vec(
        corpus,
        config=config,
        overrides=command_settings(
            set_, diagnostics_settings(diagnostics), tensorboard_settings(tensorboard)
        ),
        out=resume if resume is not None else out,
        seed=seed,
        resume=resume is not None,
        callbacks=progress_callbacks(quiet or json_),
        force=force,
        **evaluation,
        init_from=init_from,
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
    lineage = lineage_line(s)
    if lineage:
        out_console.print(lineage, markup=False)


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

    For the run of a fastText model (model.type = fasttext) similarity is scored twice: over the
    pairs whose words are in the vocabulary ("OOV skipped") and over every pair whose words get a
    vector from their character n-grams ("OOV from subwords"), each with the share it covers.

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
    words: list[str] = typer.Argument(None, help="Query words, each answered on its own."),
    positive: str = typer.Option(
        None,
        "--positive",
        help="One query adding these words (comma-separated), e.g. king,woman.",
    ),
    negative: str = typer.Option(
        None, "--negative", help="Words to subtract from the --positive query, e.g. man."
    ),
    method: str = typer.Option(
        "3cosadd",
        "--method",
        help="3cosadd (cosine to the sum, gensim's most_similar) or 3cosmul (Levy & Goldberg's "
        "product, gensim's most_similar_cosmul).",
    ),
    k: int = typer.Option(10, "--k", "-k", help="Neighbours per query."),
    plot: Path = typer.Option(
        None,
        "--plot",
        help="Also save a 2-D PCA projection of the words and their neighbours (PNG).",
    ),
    fmt: str = typer.Option("auto", "--format", help="Vectors file format (see eval)."),
    json_: bool = typer.Option(
        False,
        "--json",
        help="Print {word: [[neighbour, score], ...]} as JSON (with --positive: "
        '{"positive", "negative", "method", "neighbors"}).',
    ),
) -> None:
    """Nearest neighbours by cosine similarity, or of an analogy query (king - man + woman).

    Examples:

        ffnlp w2v neighbors runs/ptb_w2v stock york president --k 5 --plot runs/ptb_w2v/plots/neighbours.png

        ffnlp w2v neighbors runs/ptb_w2v --positive king,woman --negative man --method 3cosmul
    """
    from ffnlp.tasks.w2v import load_word_vectors

    if k < 1:
        raise typer.BadParameter("--k must be at least 1", param_hint="--k")
    if method not in ("3cosadd", "3cosmul"):
        raise typer.BadParameter("--method must be 3cosadd or 3cosmul", param_hint="--method")
    pos, neg = _word_list(positive), _word_list(negative)
    if neg and not pos:
        raise typer.BadParameter("--negative needs --positive words", param_hint="--negative")
    if pos and words:
        raise typer.BadParameter(
            "give query words or --positive/--negative, not both", param_hint="--positive"
        )
    if not pos and not words:
        raise typer.BadParameter("give query words or --positive WORDS", param_hint="WORDS")
    if plot is not None:
        check_output_file(plot, "--plot")
    wv = load_word_vectors(vectors, format=fmt)
    if pos:
        found = wv.most_similar(pos, k, negative=neg, method=method)
        query = " + ".join(pos) + "".join(f" - {w}" for w in neg)
        result = {query: found}
    else:
        result = {w: wv.most_similar(w, k, method=method) for w in words}
    if plot is not None:
        from ffnlp.report.plots import plot_projection

        plot_projection(wv, words or pos + neg, plot, neighbours=k)
    if json_ and pos:
        print_json(
            {
                "positive": pos,
                "negative": neg,
                "method": method,
                "neighbors": [[n, s] for n, s in found],
            }
        )
        return
    if json_:
        print_json({w: [[n, s] for n, s in ns] for w, ns in result.items()})
        return
    for w, ns in result.items():
        out_console.print(f"[bold]{w}[/bold]: " + ", ".join(f"{n} ({s:.3f})" for n, s in ns))
    if plot is not None:
        out_console.print(f"projection saved to {plot}")


@app.command("doesnt-match")
def doesnt_match(
    vectors: Path = typer.Argument(..., help=VECTORS_HELP),
    words: list[str] = typer.Argument(..., help="Two or more words; the odd one out is printed."),
    fmt: str = typer.Option("auto", "--format", help="Vectors file format (see eval)."),
    json_: bool = typer.Option(
        False,
        "--json",
        help='Print {"odd": word, "centrality": [[word, cosine to the mean], ...]} as JSON.',
    ),
) -> None:
    """The word that goes least with the others: the farthest from the mean of their unit vectors.

    Example:

        ffnlp w2v doesnt-match runs/ptb_w2v monday tuesday friday stock
    """
    from ffnlp.tasks.w2v import load_word_vectors

    wv = load_word_vectors(vectors, format=fmt)
    ranked = wv.rank_by_centrality(words)
    if json_:
        print_json({"odd": ranked[-1][0], "centrality": [[w, s] for w, s in ranked]})
        return
    typer.echo(ranked[-1][0])
    out_console.print(
        "cosine to the mean: " + ", ".join(f"{w} {s:.3f}" for w, s in ranked), style="dim"
    )


def _word_list(text: str | None) -> list[str]:
    """Comma-separated words (spaces around them ignored)."""
    return [w.strip() for w in (text or "").split(",") if w.strip()]


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
        for col in ("file", "OOV", "spearman", "pairs", "coverage"):
            table.add_column(col, justify="left" if col in ("file", "OOV") else "right")
        for name, r in result["similarity"].items():
            covered = f"{1 - r['oov_rate']:.1%}"
            table.add_row(name, "skipped", f"{r['spearman']:.3f}", str(r["pairs"]), covered)
            sub = r.get("oov_from_subwords")
            if sub:
                table.add_row(
                    "", "from subwords", f"{sub['spearman']:.3f}", "", f"{sub['coverage']:.1%}"
                )
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
