"""Vocabularies: tokens <-> integer ids, and class labels <-> class ids.

``Vocab.build`` is deterministic: the special tokens first (in the order given), then the tokens
by count, most frequent first, ties in alphabetical order. The same corpus always gives the same
ids, whatever the order of the sentences or Python's hash seed.

``LabelVocab.build`` sorts labels numerically when every label is an integer ("0", "1", "10"),
otherwise as strings; so class ids do not depend on which label the file happens to start with.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ffnlp.errors import DataError, ModelFileError, shown
from ffnlp.fileio import write_atomic

PAD = "<pad>"
UNK = "<unk>"
_INTEGER = re.compile(r"[+-]?\d+")
_MAX_LISTED = 10  # how many unknown tokens / labels an error message names


class Vocab:
    """A token vocabulary: ``itos`` (id -> token), ``stoi`` / ``v[token]`` (token -> id).

    Unknown tokens map to the ``<unk>`` id when ``<unk>`` is one of the specials; without it they
    raise :class:`DataError`. ``counts[i]`` is how often ``itos[i]`` occurred in the data the
    vocabulary was built from (0 for a special that never occurs in it).
    """

    def __init__(
        self,
        itos: Sequence[str],
        counts: Sequence[int] | None = None,
        specials: Sequence[str] = (PAD, UNK),
    ):
        self.itos: list[str] = list(itos)
        self.counts: list[int] = list(counts) if counts is not None else [0] * len(self.itos)
        self.specials: tuple[str, ...] = tuple(specials)
        self._stoi = {token: i for i, token in enumerate(self.itos)}
        if len(self._stoi) != len(self.itos):
            dupes = sorted(t for t, c in Counter(self.itos).items() if c > 1)
            raise DataError(f"a vocabulary cannot hold a token twice; repeated: {_listed(dupes)}")
        if len(self.counts) != len(self.itos):
            raise DataError(
                f"a vocabulary needs one count per token; got {len(self.counts)} counts "
                f"for {len(self.itos)} tokens"
            )
        missing = [s for s in self.specials if s not in self._stoi]
        if missing:
            raise DataError(f"the specials {_listed(missing)} are not in the vocabulary")
        self.pad_id: int | None = self._stoi.get(PAD) if PAD in self.specials else None
        self.unk_id: int | None = self._stoi.get(UNK) if UNK in self.specials else None

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Iterable[str]],
        min_count: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = (PAD, UNK),
    ) -> Vocab:
        """Count the tokens and keep those seen at least ``min_count`` times.

        ``max_size`` bounds ``len(vocab)``, specials included (the rarest tokens are cut).
        Empty input gives a vocabulary of only the specials.
        """
        cls._check_build(min_count, max_size, specials)
        counter: Counter[str] = Counter()
        for tokens in token_lists:
            counter.update(tokens)
        return cls.from_counts(counter, min_count, max_size, specials)

    @classmethod
    def from_counts(
        cls,
        counter: Mapping[str, int],
        min_count: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = (PAD, UNK),
    ) -> Vocab:
        """As :meth:`build`, from tokens already counted (e.g. counts of several files merged:
        the order of the tokens in ``counter`` does not matter)."""
        cls._check_build(min_count, max_size, specials)
        specials = tuple(specials)
        special_set = set(specials)
        kept = [(t, c) for t, c in counter.items() if c >= min_count and t not in special_set]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        itos = list(specials) + [t for t, _ in kept]
        counts = [counter.get(s, 0) for s in specials] + [c for _, c in kept]
        return cls(itos, counts, specials)

    @staticmethod
    def _check_build(min_count: int, max_size: int | None, specials: Sequence[str]) -> None:
        if min_count < 1:
            raise DataError(f"min_count must be at least 1; got {min_count}")
        if len(set(specials)) != len(specials):
            raise DataError(f"the specials must be distinct; got {tuple(specials)}")
        if max_size is not None and max_size < len(specials):
            raise DataError(
                f"max_size must be at least the number of specials ({len(specials)}); got {max_size}"
            )

    def extended(self, more: Vocab, min_count: int = 1, max_size: int | None = None) -> Vocab:
        """This vocabulary grown with ``more`` (built from new data with ``min_count=1``), as
        gensim's ``build_vocab(update=True)``: every token keeps its id and its count grows by
        its count in ``more``; the tokens of ``more`` seen at least ``min_count`` times there
        and not here come after, most frequent first (ties alphabetical), while ``max_size``
        (specials included; None: no bound) leaves room."""
        if min_count < 1:
            raise DataError(f"min_count must be at least 1; got {min_count}")
        counts = list(self.counts)
        new: list[tuple[str, int]] = []
        for token, count in zip(more.itos, more.counts, strict=True):
            i = self._stoi.get(token)
            if i is not None:
                counts[i] += count
            elif count >= min_count:
                new.append((token, count))
        new.sort(key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            new = new[: max(max_size - len(self.itos), 0)]
        itos = self.itos + [t for t, _ in new]
        return Vocab(itos, counts + [c for _, c in new], self.specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi(token)

    def __iter__(self) -> Iterator[str]:
        """The tokens in id order (``list(vocab)`` is ``vocab.itos``)."""
        return iter(self.itos)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={self.specials})"

    def stoi(self, token: str) -> int:
        """The id of ``token``; the ``<unk>`` id for an unknown token (DataError without one)."""
        i = self._stoi.get(token, self.unk_id)
        if i is None:
            raise DataError(
                f"the token {shown(token)} is not in the vocabulary, which has no {UNK} "
                f"(build it with {UNK} among the specials to map unknown tokens)"
            )
        return i

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens become the ``<unk>`` id (DataError without one)."""
        if self.unk_id is not None:
            get, unk = self._stoi.get, self.unk_id
            return [get(t, unk) for t in tokens]
        tokens = list(tokens)
        unknown = sorted({t for t in tokens if t not in self._stoi})
        if unknown:
            raise DataError(f"tokens not in the vocabulary, which has no {UNK}: {_listed(unknown)}")
        return [self._stoi[t] for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids``."""
        itos, size = self.itos, len(self.itos)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < size:
                raise DataError(f"id {i} is outside the vocabulary (0..{size - 1})")
            out.append(itos[i])
        return out

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "itos": list(self.itos),
            "counts": list(self.counts),
            "specials": list(self.specials),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        """The vocabulary :meth:`to_dict` wrote; anything else is a ModelFileError."""
        if not isinstance(data, dict) or "itos" not in data:
            raise ModelFileError(
                "not a vocabulary: expected an object with keys itos, counts, specials"
            )
        itos, counts, specials = data["itos"], data.get("counts"), data.get("specials", ())
        if not _all(itos, str):
            raise ModelFileError("not a vocabulary: 'itos' must be a list of strings")
        if counts is not None and not (
            _all(counts, int) and all(c >= 0 and not isinstance(c, bool) for c in counts)
        ):
            raise ModelFileError(
                "not a vocabulary: 'counts' must be a list of counts (integers >= 0)"
            )
        if not _all(specials, str):
            raise ModelFileError("not a vocabulary: 'specials' must be a list of strings")
        return cls(itos, counts, specials)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (UTF-8), atomically."""
        write_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        try:
            return cls.from_dict(_load_json(path))
        except (ModelFileError, DataError) as e:
            if str(e).startswith(str(path)):
                raise
            raise ModelFileError(f"{path}: {e}") from None


class LabelVocab:
    """Class labels (strings) <-> class ids 0..K-1, in a stable sorted order."""

    def __init__(self, labels: Sequence[str]):
        self.labels: list[str] = [str(label) for label in labels]
        self._index = {label: i for i, label in enumerate(self.labels)}
        if len(self._index) != len(self.labels):
            raise DataError(f"labels must be distinct; got {self.labels}")

    @classmethod
    def build(cls, labels: Iterable[str]) -> LabelVocab:
        """The distinct labels, sorted numerically if all are integers, else as strings."""
        distinct = {str(label) for label in labels}
        if distinct and all(_INTEGER.fullmatch(label) for label in distinct):
            return cls(sorted(distinct, key=lambda label: (int(label), label)))
        return cls(sorted(distinct))

    def extended(self, labels: Iterable[str]) -> LabelVocab:
        """These labels in their order, then those of ``labels`` not among them, sorted as
        :meth:`build` sorts (a continued classifier's old classes keep their ids)."""
        more = [label for label in LabelVocab.build(labels).labels if label not in self._index]
        return LabelVocab(self.labels + more)

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __getitem__(self, label: str) -> int:
        return self.encode([label])[0]

    def __iter__(self) -> Iterator[str]:
        """The labels in id order (``list(clf.labels)`` is ``clf.labels.labels``)."""
        return iter(self.labels)

    def __repr__(self) -> str:
        return f"LabelVocab({self.labels})"

    def encode(self, labels: Iterable[str]) -> list[int]:
        """Class ids of ``labels``; a label never seen in training raises DataError naming it."""
        index = self._index
        labels = list(labels)
        try:
            return [index[label] for label in labels]
        except KeyError:
            pass
        unseen = sorted({label for label in labels if label not in index})
        raise DataError(
            f"unknown label{'s' if len(unseen) > 1 else ''} {_listed(unseen)}: the model knows "
            f"only {_listed(self.labels)}; check the label column or train on data with these labels"
        )

    def decode(self, ids: Iterable[int]) -> list[str]:
        size = len(self.labels)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < size:
                raise DataError(f"class id {i} is outside the label set (0..{size - 1})")
            out.append(self.labels[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelVocab:
        """The label set :meth:`to_dict` wrote; anything else is a ModelFileError."""
        labels = data.get("labels") if isinstance(data, dict) else None
        if not isinstance(labels, (list, tuple)) or not _all(labels, str):
            raise ModelFileError(
                "not a label set: expected an object whose 'labels' is a list of strings"
            )
        try:
            return cls(labels)
        except DataError as e:
            raise ModelFileError(f"not a label set: {e}") from None


def _all(items: object, kind: type) -> bool:
    """Whether ``items`` is a list (or tuple) of ``kind`` values."""
    return isinstance(items, (list, tuple)) and all(isinstance(x, kind) for x in items)


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _load_json(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such vocabulary file")
    try:
        data = json.loads(p.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ModelFileError(f"{p}: cannot be read ({e.strerror or e})") from None
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, a 5000-digit number
        raise ModelFileError(f"{p}: not a JSON vocabulary file ({str(e)[:200]})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{p}: not a JSON vocabulary file (a JSON object was expected)")
    return data
