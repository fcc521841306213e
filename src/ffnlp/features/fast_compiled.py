"""The chunk featurisers' array work as compiled loops (Numba), for long-lived predictors.

:class:`~ffnlp.features.fast.NgramRows` and :class:`~ffnlp.features.fast.IdRows` turn a chunk's
token numbers into CSR rows with some forty NumPy calls; on the few texts of a server's
micro-batch (1 to 64) those calls' own overhead is most of the cost. The kernels here make the
same rows in one call each, text by text:

- :func:`ngram_cells`: every n-gram of a text whose tokens all have a type, its key (the types
  as digits of base ``n_types``, as :class:`NgramRows` makes it), its column (the unigram
  array, or the n-gram's open-addressing table probed as :class:`~ffnlp.features.fast.KeyIndex`
  probes it), then the text's columns sorted and counted: ``(columns, counts, offsets)``, the
  cells :class:`NgramRows` weighs; :func:`weigh_cells` weighs them as
  :func:`~ffnlp.features.weighting.weigh_counts` does, bit for bit (its logarithms taken from a
  table NumPy computed: NumPy's ``log`` and the C library's can differ in the last bit);
- :func:`id_bags`: each text's word rows, then its word n-grams' bucket rows (fastText's hash,
  ``h * 116049371 + next`` in 64 bits, modulo the buckets, after the words), moved through a
  pruned run's row map: the bags :class:`IdRows` makes, in its order.

A chunk comes as :func:`~ffnlp.features.fast.split_chunk` gives it: either one stream with a
separator token between texts (``lengths`` empty: the texts end at each ``separator`` kind), or
the tokens back to back with ``lengths``. The kernels are reached only through
:mod:`ffnlp.jit` (``FFNLP_JIT=0`` or no Numba: the NumPy code of :mod:`ffnlp.features.fast`
runs, which the parity tests compare these with). Importing this module compiles nothing.
"""

from __future__ import annotations

import numpy as np

from ffnlp import jit

FIBONACCI = np.uint64(0x9E3779B97F4A7C15)  # KeyIndex's multiplier (Fibonacci hashing)
NGRAM_MULTIPLIER = np.uint64(116049371)  # fastText's, as ffnlp.text.ngrams


@jit.kernel()
def text_bounds(kind, lengths, by_separator, separator):
    """``(begin, end)``, (B,) int64 each: where each text's tokens start and end in ``kind``;
    ``by_separator``: the texts are separated by one token of kind ``separator`` (B is their
    count + 1, so an empty stream is one empty text), else back to back, ``lengths`` long."""
    if not by_separator:
        n_texts = lengths.shape[0]
        begin = np.empty(n_texts, dtype=np.int64)
        end = np.empty(n_texts, dtype=np.int64)
        at = 0
        for b in range(n_texts):
            begin[b] = at
            at += lengths[b]
            end[b] = at
        return begin, end
    n_texts = 1
    for t in range(kind.shape[0]):
        if kind[t] == separator:
            n_texts += 1
    begin = np.empty(n_texts, dtype=np.int64)
    end = np.empty(n_texts, dtype=np.int64)
    b = 0
    begin[0] = 0
    for t in range(kind.shape[0]):
        if kind[t] == separator:
            end[b] = t
            b += 1
            begin[b] = t + 1
    end[b] = kind.shape[0]
    return begin, end


@jit.kernel()
def ngram_cells(
    kind,  # (T,) int64 each token's type; < 0: no feature holds it (or a separator)
    begin,  # (B,) int64 where each text's tokens start in kind (text_bounds)
    end,  # (B,) int64 where they end
    low,  # the n-gram orders counted: low..high
    high,
    n_types,  # the base of the keys
    unigram,  # (n_types,) int64 column of each type's unigram, -1 none
    table_keys,  # (S,) int64 the open-addressing tables of orders 2..high, back to back
    table_values,  # (S,) int64 each slot's column
    table_start,  # (high+1,) int64 where order n's table starts in table_keys
    table_mask,  # (high+1,) int64 its size - 1; -1: no table of that order
):
    """``(columns, counts, offsets)``: each text's distinct feature columns ascending
    (int64), how many times each occurs (int64), and the (B+1,) start of each text's."""
    n_texts = begin.shape[0]
    orders = max(high - low + 1, 0)
    found = np.empty(kind.shape[0] * orders, dtype=np.int64)  # a text's columns, then sorted
    columns = np.empty(kind.shape[0] * orders, dtype=np.int64)
    counts = np.empty(kind.shape[0] * orders, dtype=np.int64)
    offsets = np.zeros(n_texts + 1, dtype=np.int64)
    cells = 0
    for b in range(n_texts):
        m = 0
        for n in range(low, high + 1):
            if n > 1 and table_mask[n] < 0:
                continue
            for i in range(begin[b], end[b] - n + 1):
                key = 0
                ok = True
                for k in range(n):
                    t = kind[i + k]
                    if t < 0:
                        ok = False
                        break
                    key = key * n_types + t
                if not ok:
                    continue
                if n == 1:
                    column = unigram[key]
                else:
                    mask = table_mask[n]
                    start = table_start[n]
                    mixed = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
                    slot = np.int64(mixed >> np.uint64(32)) & mask
                    column = -1
                    while True:
                        held = table_keys[start + slot]
                        if held == key:
                            column = table_values[start + slot]
                            break
                        if held == -1:
                            break
                        slot = (slot + 1) & mask
                if column >= 0:
                    found[m] = column
                    m += 1
        if m <= 64:  # a sentence's few columns: sorted in place (np.sort allocates)
            for j in range(1, m):
                v = found[j]
                q = j - 1
                while q >= 0 and found[q] > v:
                    found[q + 1] = found[q]
                    q -= 1
                found[q + 1] = v
            mine = found
        else:
            mine = np.sort(found[:m])
        j = 0
        while j < m:
            c = 1
            while j + c < m and mine[j + c] == mine[j]:
                c += 1
            columns[cells] = mine[j]
            counts[cells] = c
            cells += 1
            j += c
        offsets[b + 1] = cells
    return columns[:cells].copy(), counts[:cells].copy(), offsets


@jit.kernel(error_model="numpy")  # a row of norm 0 divides to nan, as NumPy's division does
def weigh_cells(
    columns,  # (C,) int64 each cell's feature column (ngram_cells)
    counts,  # (C,) int64 its count
    offsets,  # (B+1,) int64 each text's first cell
    weighting,  # 0: counts, 1: binary, 2: tf-idf, 3: nbsvm (each cell its feature's ratio)
    sublinear,  # 1 + log(count) in place of the count
    idf,  # (F,) float64 each feature's idf (tf-idf) or log-count ratio (nbsvm), or (0,)
    l2,  # each text's values divided by their L2 norm
    logs,  # (L,) float64 logs[c] = NumPy's log(c), L above every count
):
    """(C,) float32: :func:`~ffnlp.features.weighting.weigh_counts`' values, computed as it
    computes them (float64; a text's squares added in cell order, as ``np.bincount`` adds
    them; the logarithms NumPy's own, from ``logs``), then rounded to float32."""
    out = np.empty(columns.shape[0], dtype=np.float32)
    values = np.empty(columns.shape[0], dtype=np.float64)
    for b in range(offsets.shape[0] - 1):
        squares = 0.0
        for j in range(offsets[b], offsets[b + 1]):
            if weighting == 1:
                v = 1.0
            elif weighting == 3:
                v = idf[columns[j]]
            else:
                v = 1.0 + logs[counts[j]] if sublinear else np.float64(counts[j])
                if weighting == 2:
                    v = v * idf[columns[j]]
            values[j] = v
            squares += v * v
        norm = np.sqrt(squares)
        for j in range(offsets[b], offsets[b + 1]):
            out[j] = np.float32(values[j] / norm if l2 else values[j])
    return out


@jit.kernel()
def id_bags(
    word_row,  # (T,) int64 each token's word row, -1 none
    wide,  # (T,) uint64 each token's fastText hash, widened (read only with max_n > 1)
    begin,  # (B,) int64 where each text's tokens start (text_bounds, split_texts)
    end,  # (B,) int64 where they end
    max_n,  # word n-grams up to this order (1: words only)
    buckets,  # hash buckets of the n-grams
    n_words,  # the first bucket row
    row_map,  # (n_words + buckets,) int64 a pruned run's rows (-1 dropped), or (0,)
):
    """``(ids, offsets)``: each text's word rows (known words, in order), then its bigrams'
    bucket rows left to right, then trigrams'...; and the (B+1,) start of each text's."""
    n_texts = begin.shape[0]
    ids = np.empty(word_row.shape[0] * max(max_n, 1), dtype=np.int64)
    offsets = np.zeros(n_texts + 1, dtype=np.int64)
    pruned = row_map.shape[0] > 0
    m = 0
    for b in range(n_texts):
        for i in range(begin[b], end[b]):
            row = word_row[i]
            if row >= 0:
                if pruned:
                    row = row_map[row]
                if row >= 0:
                    ids[m] = row
                    m += 1
        for n in range(2, max_n + 1):
            for i in range(begin[b], end[b] - n + 1):
                h = wide[i]
                for k in range(1, n):
                    h = h * np.uint64(116049371) + wide[i + k]
                row = np.int64(h % np.uint64(buckets)) + n_words
                if pruned:
                    row = row_map[row]
                if row >= 0:
                    ids[m] = row
                    m += 1
        offsets[b + 1] = m
    return ids[:m].copy(), offsets


@jit.kernel()
def hash_tokens(pool, starts):
    """(N,) uint64: fastText's 32-bit hash of each token ``pool[starts[i]:starts[i+1]]``
    (UTF-8 bytes), as :func:`ffnlp.text.ngrams.token_hash` computes it."""
    out = np.empty(starts.shape[0] - 1, dtype=np.uint64)
    for i in range(out.shape[0]):
        h = np.uint64(2166136261)
        for j in range(starts[i], starts[i + 1]):
            byte = np.uint64(pool[j])
            if byte >= 128:  # fastText XORs the byte sign-extended (int8_t)
                byte |= np.uint64(0xFFFFFF00)
            h = ((h ^ byte) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
        out[i] = h
    return out


@jit.kernel()
def token_slots(hashes, size):
    """(size,) int64: an open-addressing table (linear probing; ``size`` a power of two, at
    least twice the tokens) holding token i at the first free slot from its hash's; -1 free."""
    slots = np.full(size, -1, dtype=np.int64)
    mask = np.uint64(size - 1)
    for i in range(hashes.shape[0]):
        slot = ((hashes[i] * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
        while slots[slot] != -1:
            slot = (slot + np.uint64(1)) & mask
        slots[slot] = i
    return slots


@jit.kernel()
def split_texts(
    data,  # (bytes,) uint8 the texts' UTF-8 bytes, one byte between two texts
    text_bytes,  # (B,) int64 each text's length in bytes
    slots,  # (S,) int64 token_slots' table of the known tokens
    pool,  # the known tokens' bytes back to back
    starts,  # (N+1,) int64 where each known token starts in pool
    values,  # (N,) int64 each known token's value (a type, a row)
):
    """Every text split as :class:`~ffnlp.text.tokenize.Tokenizer` ("whitespace") splits it
    (an ASCII text at ASCII whitespace and ``\x1c``-``\x1f``, as ``str.split()``; any other
    at ASCII whitespace only, its other bytes being those of non-ASCII characters), each token
    looked up: ``(begin, end, found, wide)``, each text's first token and the one after its
    last, each token's value (-1: not a known token), and its fastText hash widened to 64 bits
    as fastText feeds it to the n-gram combination."""
    n_texts = text_bytes.shape[0]
    most = data.shape[0] // 2 + 1  # a token is at least a byte and a space
    found = np.empty(most, dtype=np.int64)
    wide = np.empty(most, dtype=np.uint64)
    begin = np.empty(n_texts, dtype=np.int64)
    end = np.empty(n_texts, dtype=np.int64)
    mask = np.uint64(slots.shape[0] - 1)
    at = 0
    t = 0
    for b in range(n_texts):
        stop = at + text_bytes[b]
        ascii_text = True
        for j in range(at, stop):
            if data[j] >= 128:
                ascii_text = False
                break
        begin[b] = t
        j = at
        while j < stop:
            c = data[j]
            if c == 32 or (9 <= c <= 13) or (ascii_text and 28 <= c <= 31):
                j += 1
                continue
            first = j
            h = np.uint64(2166136261)
            while j < stop:
                c = data[j]
                if c == 32 or (9 <= c <= 13) or (ascii_text and 28 <= c <= 31):
                    break
                byte = np.uint64(c)
                if c >= 128:
                    byte |= np.uint64(0xFFFFFF00)
                h = ((h ^ byte) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
                j += 1
            length = j - first
            value = -1
            slot = ((h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
            while slots[slot] != -1:
                i = slots[slot]
                if starts[i + 1] - starts[i] == length:
                    same = True
                    for q in range(length):
                        if pool[starts[i] + q] != data[first + q]:
                            same = False
                            break
                    if same:
                        value = values[i]
                        break
                slot = (slot + np.uint64(1)) & mask
            found[t] = value
            wide[t] = h | np.uint64(0xFFFFFFFF00000000) if h >= np.uint64(0x80000000) else h
            t += 1
        end[b] = t
        at = stop + 1
    return begin, end, found[:t].copy(), wide[:t].copy()


# -- fused: a chunk's texts to the sums of their rows in one call -------------------------------
# The two kernels below do, text by text, what split_texts, then ngram_cells + weigh_cells (or
# id_bags), then ffnlp.models.kernels.bag_sum.bag_sums do one after the other: the same loops in
# the same order, so the same numbers bit for bit (the parity tests compare them), without the
# intermediate arrays and with one call's overhead instead of four. The split is written out in
# each (a compiled kernel cannot call another one that ffnlp.jit compiles on demand). Their
# tables are packed for the few cache lines a look-up may read on a server, where the work
# between two calls has emptied the caches: a known token's slot holds its bytes' place, length,
# value and (n-grams) unigram column side by side (TokenTable.records: one line read where the
# slots, starts, values and unigram arrays took four), an n-gram slot its key and column.


# The GIL is kept during these calls: ``ffnlp serve`` makes them in a thread beside its event
# loop, which would take a released GIL and keep it until its switch interval (5 ms) or its
# next wait, while the call, done in tens of microseconds, waits to return its batch.
@jit.kernel(error_model="numpy", nogil=False)  # as weigh_cells: a norm of 0 divides to nan
def ngram_bag_sums(
    data,  # (bytes,) uint8 the texts' UTF-8 bytes, one byte between two texts (split_texts)
    text_bytes,  # (B,) int64 each text's length in bytes
    records,  # (S, 4) int64 the known tokens' table (TokenTable.records): value = the type,
    # extra = its unigram's column
    pool,  # their bytes back to back
    low,  # the n-gram orders counted (ngram_cells)
    high,
    n_types,
    table_pairs,  # (S', 2) int64 ngram_cells' tables, each slot's key and column side by side
    table_start,
    table_mask,
    weighting,  # weigh_cells' arguments
    sublinear,
    idf,
    l2,
    logs,  # (L,) float64, L above the tokens of the longest text
    table,  # (F, D) the rows summed (the first layer's weights)
):
    """(B, D) in ``table``'s type: each text's feature rows times their weights added up in
    column order: ``bag_sums(table, *ngram_cells + weigh_cells of split_texts)``."""
    n_texts = text_bytes.shape[0]
    width = table.shape[1]
    out = np.zeros((n_texts, width), dtype=table.dtype)
    longest = 0
    for b in range(n_texts):
        longest = max(longest, text_bytes[b])
    most = longest // 2 + 1  # a text's tokens at most
    orders = max(high - low + 1, 0)
    kind = np.empty(most, dtype=np.int64)
    unigram_column = np.empty(most, dtype=np.int64)
    token_first = np.empty(most, dtype=np.int64)
    token_length = np.empty(most, dtype=np.int64)
    token_slot = np.empty(most, dtype=np.uint64)
    gram_key = np.empty(most, dtype=np.int64)
    gram_slot = np.empty(most, dtype=np.int64)
    found = np.empty(most * orders, dtype=np.int64)
    columns = np.empty(most * orders, dtype=np.int64)
    counts = np.empty(most * orders, dtype=np.int64)
    weights = np.empty(most * orders, dtype=np.float64)
    mask = np.uint64(records.shape[0] - 1)
    at = 0
    for b in range(n_texts):
        # the text's tokens, each looked up (split_texts)
        stop = at + text_bytes[b]
        ascii_text = True
        for j in range(at, stop):
            if data[j] >= 128:
                ascii_text = False
                break
        t = 0
        j = at
        while j < stop:
            c = data[j]
            if c == 32 or (9 <= c <= 13) or (ascii_text and 28 <= c <= 31):
                j += 1
                continue
            first = j
            h = np.uint64(2166136261)
            while j < stop:
                c = data[j]
                if c == 32 or (9 <= c <= 13) or (ascii_text and 28 <= c <= 31):
                    break
                byte = np.uint64(c)
                if c >= 128:
                    byte |= np.uint64(0xFFFFFF00)
                h = ((h ^ byte) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
                j += 1
            token_first[t] = first
            token_length[t] = j - first
            token_slot[t] = ((h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
            t += 1
        at = stop + 1
        # every token's slot read once before any is compared: the reads (cache misses on a
        # busy server) run side by side instead of one after the other (never < -t: each >= -1)
        touched = 0
        for i in range(t):
            touched += records[token_slot[i], 0]
        if touched < -t:
            return out
        for i in range(t):
            first = token_first[i]
            length = token_length[i]
            slot = token_slot[i]
            value = -1
            column = -1
            while records[slot, 0] != -1:
                if records[slot, 1] == length:
                    at_pool = records[slot, 0]
                    same = True
                    for q in range(length):
                        if pool[at_pool + q] != data[first + q]:
                            same = False
                            break
                    if same:
                        value = records[slot, 2]
                        column = records[slot, 3]
                        break
                slot = (slot + np.uint64(1)) & mask
            kind[i] = value
            unigram_column[i] = column
        # its n-grams' columns, sorted and counted (ngram_cells)
        m = 0
        for n in range(low, high + 1):
            if n > 1 and table_mask[n] < 0:
                continue
            if n == 1:
                for i in range(t):
                    if kind[i] >= 0 and unigram_column[i] >= 0:
                        found[m] = unigram_column[i]
                        m += 1
                continue
            # the n-grams' keys and first slots, their slots read side by side (as the
            # tokens' above), then each probed
            tmask = table_mask[n]
            tstart = table_start[n]
            grams = 0
            for i in range(0, t - n + 1):
                key = 0
                ok = True
                for k in range(n):
                    kk = kind[i + k]
                    if kk < 0:
                        ok = False
                        break
                    key = key * n_types + kk
                if ok:
                    mixed = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
                    gram_key[grams] = key
                    gram_slot[grams] = np.int64(mixed >> np.uint64(32)) & tmask
                    grams += 1
            touched = 0
            for g in range(grams):
                touched += table_pairs[tstart + gram_slot[g], 0]
            if touched < -grams:
                return out
            for g in range(grams):
                key = gram_key[g]
                tslot = gram_slot[g]
                while True:
                    held = table_pairs[tstart + tslot, 0]
                    if held == key:
                        column = table_pairs[tstart + tslot, 1]
                        if column >= 0:
                            found[m] = column
                            m += 1
                        break
                    if held == -1:
                        break
                    tslot = (tslot + 1) & tmask
        if m <= 64:  # a sentence's few columns: sorted in place (np.sort allocates)
            for j in range(1, m):
                v = found[j]
                q = j - 1
                while q >= 0 and found[q] > v:
                    found[q + 1] = found[q]
                    q -= 1
                found[q + 1] = v
            mine = found
        else:
            mine = np.sort(found[:m])
        cells = 0
        j = 0
        while j < m:
            c = 1
            while j + c < m and mine[j + c] == mine[j]:
                c += 1
            columns[cells] = mine[j]
            counts[cells] = c
            cells += 1
            j += c
        # their values (weigh_cells)
        squares = 0.0
        for j in range(cells):
            if weighting == 1:
                v = 1.0
            elif weighting == 3:
                v = idf[columns[j]]
            else:
                v = 1.0 + logs[counts[j]] if sublinear else np.float64(counts[j])
                if weighting == 2:
                    v = v * idf[columns[j]]
            weights[j] = v
            squares += v * v
        norm = np.sqrt(squares)
        # the rows times the values added in order (bag_sums)
        for j in range(cells):
            w = np.float32(weights[j] / norm if l2 else weights[j])
            row = columns[j]
            for d in range(width):
                out[b, d] += w * table[row, d]
    return out


@jit.kernel(nogil=False)
def id_bag_sums(
    data,  # (bytes,) uint8 the texts' UTF-8 bytes, one byte between two texts (split_texts)
    text_bytes,  # (B,) int64 each text's length in bytes
    records,  # (S, 4) int64 the known words' table (TokenTable.records): value = the row
    pool,  # their bytes back to back
    max_n,  # id_bags' arguments
    buckets,
    n_words,
    row_map,
    table,  # (R, D) the rows summed (the embedding table, or its projection)
    mean,  # divide each text's sum by its rows' count
):
    """(B, D) in ``table``'s type: each text's rows (its words', then its n-grams' buckets, as
    :func:`id_bags` orders them) added up in that order, averaged where ``mean``:
    ``bag_sums(table, *id_bags of split_texts, mean)``."""
    n_texts = text_bytes.shape[0]
    width = table.shape[1]
    out = np.zeros((n_texts, width), dtype=table.dtype)
    longest = 0
    for b in range(n_texts):
        longest = max(longest, text_bytes[b])
    most = longest // 2 + 1
    word_row = np.empty(most, dtype=np.int64)
    wide = np.empty(most, dtype=np.uint64)
    ids = np.empty(most * max(max_n, 1), dtype=np.int64)
    pruned = row_map.shape[0] > 0
    mask = np.uint64(records.shape[0] - 1)
    at = 0
    for b in range(n_texts):
        # the text's words, each looked up, and their hashes (split_texts)
        stop = at + text_bytes[b]
        ascii_text = True
        for j in range(at, stop):
            if data[j] >= 128:
                ascii_text = False
                break
        t = 0
        j = at
        while j < stop:
            c = data[j]
            if c == 32 or (9 <= c <= 13) or (ascii_text and 28 <= c <= 31):
                j += 1
                continue
            first = j
            h = np.uint64(2166136261)
            while j < stop:
                c = data[j]
                if c == 32 or (9 <= c <= 13) or (ascii_text and 28 <= c <= 31):
                    break
                byte = np.uint64(c)
                if c >= 128:
                    byte |= np.uint64(0xFFFFFF00)
                h = ((h ^ byte) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
                j += 1
            length = j - first
            value = -1
            slot = ((h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
            while records[slot, 0] != -1:
                if records[slot, 1] == length:
                    at_pool = records[slot, 0]
                    same = True
                    for q in range(length):
                        if pool[at_pool + q] != data[first + q]:
                            same = False
                            break
                    if same:
                        value = records[slot, 2]
                        break
                slot = (slot + np.uint64(1)) & mask
            word_row[t] = value
            wide[t] = h | np.uint64(0xFFFFFFFF00000000) if h >= np.uint64(0x80000000) else h
            t += 1
        at = stop + 1
        # its rows in id_bags' order
        m = 0
        for i in range(t):
            row = word_row[i]
            if row >= 0:
                if pruned:
                    row = row_map[row]
                if row >= 0:
                    ids[m] = row
                    m += 1
        for n in range(2, max_n + 1):
            for i in range(0, t - n + 1):
                hh = wide[i]
                for k in range(1, n):
                    hh = hh * np.uint64(116049371) + wide[i + k]
                row = np.int64(hh % np.uint64(buckets)) + n_words
                if pruned:
                    row = row_map[row]
                if row >= 0:
                    ids[m] = row
                    m += 1
        # added in order, then averaged (bag_sums)
        for j in range(m):
            row = ids[j]
            for d in range(width):
                out[b, d] += table[row, d]
        if mean and m > 0:
            scale = table.dtype.type(m)
            for d in range(width):
                out[b, d] /= scale
    return out
