"""The parts of the server without a process: the batcher, the names, the limits, mapping the
weights, and a failure inside the application (a 500 without a traceback)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

import ffnlp
from ffnlp.errors import ConfigError
from ffnlp.serve.batching import MicroBatcher
from ffnlp.serve.limits import Limits
from ffnlp.serve.runs import check_names, map_weights


def test_the_batcher_gathers_groups_and_splits() -> None:
    calls: list[tuple[list[str], Any]] = []

    def upper(texts: list[str], options: Any) -> list[str]:
        calls.append((list(texts), options))
        if options == "fail":
            raise ValueError("bad options")
        return [f"{t.upper()}{options}" for t in texts]

    async def main() -> list[Any]:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(upper, pool, wait_ms=50, max_texts=100)
            jobs = [
                batcher.submit(["a", "b"], "!"),
                batcher.submit(["c"], "?"),
                batcher.submit(["d"], "!"),
                batcher.submit(["e"], "fail"),
            ]
            out = await asyncio.gather(*jobs, return_exceptions=True)
            await batcher.stop()
            assert batcher.batches == 1 and batcher.largest == 4
            return out

    out = asyncio.run(main())
    assert out[:3] == [["A!", "B!"], ["C?"], ["D!"]]
    assert isinstance(out[3], ValueError)
    assert sorted(calls, key=str) == sorted(
        [(["a", "b", "d"], "!"), (["c"], "?"), (["e"], "fail")], key=str
    )


def test_one_bad_request_fails_alone() -> None:
    """A call that raises is made again for each of its requests alone: the one with bad
    input gets the error, the others their answers."""
    calls: list[list[str]] = []

    def known(texts: list[str], options: Any) -> list[str]:
        calls.append(list(texts))
        if "zzz" in texts:
            raise ValueError("zzz is unknown")
        return [t * 2 for t in texts]

    async def main() -> list[Any]:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(known, pool, wait_ms=50, max_texts=100)
            jobs = [batcher.submit(t, None) for t in (["a", "b"], ["zzz"], ["c"])]
            out = await asyncio.gather(*jobs, return_exceptions=True)
            await batcher.stop()
            assert batcher.batches == 1
            return out

    out = asyncio.run(main())
    assert out[0] == ["aa", "bb"] and out[2] == ["cc"]
    assert isinstance(out[1], ValueError) and "zzz" in str(out[1])
    assert calls == [["a", "b", "zzz", "c"], ["a", "b"], ["zzz"], ["c"]]


def test_the_batcher_keeps_to_its_size() -> None:
    sizes: list[int] = []

    def count(texts: list[str], options: Any) -> list[int]:
        sizes.append(len(texts))
        return [len(t) for t in texts]

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(count, pool, wait_ms=50, max_texts=3)
            out = await asyncio.gather(*(batcher.submit(["xx"] * 2, None) for _ in range(4)))
            await batcher.stop()
        assert out == [[2, 2]] * 4

    asyncio.run(main())
    assert sum(sizes) == 8 and max(sizes) <= 4 and len(sizes) >= 2


def test_names_are_the_folders_and_unique(tmp_path: Path) -> None:
    assert check_names([tmp_path / "a", tmp_path / "b.1"]) == ["a", "b.1"]
    with pytest.raises(ConfigError, match="two runs would be served as 'a'"):
        check_names([tmp_path / "a", tmp_path / "x" / "a"])
    with pytest.raises(ConfigError, match="rename or copy the folder"):
        check_names([tmp_path / "a run"])


def test_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match="--max-texts must be a number >= 1"):
        Limits(max_texts=0)
    with pytest.raises(ConfigError, match="--batch-wait-ms must be at most 1000"):
        Limits(batch_wait_ms=5000)


def test_mapped_weights_give_the_same_predictions(served_runs: dict[str, Path]) -> None:
    clf = ffnlp.load(served_runs["clf"])
    texts = ["a gripping , funny film", "dull"]
    before = clf.predict_proba(texts)
    first = next(iter(clf.model.parameters()))
    copy_pointer = first.data_ptr()
    assert map_weights(clf.model, served_runs["clf"] / "model.safetensors")
    assert first.data_ptr() != copy_pointer  # swapped, the Parameter object kept
    assert torch.equal(torch.from_numpy(clf.predict_proba(texts)), torch.from_numpy(before))
    # the tensor lies in a mapping of the file
    weights = str((served_runs["clf"] / "model.safetensors").resolve())
    maps = Path("/proc/self/maps").read_text().splitlines()
    spans = [
        tuple(int(x, 16) for x in line.split()[0].split("-")) for line in maps if weights in line
    ]
    assert any(start <= first.data_ptr() < end for start, end in spans)


def test_a_changed_file_is_not_mapped(served_runs: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import save_model

    clf = ffnlp.load(served_runs["clf"])
    other = ffnlp.load(served_runs["clf"])
    with torch.no_grad():
        for p in other.model.parameters():
            p.add_(1.0)
    save_model(other.model, str(tmp_path / "changed.safetensors"))
    assert not map_weights(clf.model, tmp_path / "changed.safetensors")


def test_an_internal_failure_is_a_500_without_traceback(served_runs: dict[str, Path]) -> None:
    pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
    from ffnlp.serve.app import build_app, load_runs

    limits = Limits()

    def broken(texts: list[str], options: Any) -> list[Any]:
        raise RuntimeError("secret internals /etc/passwd")

    def unwritable(texts: list[str], options: Any) -> list[Any]:
        return [[("good", object())] for _ in texts]  # no JSON for it

    for function in (broken, unwritable):
        runs = load_runs([served_runs["clf"]], limits)  # a batcher serves one event loop
        assert runs[0].batcher is not None
        runs[0].batcher.function = function
        app = build_app(runs, limits)
        status, body = asyncio.run(_asgi_post(app, "/v1/clf/predict", {"text": "good"}))
        assert status == 500
        answer = json.loads(body)
        assert answer == {
            "error": "internal error in the server; its log has the details",
            "status": 500,
        }


def test_the_prediction_route_read_in_parts(served_runs: dict[str, Path]) -> None:
    """POST /v1/... is read straight from the ASGI messages: a body in several parts is joined;
    one over the limit is refused (413) whether its length is declared or found while reading;
    a client gone before its body arrived gets a 400 (nobody reads it) and nothing is raised."""
    pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
    from ffnlp.serve.app import build_app, load_runs

    limits = Limits(max_body_bytes=1000)
    app = build_app(load_runs([served_runs["clf"]], limits), limits)
    data = json.dumps({"text": ["a good film", "a bad film"]}).encode()
    status, body = asyncio.run(_asgi_post(app, "/v1/clf/predict", parts=[data[:7], data[7:]]))
    assert status == 200 and len(json.loads(body)["results"]) == 2
    big = json.dumps({"text": "a" * 2000}).encode()
    status, body = asyncio.run(_asgi_post(app, "/v1/clf/predict", parts=[big[:900], big[900:]]))
    assert status == 413 and json.loads(body)["limit"] == "max_body_bytes"
    status, body = asyncio.run(_asgi_post(app, "/v1/clf/predict", parts=[big], length=len(big)))
    assert status == 413 and f"is {len(big)} bytes" in json.loads(body)["error"]
    status, body = asyncio.run(_asgi_post(app, "/v1/clf/predict", parts=[data[:7]], gone=True))
    assert status == 400 and json.loads(body)["status"] == 400
    status, body = asyncio.run(_asgi_post(app, "/v1/nope/predict", {"text": "good"}))
    assert status == 404 and json.loads(body)["field"] == "run"


async def _asgi_post(
    app: Any,
    path: str,
    payload: Any = None,
    parts: list[bytes] | None = None,
    length: int | None = None,
    gone: bool = False,
) -> tuple[int, bytes]:
    """One POST through the ASGI interface (no socket), with the lifespan around it."""
    if parts is None:
        parts = [json.dumps(payload).encode()]
    if length is None:
        length = sum(map(len, parts))
    sent: list[dict[str, Any]] = []
    given: list[dict[str, Any]] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1 or gone}
        for i, part in enumerate(parts)
    ]
    if gone:
        given.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        if given:
            return given.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(length).encode())],
    }  # fmt: skip
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


def test_what_was_made_before_serving_is_left_out_of_the_collector(
    served_runs: dict[str, Path],
) -> None:
    """The application's start (its lifespan) freezes the objects made so far (gc.freeze):
    the collector's full passes then look only at what requests make."""
    pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
    import gc

    from ffnlp.serve.app import build_app, load_runs

    limits = Limits()
    app = build_app(load_runs([served_runs["clf"]], limits), limits)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    async def main() -> tuple[list[str], int]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[str] = []
        frozen = -1

        async def send(message: dict[str, Any]) -> None:
            nonlocal frozen
            sent.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                frozen = gc.get_freeze_count()
                await inbox.put({"type": "lifespan.shutdown"})

        await inbox.put({"type": "lifespan.startup"})
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
        return sent, frozen

    try:
        sent, frozen = asyncio.run(main())
    finally:
        gc.unfreeze()
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert frozen > 10_000  # PyTorch's modules and the run, at least


def test_a_served_classifier_predicts_on_its_numpy_path(served_runs: dict[str, Path]) -> None:
    """The server takes the run's NumPy path once (its weights do not change) and each batch
    goes straight to it: the same labels and probabilities as Classifier.predict, for every k
    and threshold, on texts that are empty, unknown, non-ASCII or long."""
    from ffnlp.serve.runs import ServedRun

    run = ServedRun("clf", served_runs["clf"], Limits())
    assert run.fast is not None and run.fast is run.model.fast_path()
    clf = ffnlp.load(served_runs["clf"])
    texts = ["a good film", "", "qqq zzz", "très bon — 映画", "good " * 500, "bad\tfilm\n"]
    for k, threshold in [(1, None), (-1, None), (2, 0.3), (1, 0.99)]:
        got = run._predict_batch(texts, (k, threshold))
        want = clf.predict(texts, k=k, threshold=threshold)
        assert [[label for label, _ in top] for top in got] == [
            [label for label, _ in top] for top in want
        ]
        assert [p for top in got for _, p in top] == pytest.approx(
            [p for top in want for _, p in top], rel=1e-6
        )
    asyncio.run(run.close())
