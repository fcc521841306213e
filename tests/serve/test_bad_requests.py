"""Bad requests over real HTTP: each gets its 4xx JSON answer naming the field or the limit (or,
below HTTP, what uvicorn does), and the server goes on serving."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.serve.conftest import HOST, Server

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")

MB = 1 << 20


@pytest.fixture
def still_serving(server: Server) -> Iterator[Server]:
    """The server, checked after the test: it answers /health and a prediction."""
    yield server
    assert server.healthy()
    status, answer = server.post("/v1/clf/predict", {"text": "a good film"})
    assert status == 200 and answer["top"], answer


def refused(answer: object, status: int, expected: int, field: str | None = None) -> dict:
    assert status == expected, answer
    assert isinstance(answer, dict), answer
    assert answer["status"] == expected and isinstance(answer["error"], str)
    assert "Traceback" not in answer["error"] and 'File "' not in answer["error"]
    if field is not None:
        assert answer.get("field") == field, answer
    return answer


@pytest.mark.parametrize(
    "raw",
    [b'{"text": "a good film"', b"", b"text=a good film", b'{"text": NaN}', b"[" * 100_000],
    ids=["unclosed", "empty", "form", "nan", "deep"],
)
def test_malformed_json(still_serving: Server, raw: bytes) -> None:
    status, answer = still_serving.request("POST", "/v1/clf/predict", raw=raw)
    refused(answer, status, 422, "body")


def test_binary_junk_body(still_serving: Server) -> None:
    junk = bytes(range(256)) * 64
    status, answer = still_serving.request("POST", "/v1/clf/predict", raw=junk)
    assert "not UTF-8" in refused(answer, status, 422, "body")["error"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"text": 5}, "text", "an integer"),
        ({"text": ["a good film", 3]}, "text[1]", "an integer"),
        ({"text": None}, "text", "null"),
        ({"text": {"a": 1}}, "text", "an object"),
        ({}, "text", "missing"),
        ({"text": "good", "k": "2"}, "k", "a string"),
        ({"text": "good", "k": True}, "k", "a boolean"),
        ({"text": "good", "k": 0}, "k", "at least 1"),
        ({"text": "good", "k": -2}, "k", "at least -1"),
        ({"text": "good", "threshold": 2}, "threshold", "from 0.0 to 1.0"),
        ({"text": "good", "threshold": "high"}, "threshold", "a string"),
        ({"text": "good", "txt": "typo"}, "txt", "unknown field"),
    ],
)
def test_wrong_types_name_the_field(
    still_serving: Server, body: dict, field: str, words: str
) -> None:
    status, answer = still_serving.post("/v1/clf/predict", body)
    assert words in refused(answer, status, 422, field)["error"]


def test_a_json_value_that_is_not_an_object(still_serving: Server) -> None:
    status, answer = still_serving.post("/v1/clf/predict", ["a good film"])
    assert "JSON object" in refused(answer, status, 422, "body")["error"]


def test_lm_and_w2v_fields(still_serving: Server) -> None:
    status, answer = still_serving.post("/v1/lm/generate", {"prompt": "the", "max_tokens": 10**6})
    assert refused(answer, status, 413, "max_tokens")["limit"] == "max_tokens"
    status, answer = still_serving.post("/v1/lm/generate", {"prompt": "the", "temperature": -1})
    refused(answer, status, 422, "temperature")
    status, answer = still_serving.post("/v1/vec/neighbors", {"word": "good", "k": 10**9})
    refused(answer, status, 422, "k")
    status, answer = still_serving.post("/v1/vec/vector", {"word": ["good", 1]})
    refused(answer, status, 422, "word[1]")


def test_a_10_mb_body(still_serving: Server) -> None:
    body = json.dumps({"text": "a" * (10 * MB)}).encode()
    status, answer = still_serving.request("POST", "/v1/clf/predict", raw=body)
    answer = refused(answer, status, 413, "body")
    assert answer["limit"] == "max_body_bytes" and "--max-body-bytes" in answer["error"]


def test_a_10_mb_body_without_its_length(still_serving: Server) -> None:
    """Chunked: the size is found while reading, and the body is not kept."""
    conn = http.client.HTTPConnection(HOST, still_serving.port, timeout=60)
    try:
        chunks = (b"x" * 65536 for _ in range(160))
        conn.request("POST", "/v1/clf/predict", body=chunks, encode_chunked=True)
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert refused(answer, response.status, 413, "body")["limit"] == "max_body_bytes"


def test_100000_texts(still_serving: Server) -> None:
    status, answer = still_serving.post("/v1/clf/predict", {"text": ["good"] * 100_000})
    answer = refused(answer, status, 413, "text")
    assert answer["limit"] == "max_texts" and "100000 items" in answer["error"]


def test_a_text_too_long(still_serving: Server) -> None:
    status, answer = still_serving.post("/v1/clf/predict", {"text": ["good", "a" * 10_001]})
    assert refused(answer, status, 413, "text[1]")["limit"] == "max_text_chars"


def test_unknown_run_endpoint_path_and_method(still_serving: Server) -> None:
    status, answer = still_serving.post("/v1/nope/predict", {"text": "good"})
    assert "clf, lm, vec" in refused(answer, status, 404, "run")["error"]
    status, answer = still_serving.post("/v1/clf/generate", {"prompt": "good"})
    assert "/v1/clf/predict" in refused(answer, status, 404, "endpoint")["error"]
    status, answer = still_serving.request("GET", "/v1/clf/predict")
    refused(answer, status, 405)
    status, answer = still_serving.request("GET", "/../../etc/passwd")
    refused(answer, status, 404)


def _raw_exchange(port: int, data: bytes, read: bool = True) -> bytes:
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(data)
        if not read:
            return b""
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                part = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not part:
                break
            received += part
        return received


def test_binary_junk_instead_of_http(still_serving: Server) -> None:
    """Below HTTP: uvicorn answers 400 (or closes the connection); nothing else happens."""
    answer = _raw_exchange(still_serving.port, bytes(range(256)) * 16)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")


def test_clients_that_go_away(still_serving: Server) -> None:
    """Mid-body (10 of 100000 bytes sent), and after a whole request without reading the
    answer: the server drops them and goes on."""
    head = (
        f"POST /v1/clf/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n"
    ).encode()
    _raw_exchange(still_serving.port, head + b'{"text": "', read=False)
    body = json.dumps({"text": ["a good film"] * 500}).encode()
    whole = (
        f"POST /v1/clf/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    for _ in range(5):
        _raw_exchange(still_serving.port, whole + body, read=False)
    time.sleep(0.5)  # let the server see the closed connections
    assert "Traceback" not in still_serving.output()
