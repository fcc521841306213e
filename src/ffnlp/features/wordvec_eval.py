"""Looking at word vectors: nearest neighbours and analogy queries, the odd word out, word
similarity, analogies, a 2-D projection.

:class:`WordVectors` holds ``words`` and their ``vectors`` (N, D), most frequent word first (the
order word2vec and ffnlp write). The evaluations follow gensim's ``KeyedVectors`` so that figures
compare:

- **similarity** (``evaluate_word_pairs``): Spearman's rho between the human scores and the
  cosine similarities over the pairs whose two words are known (case-insensitively); pairs with an
  unknown word are left out and counted in ``oov_rate``. Vectors that build a vector for unseen
  words from their character n-grams (:class:`SubwordVectors`, fastText's) are also scored over
  every pair whose words get a vector that way ("OOV from subwords").
- **analogies** (``evaluate_word_analogies``): for ``a b c d`` find the word nearest to
  ``b - a + c`` among the ``restrict`` most frequent words, excluding a, b and c. 3CosAdd is
  ``argmax cos(x, b) - cos(x, a) + cos(x, c)``; 3CosMul (Levy & Goldberg 2014) is
  ``argmax cos'(x, b) cos'(x, c) / (cos'(x, a) + 0.001)`` with ``cos' = (1 + cos) / 2``. Questions with
  a word outside the restricted vocabulary are skipped (and counted); accuracy is over the rest,
  per ``: section`` and in total.

The queries follow gensim too: ``most_similar(positive, negative=...)`` is ``most_similar`` (3CosAdd:
cosine to the normalised sum of the positive unit vectors minus the negative ones) or
``most_similar_cosmul`` (3CosMul, the product above with one factor per word), the query words
left out of the answer; ``doesnt_match`` is the word whose unit vector is least similar to the
normalised mean of all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ffnlp.errors import ConfigError, DataError, shown
from ffnlp.features.embeddings import load_vectors, save_vectors
from ffnlp.fileio import resolved
from ffnlp.params import check_int, check_str, check_strings
from ffnlp.text.readers import as_path, read_lines

ANALOGY_METHODS = ("3cosadd", "3cosmul")
# 3CosMul's epsilon: the analogy benchmark keeps Levy & Goldberg's 0.001; queries use gensim's
# most_similar_cosmul's 1e-6, so that a query answers what gensim answers (the two rank words
# differently where a negative word's shifted cosine is near zero)
COSMUL_EPS = 1e-3
QUERY_COSMUL_EPS = 1e-6


class WordVectors:
    """Words and their vectors (N, D), with cosine look-ups. ``index[word]`` is the row.

    ``word in wv`` asks whether the word is in the vocabulary; :meth:`has_vector` whether it gets a
    vector at all (the same here; :class:`SubwordVectors` builds one for unseen words too).
    """

    subwords = False  # True where unseen words get a vector from their character n-grams

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        self.words = list(words)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.words) != self.vectors.shape[0]:
            raise DataError(
                f"need one vector per word: {len(self.words)} words, vectors of shape "
                f"{self.vectors.shape}"
            )
        self.index = {w: i for i, w in enumerate(self.words)}
        self._unit: np.ndarray | None = None

    @classmethod
    def load(cls, path: str | Path, format: str = "auto", encoding: str = "utf-8") -> WordVectors:
        """From a vectors file (word2vec text/binary, GloVe, .vec) or an ffnlp w2v run directory."""
        words, vectors = load_vectors(path, format=format, encoding=encoding)
        return cls(words, vectors)

    def save(self, path: str | Path, format: str = "word2vec-text") -> None:
        save_vectors(path, self.words, self.vectors, format=format)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vector(word)

    def vector(self, word: str) -> np.ndarray:
        """The vector (D,) of ``word``: its row, or for a word outside the vocabulary what
        :meth:`oov_vector` builds; an unknown word without one is a DataError."""
        row = self.index.get(word)
        if row is not None:
            return self.vectors[row]
        vector = self.oov_vector(word)
        if vector is None:
            raise DataError(self._unknown(word))
        return vector

    def oov_vector(self, word: str) -> np.ndarray | None:
        """A vector for a word outside the vocabulary: None here (no way to build one)."""
        return None

    def has_vector(self, word: str) -> bool:
        """Whether ``word`` gets a vector (here: whether it is in the vocabulary)."""
        return word in self.index

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def unit(self) -> np.ndarray:
        """Rows scaled to unit length (zero rows stay zero)."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.maximum(norms, 1e-12)
        return self._unit

    def _unknown(self, word: str) -> str:
        return f"the word {shown(word)} is not in the vocabulary ({len(self)} words)"

    def _units(self, words: Sequence[str]) -> np.ndarray:
        """Unit vectors (n, D) of ``words``, those outside the vocabulary from :meth:`vector`."""
        if all(w in self.index for w in words):
            return self.unit[[self.index[w] for w in words]]
        out = np.empty((len(words), self.dim), dtype=np.float32)
        for i, w in enumerate(words):
            if w in self.index:
                out[i] = self.unit[self.index[w]]
            else:
                v = self.vector(w)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        units = self._units([a, b])
        return float(units[0] @ units[1])

    def most_similar(
        self,
        positive: str | Sequence[str] = (),
        k: int = 10,
        restrict: int = 0,
        *,
        negative: str | Sequence[str] = (),
        method: str = "3cosadd",
    ) -> list[tuple[str, float]]:
        """The ``k`` words nearest to ``positive`` minus ``negative`` (one word or several), the
        query words left out, among the ``restrict`` most frequent words when restrict > 0.

        ``method``: ``3cosadd`` scores a word by its cosine with the normalised
        ``Σ positive − Σ negative`` of unit vectors (gensim's ``most_similar``); ``3cosmul`` by
        ``Π cos'(x, p) / (Π cos'(x, n) + ε)`` with ``cos' = (1 + cos) / 2`` and ε = 1e-6 (gensim's
        ``most_similar_cosmul``; the analogy benchmark uses Levy & Goldberg's 0.001). ``most_similar("king")`` is the plain neighbour list;
        ``most_similar(["king", "woman"], negative=["man"])`` the analogy king − man + woman.
        """
        owner = "WordVectors.most_similar"
        pos = (
            [positive] if isinstance(positive, str) else check_strings(positive, "positive", owner)
        )
        neg = (
            [negative] if isinstance(negative, str) else check_strings(negative, "negative", owner)
        )
        k = check_int(
            k,
            "k",
            owner,
            ge=1,
            must="an int >= 1 (pass the words to subtract as negative=[...])",
        )
        restrict = check_int(restrict, "restrict", owner, ge=0, must="an int >= 0 (0 = every word)")
        method = check_str(method, "method", owner, choices=ANALOGY_METHODS)
        if not pos:
            raise ConfigError("most_similar needs at least one positive word")
        unit = self.unit[:restrict] if restrict else self.unit  # (N, D)
        if method == "3cosadd":
            sims = unit @ self._query(pos, neg)  # (N,)
        else:
            pos_units, neg_units = self._units(pos), self._units(neg)  # (P, D), (Q, D)
            above = np.prod([(1 + unit @ u) / 2 for u in pos_units], axis=0)  # (N,)
            below = np.prod([(1 + unit @ u) / 2 for u in neg_units], axis=0) if neg else 1.0
            sims = above / (below + QUERY_COSMUL_EPS)  # (N,)
        return self._top(sims, pos + neg, k)

    def most_similar_many(
        self, queries: Sequence[tuple[Sequence[str], Sequence[str]]], k: int = 10
    ) -> list[list[tuple[str, float]]]:
        """:meth:`most_similar` (``3cosadd``, every word) of several ``(positive, negative)``
        queries at once: their query vectors as one (Q, D) matrix times the table, one matrix
        product instead of Q. The same neighbours, in the same order; the scores agree to
        float rounding (the product may add a dot product's terms in another order)."""
        owner = "WordVectors.most_similar_many"
        k = check_int(k, "k", owner, ge=1)
        checked = []
        for i, (positive, negative) in enumerate(queries):
            pos = check_strings(positive, f"queries[{i}] positive", owner)
            neg = check_strings(negative, f"queries[{i}] negative", owner)
            if not pos:
                raise ConfigError("most_similar needs at least one positive word")
            checked.append((pos, neg))
        if not checked:
            return []
        matrix = np.stack([self._query(pos, neg) for pos, neg in checked], axis=1)  # (D, Q)
        sims = self.unit @ matrix  # (N, Q)
        return [self._top(sims[:, j].copy(), pos + neg, k) for j, (pos, neg) in enumerate(checked)]

    def _query(self, pos: list[str], neg: list[str]) -> np.ndarray:
        """(D,) the 3cosadd query: the sum of the positive unit vectors minus the negative ones,
        scaled to unit length when there are several words."""
        query = self._units(pos).sum(axis=0) - self._units(neg).sum(axis=0)  # (D,)
        if len(pos) + len(neg) > 1:
            query = query / max(float(np.linalg.norm(query)), 1e-12)
        return query

    def _top(self, sims: np.ndarray, query_words: list[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` best of ``sims`` (N,) with their words, the query words left out."""
        # the query words are never answers (those in the vocabulary: the others have no row)
        rows = [self.index[w] for w in query_words if w in self.index]
        inputs = [r for r in set(rows) if r < len(sims)]
        sims[inputs] = -np.inf
        k = min(k, len(sims) - len(inputs))
        top = np.argpartition(-sims, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(self.words[i], float(sims[i])) for i in top]

    def rank_by_centrality(self, words: Sequence[str]) -> list[tuple[str, float]]:
        """``words`` with the cosine of each to the normalised mean of their unit vectors, most
        central first (gensim's ``rank_by_centrality``)."""
        words = list(words)
        if len(words) < 3:  # two words are equally far from their mean
            raise ConfigError(f"give at least three words to compare; got {len(words)}")
        vectors = self._units(words)  # (n, D)
        mean = vectors.mean(axis=0)  # (D,)
        sims = vectors @ (mean / max(float(np.linalg.norm(mean)), 1e-12))  # (n,)
        order = np.argsort(-sims, kind="stable")
        return [(words[i], float(sims[i])) for i in order]

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word of ``words`` that goes least with the others: the farthest from their mean."""
        return self.rank_by_centrality(words)[-1][0]

    # -- evaluations
    def evaluate_similarity(self, path: str | Path, lowercase: bool = True) -> dict[str, Any]:
        return evaluate_similarity(self, path, lowercase=lowercase)

    def evaluate_analogies(
        self,
        path: str | Path,
        restrict: int = 30000,
        method: str = "3cosadd",
        lowercase: bool = True,
    ) -> dict[str, Any]:
        return evaluate_analogies(self, path, restrict=restrict, method=method, lowercase=lowercase)


# ------------------------------------------------------------------------------- word similarity


def read_word_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """``word1 word2 score`` lines (tabs or spaces); ``#`` lines are comments."""
    p = as_path(path, "the word-similarity file")
    if not p.is_file():
        raise DataError(f"word-similarity file {resolved(p)} does not exist")
    pairs = []
    for lineno, line in read_lines(p):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 3:
            raise DataError(f"{p}:{lineno}: expected 'word1 word2 score'; got {shown(line)}")
        try:
            score = float(fields[2])
        except ValueError:
            raise DataError(f"{p}:{lineno}: the score {fields[2]!r} is not a number") from None
        pairs.append((fields[0].strip(), fields[1].strip(), score))
    if not pairs:
        raise DataError(f"{p}: no word pairs found")
    return pairs


def _lookup(wv: WordVectors, lowercase: bool) -> dict[str, int]:
    """word -> row; case-insensitive keeps the most frequent spelling (as gensim does)."""
    if not lowercase:
        return wv.index
    table: dict[str, int] = {}
    for i, w in enumerate(wv.words):
        table.setdefault(w.lower(), i)
    return table


def evaluate_similarity(
    wv: WordVectors, path: str | Path, lowercase: bool = True
) -> dict[str, Any]:
    """Spearman and Pearson correlation between cosine similarities and the human scores.

    Returns ``{"spearman", "pearson", "pairs", "oov_pairs", "oov_rate", "coverage"}`` over the
    pairs whose two words are in the vocabulary ("OOV skipped"); ``oov_rate`` is the share of
    pairs left out, ``coverage`` the share scored. For vectors with subwords (``wv.subwords``)
    also ``"oov_from_subwords": {"spearman", "pearson", "scored_pairs", "coverage"}``, over every pair
    whose two words get a vector, unseen ones from their character n-grams.
    """
    pairs = read_word_pairs(path)
    table = _lookup(wv, lowercase)
    norm = (lambda w: w.lower()) if lowercase else (lambda w: w)
    rows_a, rows_b, gold = [], [], []
    for a, b, score in pairs:
        ia, ib = table.get(norm(a)), table.get(norm(b))
        if ia is None or ib is None:
            continue
        rows_a.append(ia)
        rows_b.append(ib)
        gold.append(score)
    known = len(gold)
    result: dict[str, Any] = {
        "pairs": len(pairs),
        "oov_pairs": len(pairs) - known,
        "oov_rate": 1 - known / len(pairs),
        "coverage": known / len(pairs),
    }
    result.update(_correlations(wv.unit[rows_a], wv.unit[rows_b], gold))
    if wv.subwords:
        result["oov_from_subwords"] = _similarity_from_subwords(wv, pairs, table, norm)
    return result


def _correlations(units_a: np.ndarray, units_b: np.ndarray, gold: list[float]) -> dict[str, float]:
    """Spearman and Pearson between the cosines of the unit rows (n, D) and the scores (n,)."""
    if len(gold) < 2:
        return {"spearman": float("nan"), "pearson": float("nan")}
    sims = np.einsum("ij,ij->i", units_a, units_b)
    return {
        "spearman": spearman(sims, np.asarray(gold)),
        "pearson": float(np.corrcoef(sims, gold)[0, 1]),
    }


def _similarity_from_subwords(
    wv: WordVectors,
    pairs: list[tuple[str, str, float]],
    table: dict[str, int],
    norm: Callable[[str], str],
) -> dict[str, Any]:
    """The "OOV from subwords" figures: every pair whose words have a row or n-gram vectors."""
    units: dict[str, np.ndarray | None] = {}

    def unit_of(word: str) -> np.ndarray | None:
        key = norm(word)
        if key not in units:
            row = table.get(key)
            vector = wv.unit[row] if row is not None else wv.oov_vector(key)
            if vector is not None and row is None:
                vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
            units[key] = vector
        return units[key]

    found = [(unit_of(a), unit_of(b), score) for a, b, score in pairs]
    scored = [(ua, ub, score) for ua, ub, score in found if ua is not None and ub is not None]
    out: dict[str, Any] = {"scored_pairs": len(scored), "coverage": len(scored) / len(pairs)}
    empty = np.empty((0, wv.dim), dtype=np.float32)
    out.update(
        _correlations(
            np.stack([x[0] for x in scored]) if scored else empty,
            np.stack([x[1] for x in scored]) if scored else empty,
            [x[2] for x in scored],
        )
    )
    return out


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (scipy's 'average')."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(sorted_x[1:] != sorted_x[:-1]) + 1]
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0  # mean of ranks s+1 .. e
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson's correlation of the ranks."""
    rx, ry = rankdata(x), rankdata(y)
    return float(np.corrcoef(rx, ry)[0, 1])


# ------------------------------------------------------------------------------------- analogies


def read_analogies(path: str | Path) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Sections of ``a b c d`` questions from a questions-words.txt style file."""
    p = as_path(path, "the analogy file")
    if not p.is_file():
        raise DataError(f"analogy file {resolved(p)} does not exist")
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for lineno, line in read_lines(p):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
            continue
        fields = line.split()
        if len(fields) != 4:
            raise DataError(f"{p}:{lineno}: expected four words 'a b c d'; got {shown(line)}")
        if not sections:
            raise DataError(f"{p}:{lineno}: a question before the first ': section' line")
        sections[-1][1].append((fields[0], fields[1], fields[2], fields[3]))
    if not any(qs for _, qs in sections):
        raise DataError(f"{p}: no analogy questions found")
    return sections


def evaluate_analogies(
    wv: WordVectors,
    path: str | Path,
    restrict: int = 30000,
    method: str = "3cosadd",
    lowercase: bool = True,
    batch: int = 512,
) -> dict[str, Any]:
    """Accuracy on analogy questions, per section and in total (gensim's protocol, see above).

    Returns ``{"accuracy", "correct", "questions", "skipped", "method", "restrict",
    "sections": {name: {"accuracy", "correct", "questions"}}}``.
    """
    if method not in ANALOGY_METHODS:
        raise DataError(f"method must be one of {', '.join(ANALOGY_METHODS)}; got {method!r}")
    limit = min(restrict, len(wv)) if restrict > 0 else len(wv)
    table: dict[str, int] = {}
    for i, w in enumerate(wv.words[:limit]):
        table.setdefault(w.lower() if lowercase else w, i)
    unit = wv.unit[:limit]  # (N, D)
    norm = (lambda w: w.lower()) if lowercase else (lambda w: w)
    sections_out: dict[str, dict[str, Any]] = {}
    total_correct = total_asked = skipped = 0
    for name, questions in read_analogies(path):
        ids = []
        for q in questions:
            rows = [table.get(norm(w)) for w in q]
            if any(r is None for r in rows):
                skipped += 1
                continue
            ids.append(rows)
        correct = 0
        if ids:
            arr = np.asarray(ids, dtype=np.int64)  # (Q, 4)
            for start in range(0, len(arr), batch):
                part = arr[start : start + batch]
                predicted = _answer(unit, part[:, 0], part[:, 1], part[:, 2], method)
                correct += int((predicted == part[:, 3]).sum())
        sections_out[name] = {
            "accuracy": correct / len(ids) if ids else float("nan"),
            "correct": correct,
            "questions": len(ids),
        }
        total_correct += correct
        total_asked += len(ids)
    return {
        "accuracy": total_correct / total_asked if total_asked else float("nan"),
        "correct": total_correct,
        "questions": total_asked,
        "skipped": skipped,
        "method": method,
        "restrict": limit,
        "sections": sections_out,
    }


def _answer(
    unit: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, method: str
) -> np.ndarray:
    """Predicted rows (Q,) for questions a:b :: c:?, never a, b or c themselves."""
    if method == "3cosadd":
        # gensim: the unit-length mean of the weighted unit vectors, then cosine
        query = unit[b] + unit[c] - unit[a]  # (Q, D)
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        scores = query @ unit.T  # (Q, N)
    else:
        sim_a, sim_b, sim_c = ((1 + unit[x] @ unit.T) / 2 for x in (a, b, c))  # (Q, N) each
        scores = sim_b * sim_c / (sim_a + COSMUL_EPS)
    rows = np.arange(len(a))
    for x in (a, b, c):
        scores[rows, x] = -np.inf
    return np.asarray(scores.argmax(axis=1))


# ------------------------------------------------------------------------------------ projection


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """Principal-component projection (n, 2) of the given vectors (centred, unit rows first)."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = x - x.mean(axis=0, keepdims=True)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T  # (n, <=2)
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords
