"""The endpoints over real HTTP on 127.0.0.1: answers equal the library's and the CLI's."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import ffnlp
from tests.serve.conftest import Server, start_server

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")


def same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> bool:
    """The same names in the same order, with the same numbers (to float32 precision)."""
    return [g[0] for g in got] == [w[0] for w in want] and [g[1] for g in got] == pytest.approx(
        [w[1] for w in want], rel=1e-6
    )


TEXTS = ["a gripping , funny film", "the plot is dull and the acting is flat", "not good"]


def test_health_and_models(server: Server, served_runs: dict[str, Path]) -> None:
    status, health = server.request("GET", "/health")
    assert status == 200 and health["runs"] == ["clf", "lm", "vec"]
    status, answer = server.request("GET", "/v1/models")
    assert status == 200
    models = {m["name"]: m for m in answer["models"]}
    assert {n: m["task"] for n, m in models.items()} == {
        "clf": "classify",
        "lm": "lm",
        "vec": "w2v",
    }
    clf = ffnlp.load(served_runs["clf"])
    assert models["clf"]["labels"] == clf.labels.labels
    for name, path in served_runs.items():
        config = (path / "config.toml").read_bytes()
        assert models[name]["config_hash"] == "sha256:" + hashlib.sha256(config).hexdigest()
        assert models[name]["size_bytes"] == (path / "model.safetensors").stat().st_size
        assert models[name]["weights"] == "memory-mapped"
    assert models["lm"]["endpoints"] == ["/v1/lm/score", "/v1/lm/generate"]


def test_predict_is_the_json_of_classify_predict(
    server: Server, served_runs: dict[str, Path]
) -> None:
    cli = subprocess.run(
        [sys.executable, "-m", "ffnlp", "classify", "predict", str(served_runs["clf"]), "--json"],
        input="\n".join(TEXTS) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [json.loads(line) for line in cli.stdout.splitlines()]
    status, one = server.post("/v1/clf/predict", {"text": TEXTS[0]})
    assert status == 200 and one == expected[0]
    status, many = server.post("/v1/clf/predict", {"text": TEXTS})
    assert status == 200 and many == {"results": expected}


def test_predict_k_and_threshold(server: Server, served_runs: dict[str, Path]) -> None:
    clf = ffnlp.load(served_runs["clf"])
    status, every = server.post("/v1/clf/predict", {"text": TEXTS[1], "k": -1})
    assert status == 200
    assert same([(t["label"], t["prob"]) for t in every["top"]], clf.predict(TEXTS[1], k=-1))
    assert len(every["top"]) == len(clf.labels) and math.isclose(
        sum(t["prob"] for t in every["top"]), 1.0, rel_tol=1e-5
    )
    low = min(t["prob"] for t in every["top"])
    status, kept = server.post(
        "/v1/clf/predict", {"text": TEXTS[1], "k": 2, "threshold": low + 1e-6}
    )
    assert status == 200 and len(kept["top"]) == 1
    highest = every["top"][0]["prob"]
    assert highest < 1.0
    status, none = server.post(
        "/v1/clf/predict", {"text": TEXTS[1], "threshold": (highest + 1.0) / 2}
    )
    assert status == 200 and (none["label"], none["prob"], none["top"]) == (None, 0.0, [])


def test_lm_score_and_generate(server: Server, served_runs: dict[str, Path]) -> None:
    lm = ffnlp.load(served_runs["lm"])
    status, answer = server.post("/v1/lm/score", {"text": TEXTS})
    assert status == 200
    expected = lm.score(TEXTS)
    for got, want, text in zip(answer["results"], expected, TEXTS, strict=True):
        assert got["text"] == text and got["tokens"] == want["tokens"] == len(text.split()) + 1
        assert got["log_prob"] == pytest.approx(want["log_prob"], rel=1e-6)
        assert got["perplexity"] == pytest.approx(math.exp(-got["log_prob"] / got["tokens"]))
    status, one = server.post("/v1/lm/generate", {"prompt": "the film", "max_tokens": 5, "seed": 3})
    sampled = lm.generate("the film", max_tokens=5, seed=3)
    assert status == 200 and one["tokens"] == sampled.tokens and one["text"] == sampled.text


@pytest.mark.parametrize("text", [TEXTS[1], "not good", ""])
def test_lm_score_of_a_text_is_the_perplexity_of_a_one_line_file(
    served_runs: dict[str, Path], tmp_path: Path, text: str
) -> None:
    """Also for a text shorter than the model's context (its windows were refused before)."""
    lm = ffnlp.load(served_runs["lm"])
    if text != TEXTS[1]:  # the short ones: fewer ids than one window
        assert len(text.split()) + 2 < lm.network.config.context_size + 1
    if not text:  # a file has no empty sentence: </s> alone
        assert lm.score(text)[0]["tokens"] == 1
        return
    path = tmp_path / "one.txt"
    path.write_text(text + "\n", encoding="utf-8")
    assert lm.score(text)[0]["perplexity"] == pytest.approx(lm.perplexity(path), rel=1e-9)


def test_word_vectors(server: Server, served_runs: dict[str, Path]) -> None:
    vec = ffnlp.load(served_runs["vec"])
    status, answer = server.post("/v1/vec/neighbors", {"word": "good", "k": 4})
    assert status == 200
    assert same([(n["word"], n["score"]) for n in answer["neighbors"]], vec.most_similar("good", 4))
    status, one = server.post("/v1/vec/vector", {"word": "film"})
    assert status == 200 and one["vector"] == pytest.approx(vec.vector("film").tolist())
    status, unknown = server.post("/v1/vec/neighbors", {"word": "zzzunseen"})
    assert status == 422 and unknown["field"] == "word" and "zzzunseen" in unknown["error"]


def test_concurrent_requests_share_forward_passes(
    served_runs: dict[str, Path], tmp_path: Path
) -> None:
    """With a long batch wait, 12 requests sent at once are answered by fewer passes, each
    answer the one a request alone gets."""
    running = start_server([served_runs["clf"]], tmp_path / "log", "--batch-wait-ms", "300")
    try:
        clf = ffnlp.load(served_runs["clf"])
        answers: dict[int, tuple[int, object]] = {}

        def ask(i: int) -> None:
            answers[i] = running.post("/v1/clf/predict", {"text": TEXTS[i % 3], "k": 2})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i in range(12):
            status, answer = answers[i]
            assert status == 200
            assert isinstance(answer, dict)
            top = [(t["label"], t["prob"]) for t in answer["top"]]
            assert same(top, clf.predict(TEXTS[i % 3], k=2))
        _, health = running.request("GET", "/health")
        assert 1 <= health["batches"]["clf"] < 12
    finally:
        assert running.stop() == 0


def test_concurrent_neighbors_share_one_product(
    served_runs: dict[str, Path], tmp_path: Path
) -> None:
    """/neighbors requests sent at once are answered by fewer calls of most_similar_many, each
    answer the one most_similar gives alone; a word without a vector among them is a 422 for
    its request only."""
    running = start_server([served_runs["vec"]], tmp_path / "log", "--batch-wait-ms", "300")
    try:
        vec = ffnlp.load(served_runs["vec"])
        queries = [{"word": "good", "k": 3}, {"word": ["film", "good"], "negative": ["plot"]}]
        bodies = [queries[i % 2] for i in range(7)] + [{"word": "zzzunseen"}]
        answers: dict[int, tuple[int, object]] = {}

        def ask(i: int) -> None:
            answers[i] = running.post("/v1/vec/neighbors", bodies[i])

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i, body in enumerate(bodies[:-1]):
            status, answer = answers[i]
            assert status == 200 and isinstance(answer, dict)
            want = vec.most_similar(
                body["word"], body.get("k", 10), negative=body.get("negative", ())
            )
            assert same([(n["word"], n["score"]) for n in answer["neighbors"]], want)
        status, unknown = answers[len(bodies) - 1]
        assert isinstance(unknown, dict)
        assert status == 422 and unknown["field"] == "word" and "zzzunseen" in unknown["error"]
        _, health = running.request("GET", "/health")
        assert 1 <= health["batches"]["vec"] < len(bodies)
    finally:
        assert running.stop() == 0


def test_the_page_is_served_without_outside_assets(server: Server) -> None:
    status, page = server.request("GET", "/")
    assert status == 200 and "<form" in page and '"clf"' in page
    assert "http://" not in page and "https://" not in page and "src=" not in page
