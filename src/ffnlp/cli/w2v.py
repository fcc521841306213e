"""`ffnlp w2v train|eval|neighbors|doesnt-match|export`: thin wrappers over ffnlp.tasks.w2v."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli import common
from ffnlp.cli.common import out_console, print_json, print_result, screen
from ffnlp.cli.options import (
    RUN,
    Config,
    RunOptions,
    Seed,
    Set,
    VectorsFormat,
    help_tables,
    run_dir_option,
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
Vectors = Annotated[Path, typer.Argument(help=VECTORS_HELP)]
TRAIN, EVAL, NEIGHBORS, ODD = help_tables(
    train={
        "--corpus": "Plain-text corpus, one sentence a line, tokens separated by spaces (.gz ok).",
        "--similarity": "A word-similarity file (word, word, score a line) evaluated after every "
        "epoch and at the end; repeat it for several (evaluation.similarity).",
        "--analogies": "Analogy questions (Google's questions-words.txt format) evaluated at the "
        "end (evaluation.analogies).",
    },
    eval={
        "--similarity": "Word-similarity file 'w1 w2 score' (repeatable), e.g. wordsim353.tsv.",
        "--analogies": "Analogy questions (questions-words.txt format).",
        "--restrict": "Analogies: search among this many most frequent words (gensim's "
        "restrict_vocab).",
        "--format": "Vectors file format: auto, word2vec-text, word2vec-binary, glove, "
        "fasttext-vec.",
        "--json": "Print the results as JSON.",
    },
    neighbors={
        "WORDS": "Query words, each answered on its own.",
        "--positive": "One query adding these words (comma-separated), e.g. king,woman.",
        "--negative": "Words to subtract from the --positive query, e.g. man.",
        "--method": "3cosadd (cosine to the sum, gensim's most_similar) or 3cosmul (Levy & "
        "Goldberg's product, gensim's most_similar_cosmul).",
        "--k": "Neighbours per query.",
        "--plot": "Also save a 2-D PCA projection of the words and their neighbours (PNG).",
        "--json": 'Print {word: [[neighbour, score], ...]} as JSON (with --positive: {"positive", '
        '"negative", "method", "neighbors"}).',
    },
    odd={
        "WORDS": "Two or more words; the odd one out is printed.",
        "--json": 'Print {"odd": word, "centrality": [[word, cosine to the mean], ...]} as JSON.',
    },
)


@app.command("train")
@with_options(RunOptions)
def train(
    corpus: Annotated[Path, TRAIN("--corpus")],
    config: Config = None,
    similarity: Annotated[list[Path], TRAIN("--similarity")] = [],  # noqa: B006 (typer copies it)
    analogies: Annotated[Path | None, TRAIN("--analogies")] = None,
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

    common.begin_training(run)
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
        **common.recipe_args(run, out),
    )
    common.finish_training(vectors, run, screen.w2v_train)


@app.command("eval")
def evaluate(
    vectors: Vectors,
    similarity: Annotated[list[Path], EVAL("--similarity")] = [],  # noqa: B006 (typer copies it)
    analogies: Annotated[Path | None, EVAL("--analogies")] = None,
    restrict: Annotated[int, EVAL("--restrict")] = 30000,
    fmt: Annotated[str, EVAL("--format")] = "auto",
    json_: Annotated[bool, EVAL("--json")] = False,
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
    print_result(evaluate_vectors(wv, similarity, analogies, restrict), json_, screen.word_vectors)


@app.command("neighbors")
def neighbors(
    vectors: Vectors,
    words: Annotated[list[str] | None, NEIGHBORS("WORDS")] = None,
    positive: Annotated[str | None, NEIGHBORS("--positive")] = None,
    negative: Annotated[str | None, NEIGHBORS("--negative")] = None,
    method: Annotated[str, NEIGHBORS("--method")] = "3cosadd",
    k: Annotated[int, NEIGHBORS("--k", "-k")] = 10,
    plot: Annotated[Path | None, NEIGHBORS("--plot")] = None,
    fmt: VectorsFormat = "auto",
    json_: Annotated[bool, NEIGHBORS("--json")] = False,
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


def _word_list(text: str | None) -> list[str]:
    """Comma-separated words (spaces around them ignored)."""
    return [w.strip() for w in (text or "").split(",") if w.strip()]


@app.command("doesnt-match")
def doesnt_match(
    vectors: Vectors,
    words: Annotated[list[str], ODD("WORDS")],
    fmt: VectorsFormat = "auto",
    json_: Annotated[bool, ODD("--json")] = False,
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


FORMATS = "word2vec-text or word2vec-binary (both read by gensim's load_word2vec_format)."


@app.command("export")
def export(
    vectors: Vectors,
    fmt: Annotated[str, typer.Option("--format", help=FORMATS)] = "word2vec-text",
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
