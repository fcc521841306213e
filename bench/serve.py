"""Load test of ``ffnlp serve`` on loopback, beside the same server wrapping fastText's model.

    python bench/serve.py [--data ../shared/data] [--mlp runs/sst2_ffnn] [--pooled runs/sst2_pooled]
                          [--requests 20000] [--clients 32] [--batch 64] [--rounds 5] [--quick]

Contenders, each a server process of its own on 127.0.0.1 (one worker, one PyTorch thread):

- ffnlp mlp: ``ffnlp serve`` on the SST-2 MLP run (configs/sst2_ffnn.toml);
- ffnlp pooled: ``ffnlp serve`` on the SST-2 pooled run (configs/sst2_pooled.toml);
- fastText: the same application (:func:`ffnlp.serve.app.build_app`: the same routes, request
  reading, limits, micro-batching, JSON answers) with the run's predict replaced by fastText's
  Python ``predict`` on a list (fasttext-wheel; trained here on SST-2 train: wordNgrams 2, dim
  100, epoch 10, lr 0.5, as bench/classify.py);
- no model: the same application with a predict that answers a constant at once: the server's
  own cost, which the others' server CPU per request is also given above.

A run folder that does not exist is trained first with its config on SST-2 (--data). The four
servers are started together (an idle one costs nothing) and measured one at a time. For each
request shape (one text; ``--batch`` texts, 64 by default), each contender gets a warm-up of a
tenth of ``--requests``, then ``--requests`` requests (texts of SST-2 test, in turn) from
``--clients`` concurrent clients on keep-alive connections, cut into ``--rounds`` rounds: in a
round each contender takes its share in turn, the order turned by one from round to round, so
that the load other processes put on the machine, which changes from minute to minute, falls on
every contender alike; the ratios are given over all rounds and round by round (with their
median). The bench stops by itself. Figures:
requests/s and texts/s, p50 / p99 latency (send to last byte), errors (any answer but a 200 with
the right number of predictions, or a failed connection), the server's resident memory after the
warm-up and at the end (VmRSS; for ffnlp also the part mapped from files: the shared weights),
and the server process's CPU time (user + system, every thread) per measured request: what the
server spends, which other load on the machine inflates less than it does throughput.
The client is this process (asyncio on uvloop where installed, as the serve extra does; HTTP/1.1
by hand), on the same machine, so what it spends is CPU the servers do not get: on a shared machine
with 2 cores every absolute figure is noise-laden; the ratios ffnlp / fastText, measured in the
same run, are the figures. ``--quick``: 2,000 requests, 8 clients. Results go to
bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

HOST = "127.0.0.1"


# -- the fastText server (this script with --serve-fasttext) ------------------------------------
class FastTextModel:
    """fastText's model with the library's ``predict(texts, k, threshold)`` signature."""

    def __init__(self, path: str):
        import fasttext

        self.model = fasttext.load_model(path)
        self.labels = [label.removeprefix("__label__") for label in self.model.labels]

    def predict(self, texts: list[str], k: int = 1, threshold: float | None = None) -> list[Any]:
        lines = [t.replace("\n", " ") for t in texts]
        labels, probs = self.model.predict(lines, k=k, threshold=threshold or 0.0)
        return [
            [(lab.removeprefix("__label__"), float(p)) for lab, p in zip(ls, ps, strict=True)]
            for ls, ps in zip(labels, probs, strict=True)
        ]


class ConstantModel:
    """A model that answers every text with one label at once: what is left of a server's cost
    a request without any prediction (HTTP, ASGI, JSON, the micro-batch's hand-over)."""

    labels = ["0", "1"]

    def predict(self, texts: list[str], k: int = 1, threshold: float | None = None) -> list[Any]:
        return [[("1", 0.5)] for _ in texts]


def serve_fasttext(model_path: str, port: int) -> None:
    """The application of ffnlp serve with one run whose model is fastText's (or, with the
    path ``constant``, :class:`ConstantModel`)."""
    import uvicorn

    from ffnlp.serve.app import build_app
    from ffnlp.serve.limits import Limits
    from ffnlp.serve.runs import ServedRun

    class FastTextRun(ServedRun):
        def __init__(self, name: str, path: Path, limits: Limits):  # no ffnlp run to load
            from concurrent.futures import ThreadPoolExecutor

            self.name, self.path, self.limits, self.task = name, path, limits, "classify"
            constant = str(path) == "constant"
            self.model = ConstantModel() if constant else FastTextModel(str(path))
            self.mapped = False
            self.fast = None  # no ffnlp classifier: every batch goes to the model's predict
            self.executor = ThreadPoolExecutor(max_workers=1)
            self.batcher = self._batcher(self._predict_batch)
            self.handlers = {"predict": self.predict}

        def describe(self) -> dict[str, Any]:
            return {
                "name": self.name,
                "task": "classify",
                "type": "fasttext",
                "labels": self.model.labels,
            }

    limits = Limits()
    name = "constant" if model_path == "constant" else "fasttext"
    app = build_app([FastTextRun(name, Path(model_path), limits)], limits)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


# -- preparing ---------------------------------------------------------------------------------
def read_sst2(path: Path) -> tuple[list[str], list[str]]:
    labels, texts = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            label, text = line.split(" ", 1)
            labels.append(label)
            texts.append(text)
    return texts, labels


def train_run(config: str, run: Path, sst2: Path) -> None:
    print(f"training {run} with {config}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "ffnlp", "classify", "train", "--config", str(ROOT / config),
         "--train", str(sst2 / "stsa.binary.train"), "--dev", str(sst2 / "stsa.binary.dev"),
         "--test", str(sst2 / "stsa.binary.test"), "--out", str(run), "--quiet"],
        check=True,
    )  # fmt: skip


def train_fasttext(sst2: Path, folder: Path) -> Path:
    import fasttext

    texts, labels = read_sst2(sst2 / "stsa.binary.train")
    train = folder / "sst2.train.ft"
    train.write_text(
        "".join(f"__label__{y} {t}\n" for t, y in zip(texts, labels, strict=True)), encoding="utf-8"
    )
    model = fasttext.train_supervised(
        str(train), wordNgrams=2, dim=100, epoch=10, lr=0.5, thread=1, seed=0, verbose=0
    )
    path = folder / "sst2.bin"
    model.save_model(str(path))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def memory(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile of ``pid`` in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(command: list[str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("wb") as handle:
        process = subprocess.Popen([*command, "--port", str(port)], stdout=handle, stderr=handle)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the server did not start: {log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the load ------------------------------------------------------------------------------------
async def load(
    port: int, path: str, bodies: list[bytes], expect: int, requests: int, clients: int
) -> dict[str, Any]:
    """``requests`` POSTs of ``bodies`` (in turn) from ``clients`` keep-alive connections."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for i in counter:
                body = bodies[i % len(bodies)]
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                t0 = time.perf_counter()
                writer.write(head + body)
                try:
                    headers = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in headers.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    payload = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    reader, writer = await asyncio.open_connection(HOST, port)
                    continue
                latencies.append(time.perf_counter() - t0)
                if not headers.startswith(b"HTTP/1.1 200") or _answers(payload) != expect:
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "requests": requests,
        "seconds": seconds,
        "requests_per_second": requests / seconds,
        "texts_per_second": requests * expect / seconds,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
        "errors": errors,
        "latencies_ms": lat,
    }


def run_client(work: Any) -> Any:
    """Run the client's coroutine on uvloop's event loop where it is installed (it spends about
    a third less CPU a request than asyncio's own, which the servers then have), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


def _answers(payload: bytes) -> int:
    try:
        answer = json.loads(payload)
    except ValueError:
        return -1
    if "results" in answer:
        return sum(1 for r in answer["results"] if r.get("label") is not None)
    return 1 if answer.get("label") is not None else 0


def forward_passes(port: int) -> int:
    """The forward passes the server made so far (its /health), over all its runs."""
    with socket.create_connection((HOST, port), timeout=10) as conn:
        conn.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    body = raw.split(b"\r\n\r\n", 1)[1]
    return sum(json.loads(body)["batches"].values())


def bodies_of(texts: list[str], size: int) -> list[bytes]:
    if size == 1:
        return [json.dumps({"text": t}).encode() for t in texts]
    return [
        json.dumps({"text": texts[i : i + size]}).encode()
        for i in range(0, len(texts) - size + 1, size)
    ]


def bench_shape(
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]],
    size: int,
    texts: list[str],
    args: Any,
) -> list[dict[str, Any]]:
    """Every contender on requests of ``size`` texts: a warm-up each, then ``args.rounds``
    rounds in which each contender takes its share of the requests in turn (the order turned
    round by one each round), so that a change of load on the machine falls on all of them."""
    bodies = bodies_of(texts, size)
    names = list(servers)
    warm_errors: dict[str, int] = {}
    after_warmup: dict[str, dict[str, int]] = {}
    for name, (process, port, path) in servers.items():
        warm = run_client(
            load(port, path, bodies, size, max(args.requests // 10, args.clients), args.clients)
        )
        warm_errors[name] = warm["errors"]
        after_warmup[name] = memory(process.pid)
    share = max(args.requests // args.rounds, args.clients)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            process, port, path = servers[name]
            cpu_before = cpu_seconds(process.pid)
            batches_before = forward_passes(port)
            result = run_client(load(port, path, bodies, size, share, args.clients))
            result["server_cpu_s"] = cpu_seconds(process.pid) - cpu_before
            result["passes"] = forward_passes(port) - batches_before
            rounds[name].append(result)
    rows = []
    for name in names:
        process = servers[name][0]
        done = rounds[name]
        requests = sum(d["requests"] for d in done)
        seconds = sum(d["seconds"] for d in done)
        lat = np.concatenate([d["latencies_ms"] for d in done])
        at_end = memory(process.pid)
        row = {
            "contender": name,
            "texts_per_request": size,
            "clients": args.clients,
            "requests": requests,
            "seconds": seconds,
            "requests_per_second": requests / seconds,
            "texts_per_second": requests * size / seconds,
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "errors": sum(d["errors"] for d in done),
            "warmup_errors": warm_errors[name],
            "rss_after_warmup_kb": after_warmup[name]["VmRSS"],
            "rss_at_end_kb": at_end["VmRSS"],
            "rss_file_at_end_kb": at_end.get("RssFile"),
            "rss_growth": at_end["VmRSS"] / after_warmup[name]["VmRSS"] - 1,
            "server_cpu_us_per_request": sum(d["server_cpu_s"] for d in done) / requests * 1e6,
            "requests_per_forward_pass": requests / max(sum(d["passes"] for d in done), 1),
            "round_requests_per_second": [d["requests_per_second"] for d in done],
        }
        rows.append(row)
        print(
            f"{name:14s} {size:3d} text(s)/request: {row['requests_per_second']:8.0f} req/s "
            f"{row['texts_per_second']:9.0f} texts/s  p50 {row['p50_ms']:6.2f} ms  "
            f"p99 {row['p99_ms']:6.2f} ms  errors {row['errors'] + row['warmup_errors']}  "
            f"server CPU {row['server_cpu_us_per_request']:5.0f} us/request  "
            f"{row['requests_per_forward_pass']:5.1f} requests/forward pass  RSS "
            f"{row['rss_after_warmup_kb'] / 1024:.0f} -> {row['rss_at_end_kb'] / 1024:.0f} MiB",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--mlp", type=Path, default=ROOT / "runs" / "sst2_ffnn")
    ap.add_argument("--pooled", type=Path, default=ROOT / "runs" / "sst2_pooled")
    ap.add_argument("--requests", type=int, default=20_000, help="requests per measurement")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients")
    ap.add_argument("--batch", type=int, default=64, help="texts per request of the second shape")
    ap.add_argument(
        "--rounds", type=int, default=5, help="rounds the requests of a measurement are cut into"
    )
    ap.add_argument("--quick", action="store_true", help="2,000 requests from 8 clients")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "serve.json")
    ap.add_argument("--serve-fasttext", help=argparse.SUPPRESS)  # internal: the fastText server
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_fasttext:
        serve_fasttext(args.serve_fasttext, args.port)
        return
    if args.quick:
        args.requests, args.clients = 2000, 8
    sst2 = args.data / "sst2"
    for config, run in (
        ("configs/sst2_ffnn.toml", args.mlp),
        ("configs/sst2_pooled.toml", args.pooled),
    ):
        if not run.exists():
            train_run(config, run, sst2)
    texts, _ = read_sst2(sst2 / "stsa.binary.test")
    print(
        f"{args.requests} requests per measurement from {args.clients} clients on {HOST}; "
        f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
        "(a shared machine: absolute figures are noisy, compare the ratios)",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ft_model = train_fasttext(sst2, folder)
        contenders = [
            ("ffnlp mlp", [sys.executable, "-m", "ffnlp", "serve", str(args.mlp), "--threads", "1"],
             f"/v1/{args.mlp.name}/predict"),
            ("ffnlp pooled", [sys.executable, "-m", "ffnlp", "serve", str(args.pooled), "--threads", "1"],
             f"/v1/{args.pooled.name}/predict"),
            ("fastText", [sys.executable, __file__, "--serve-fasttext", str(ft_model)],
             "/v1/fasttext/predict"),
            ("no model", [sys.executable, __file__, "--serve-fasttext", "constant"],
             "/v1/constant/predict"),
        ]  # fmt: skip
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
        try:
            for name, command, path in contenders:  # all up at once; one is loaded at a time
                process, port = start(command, folder / f"{name.replace(' ', '_')}.log")
                servers[name] = (process, port, path)
            for size in (1, args.batch):
                rows += bench_shape(servers, size, texts, args)
        finally:
            for process, _, _ in servers.values():
                stop(process)
    by = {(r["contender"], r["texts_per_request"]): r for r in rows}
    print("\nffnlp / fastText throughput (requests/s), same run: all rounds together, and each")
    print("round's (the contenders in turn within a round), with their median:")
    for name in ("ffnlp mlp", "ffnlp pooled"):
        for size in (1, args.batch):
            mine, peer = by[(name, size)], by[("fastText", size)]
            per_round = [
                a / b
                for a, b in zip(
                    mine["round_requests_per_second"],
                    peer["round_requests_per_second"],
                    strict=True,
                )
            ]
            mine["round_ratios"] = per_round
            print(
                f"  {name:14s} {size:3d} text(s): "
                f"{mine['requests_per_second'] / peer['requests_per_second']:.2f}x   rounds "
                + " ".join(f"{x:.2f}" for x in per_round)
                + f"   median {float(np.median(per_round)):.2f}x"
            )
    print("server CPU time per request, fastText / ffnlp (above 1: ffnlp's server spends less):")
    for name in ("ffnlp mlp", "ffnlp pooled"):
        ratios = [
            f"{size} text(s): {by[('fastText', size)]['server_cpu_us_per_request'] / by[(name, size)]['server_cpu_us_per_request']:.2f}x"
            for size in (1, args.batch)
        ]
        print(f"  {name:14s} " + "   ".join(ratios))
    print("server CPU per request above the server without a model (its predict's share), us:")
    for name in ("ffnlp mlp", "ffnlp pooled", "fastText"):
        shares = [
            f"{size} text(s): {by[(name, size)]['server_cpu_us_per_request'] - by[('no model', size)]['server_cpu_us_per_request']:6.1f}"
            for size in (1, args.batch)
        ]
        print(f"  {name:14s} " + "   ".join(shares))
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows": rows, "requests": args.requests, "clients": args.clients}, indent=2)
    )
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
