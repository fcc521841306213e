"""`ffnlp w2v train|eval|neighbors|doesnt-match|export`: thin wrappers over ffnlp.tasks.w2v."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli.common import (
    begin_training,
    finish_training,
    out_console,
    print_json,
    recipe_args,
    screen,
)
from ffnlp.cli.options import (
    RUN,
    Config,
    RunOptions,
    Seed,
    Set,
    VectorsFormat,
    run_dir_option,
    run_options,
    settings,
    with_options,
)
from ffnlp.outputs import check_output_file

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

VECTORS_HELP = (
    "An ffnlp w2v run directory or a vectors file (word2vec text/binary, GloVe, fastText .vec). "
    "The run of a model.type = fasttext model also answers words outside its vocabulary, from "
    "their character n-grams."
)


CORPUS_HELP = "Plain-text corpus, one sentence a line, tokens separated by spaces (.gz ok)."
SIMILARITY_HELP = (
    "A word-similarity file (word, word, score a line) evaluated after every epoch and at the end; "
    "repeat it for several (evaluation.similarity)."
)
ANALOGIES_HELP = (
    "Analogy questions (Google's questions-words.txt format) evaluated at the end "
    "(evaluation.analogies)."
)


@app.command("train")
@with_options(run_options)
def train(
    corpus: Annotated[Path, typer.Option("--corpus", help=CORPUS_HELP)],
    config: Config = None,
    similarity: Annotated[list[Path], typer.Option("--similarity", help=SIMILARITY_HELP)] = [],  # noqa: B006 (typer copies it)
    analogies: Annotated[Path | None, typer.Option("--analogies", help=ANALOGIES_HELP)] = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    out: Annotated[Path | None, run_dir_option("w2v")] = None,
    seed: Seed = None,
    run: RunOptions = RUN,  # with_options: the options every `train` command ends with
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
    from ffnlp.tasks.w2v import train_word2vec  # imports torch

    begin_training(run)
    # the evaluation files given here replace the config's (as --set would)
    evaluation: dict[str, Any] = {}
    if similarity:
        evaluation["evaluation.similarity"] = [str(p) for p in similarity]
    if analogies is not None:
        evaluation["evaluation.analogies"] = str(analogies)
    vectors = train_word2vec(
        corpus,
        config=config,
        overrides=settings(set_, run),
        seed=seed,
        **evaluation,
        **recipe_args(run, out),
    )
    finish_training(vectors, run, screen.w2v_train)


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
    from ffnlp.tasks.w2v import evaluate_vectors, load_word_vectors  # imports torch

    if not similarity and analogies is None:
        raise typer.BadParameter(
            "give --similarity FILE and/or --analogies FILE", param_hint="--similarity"
        )
    wv = load_word_vectors(vectors, format=fmt)
    result = evaluate_vectors(wv, similarity, analogies, restrict)
    if json_:
        print_json(result)
        return
    screen.word_vectors(result)


METHOD_HELP = (
    "3cosadd (cosine to the sum, gensim's most_similar) or 3cosmul (Levy & Goldberg's product, "
    "gensim's most_similar_cosmul)."
)
PLOT_HELP = "Also save a 2-D PCA projection of the words and their neighbours (PNG)."
NEIGHBORS_JSON_HELP = (
    'Print {word: [[neighbour, score], ...]} as JSON (with --positive: {"positive", "negative", '
    '"method", "neighbors"}).'
)


@app.command("neighbors")
def neighbors(
    vectors: Annotated[Path, typer.Argument(help=VECTORS_HELP)],
    words: Annotated[
        list[str] | None, typer.Argument(help="Query words, each answered on its own.")
    ] = None,
    positive: Annotated[
        str | None,
        typer.Option(
            "--positive", help="One query adding these words (comma-separated), e.g. king,woman."
        ),
    ] = None,
    negative: Annotated[
        str | None,
        typer.Option("--negative", help="Words to subtract from the --positive query, e.g. man."),
    ] = None,
    method: Annotated[str, typer.Option("--method", help=METHOD_HELP)] = "3cosadd",
    k: Annotated[int, typer.Option("--k", "-k", help="Neighbours per query.")] = 10,
    plot: Annotated[Path | None, typer.Option("--plot", help=PLOT_HELP)] = None,
    fmt: VectorsFormat = "auto",
    json_: Annotated[bool, typer.Option("--json", help=NEIGHBORS_JSON_HELP)] = False,
) -> None:
    """Nearest neighbours by cosine similarity, or of an analogy query (king - man + woman).

    Examples:

        ffnlp w2v neighbors runs/ptb_w2v stock york president --k 5 --plot runs/ptb_w2v/plots/neighbours.png

        ffnlp w2v neighbors runs/ptb_w2v --positive king,woman --negative man --method 3cosmul
    """
    from ffnlp.tasks.w2v import load_word_vectors  # imports torch

    pos, neg = _query(words, positive, negative, method, k)
    if plot is not None:
        check_output_file(plot, "--plot")
    wv = load_word_vectors(vectors, format=fmt)
    if pos:
        query = " + ".join(pos) + "".join(f" - {w}" for w in neg)
        result = {query: wv.most_similar(pos, k, negative=neg, method=method)}
    else:
        result = {w: wv.most_similar(w, k, method=method) for w in words or []}
    if plot is not None:
        from ffnlp.report.plots import plot_projection  # imports matplotlib

        plot_projection(wv, words or pos + neg, plot, neighbours=k)
    found = {w: [[n, s] for n, s in ns] for w, ns in result.items()}
    if json_ and pos:
        query_json = {"positive": pos, "negative": neg, "method": method}
        print_json({**query_json, "neighbors": next(iter(found.values()))})
    elif json_:
        print_json(found)
    else:
        screen.neighbors(result)
        if plot is not None:
            out_console.print(f"projection saved to {plot}")


def _query(
    words: list[str] | None, positive: str | None, negative: str | None, method: str, k: int
) -> tuple[list[str], list[str]]:
    """The --positive and --negative words, once the query's options are checked."""
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
    return pos, neg


@app.command("doesnt-match")
def doesnt_match(
    vectors: Path = typer.Argument(..., help=VECTORS_HELP),
    words: list[str] = typer.Argument(..., help="Two or more words; the odd one out is printed."),
    fmt: VectorsFormat = "auto",
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
    from ffnlp.tasks.w2v import load_word_vectors  # imports torch

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
    from ffnlp.tasks.w2v import load_word_vectors  # imports torch

    if fmt not in ("word2vec-text", "word2vec-binary"):
        raise typer.BadParameter(
            "--format must be word2vec-text or word2vec-binary", param_hint="--format"
        )
    check_output_file(output, "--output")
    wv = load_word_vectors(vectors)
    wv.save(output, format=fmt)
    out_console.print(f"{len(wv)} vectors of dimension {wv.dim} written to {output} ({fmt})")
