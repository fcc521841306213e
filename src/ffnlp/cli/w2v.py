"""`ffnlp w2v train|eval|neighbors|doesnt-match|export`: thin wrappers over ffnlp.tasks.w2v."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli import common
from ffnlp.cli import options as opt
from ffnlp.cli.common import out_console, print_json, print_result, screen
from ffnlp.outputs import check_output_file

app = opt.group(help="Skip-gram word2vec: train, eval, neighbors, export.")

VECTORS_HELP = (
    "An ffnlp w2v run directory or a vectors file (word2vec text/binary, GloVe, fastText .vec). "
    "The run of a model.type = fasttext model also answers words outside its vocabulary, from "
    "their character n-grams."
)
Vectors = Annotated[Path, typer.Argument(help=VECTORS_HELP)]
TRAIN, EVAL, NEIGHBORS, ODD = opt.help_tables(
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
@opt.with_options(opt.RunOptions)
def train(
    corpus: Annotated[Path, TRAIN("--corpus")],
    config: opt.Config = None,
    similarity: Annotated[list[Path], TRAIN("--similarity")] = [],  # noqa: B006 (typer copies it)
    analogies: Annotated[Path | None, TRAIN("--analogies")] = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    out: Annotated[Path | None, opt.run_dir_option("w2v")] = None,
    seed: opt.Seed = None,
    run: opt.RunOptions = opt.RUN,  # with_options: the options every `train` command ends with
) -> None:
    """Train skip-gram (or CBOW) word vectors with negative sampling; with model.type =
    fasttext, over words and their character n-grams, so that unseen words get vectors too.

    How it trains (a compiled kernel on model.workers threads, or PyTorch): docs/w2v.md.

    Examples:

        ffnlp w2v train --corpus ../shared/data/ptb/ptb.train.txt.gz --config ptb_w2v --out runs/ptb_w2v

        ffnlp w2v train --corpus ../shared/data/ptb/ptb.train.txt.gz --config ptb_fasttext --similarity ../shared/data/word_similarity/wordsim353.tsv --out runs/ptb_fasttext
    """
    # the evaluation files given here replace the config's (as --set would)
    files: dict[str, Any] = {"evaluation.analogies": str(analogies)} if analogies else {}
    files |= {"evaluation.similarity": list(map(str, similarity))} if similarity else {}
    common.train("w2v", (corpus,), run, config, set_, out, seed, **files)


@app.command("eval")
def evaluate(
    vectors: Vectors,
    similarity: Annotated[list[Path], EVAL("--similarity")] = [],  # noqa: B006 (typer copies it)
    analogies: Annotated[Path | None, EVAL("--analogies")] = None,
    restrict: Annotated[int, EVAL("--restrict")] = 30000,
    fmt: opt.VectorsFormat = "auto",
    json_: opt.Json = False,
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
    fmt: opt.VectorsFormat = "auto",
    json_: Annotated[bool, NEIGHBORS("--json")] = False,
) -> None:
    """Nearest neighbours by cosine similarity, or of an analogy query (king - man + woman).

    Examples:

        ffnlp w2v neighbors runs/ptb_w2v stock york president --k 5 --plot runs/ptb_w2v/plots/neighbours.png

        ffnlp w2v neighbors runs/ptb_w2v --positive king,woman --negative man --method 3cosmul
    """
    from ffnlp.tasks.w2v import load_word_vectors, nearest_words  # imports torch

    pos, neg = _query(words, positive, negative, method, k)
    if plot is not None:
        check_output_file(plot, "--plot")
    wv = load_word_vectors(vectors, format=fmt)
    result = nearest_words(wv, words or [], pos, neg, k, method)
    if plot is not None:
        from ffnlp.report.plots import plot_projection  # imports matplotlib

        plot_projection(wv, words or pos + neg, plot, neighbours=k)
    print_result(result, json_, lambda r: screen.neighbors(r, plot, query=bool(pos)))


def _query(
    words: list[str] | None, positive: str | None, negative: str | None, method: str, k: int
) -> tuple[list[str], list[str]]:
    """The --positive and --negative words (comma-separated), once the query's options are
    checked."""
    pos, neg = (
        [w.strip() for w in (text or "").split(",") if w.strip()] for text in (positive, negative)
    )
    common.refuse(
        (k < 1, "--k must be at least 1", "--k"),
        (method not in ("3cosadd", "3cosmul"), "--method must be 3cosadd or 3cosmul", "--method"),
        (neg and not pos, "--negative needs --positive words", "--negative"),
        (pos and words, "give query words or --positive/--negative, not both", "--positive"),
        (not pos and not words, "give query words or --positive WORDS", "WORDS"),
    )
    return pos, neg


@app.command("doesnt-match")
def doesnt_match(
    vectors: Vectors,
    words: Annotated[list[str], ODD("WORDS")],
    fmt: opt.VectorsFormat = "auto",
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
        return print_json({"odd": ranked[-1][0], "centrality": [[w, s] for w, s in ranked]})
    typer.echo(ranked[-1][0])
    screen.centrality(ranked)


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
