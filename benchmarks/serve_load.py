"""Load benchmark of the web server (run by hand, not in CI).

    python benchmarks/serve_load.py TRAINED_REPO [--clients 50] [--requests 20] [--files-per-request 1]

TRAINED_REPO is a copy of the repository after `dvc repro` (its models/, metrics/test.json and
params.yaml are used). The script starts `python -m stages.serve` there, with this checkout's code,
on a free port of 127.0.0.1; then CLIENTS concurrent clients (httpx, async) each send REQUESTS
requests of real neckline photos from ../shared/data/necklines, one after the other, in two rounds.
Prints one JSON object: errors (must be 0), latency p50/p95, images/s per round, and the server's
resident memory (VmRSS from /proc) after start, after a warm-up round and after each load round,
and its peak during the load: from the warm-up on it must stay flat.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
NECKLINES = REPO.parent / "shared/data/necklines"
STARTUP_SECONDS = 300


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid):
    """The process's resident memory now (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def start_server(repo, log, *args):
    """`python -m stages.serve` in repo with this checkout's code (-P: not the code in repo/stages)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-P", "-m", "stages.serve", "--port", str(port), *args],
                               cwd=repo, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            last = Path(log.name).read_text().strip().splitlines()[-3:]
            raise SystemExit("the server did not start:\n" + "\n".join(last) + f"\n(whole log: {log.name})")
        time.sleep(0.5)


async def load(url, photos, clients, requests, files_per_request):
    """clients concurrent clients x requests sequential requests each: (latencies, errors, seconds)."""
    latencies, errors = [], []

    async def client(number, session):
        for request in range(requests):
            first = (number * requests + request) * files_per_request
            chosen = [photos[(first + k) % len(photos)] for k in range(files_per_request)]
            files = [("files", (name, data)) for name, data in chosen]
            start = time.perf_counter()
            try:
                response = await session.post(f"{url}/predict", files=files)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                elif len(response.json()) != files_per_request:
                    errors.append(f"{len(response.json())} records for {files_per_request} photos")
            except httpx.HTTPError as err:
                errors.append(f"{type(err).__name__}: {err}")
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=600) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(number, session) for number in range(clients)))
        seconds = time.perf_counter() - start
    return latencies, errors, seconds


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measured_round(url, pid, photos, args):
    """One load round with the server's peak memory sampled while it runs."""
    peak, running = [0.0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    latencies, errors, seconds = asyncio.run(load(url, photos, args.clients, args.requests, args.files_per_request))
    running[0] = False
    sampler.join()
    images = len(latencies) * args.files_per_request
    return {"requests": len(latencies), "errors": len(errors), "first_errors": errors[:3],
            "latency_p50_s": round(percentile(latencies, 50), 3), "latency_p95_s": round(percentile(latencies, 95), 3),
            "latency_max_s": round(max(latencies), 3), "seconds": round(seconds, 1),
            "images_per_second": round(images / seconds, 1), "rss_peak_mb": peak[0], "rss_after_mb": rss_mb(pid)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path, help="a copy of the repository after `dvc repro`")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--files-per-request", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="load rounds after the warm-up (memory must stay flat)")
    parser.add_argument("--model", help="--model for the server (default: its own choice)")
    args = parser.parse_args()
    if not (args.repo / "models").is_dir():
        raise SystemExit(f"{args.repo} has no models/: run `dvc repro` there first")

    photos = [(path.name, path.read_bytes()) for path in sorted(NECKLINES.rglob("*.jpg"))]
    with tempfile.NamedTemporaryFile(prefix="serve_load-", suffix=".log", delete=False) as log:
        process, url = start_server(args.repo.resolve(), log, *(["--model", args.model] if args.model else []))
        try:
            model = httpx.get(f"{url}/model").json()
            started = rss_mb(process.pid)
            warm = asyncio.run(load(url, photos, args.clients, 1, args.files_per_request))
            warmed = rss_mb(process.pid)
            rounds = [measured_round(url, process.pid, photos, args) for _ in range(args.rounds)]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)

    print(json.dumps({
        "cpu": cpu_model(), "cores": os.cpu_count(), "model": f"{model['title']} ({model['kind']})",
        "image_size": model["preprocessing"]["image_size"], "photos": len(photos),
        "clients": args.clients, "requests_per_client": args.requests, "files_per_request": args.files_per_request,
        "warm_up_errors": len(warm[1]), "rss_after_start_mb": started, "rss_after_warm_up_mb": warmed,
        "rounds": rounds, "errors": len(warm[1]) + sum(r["errors"] for r in rounds),
        "rss_growth_after_warm_up_mb": round(rounds[-1]["rss_after_mb"] - warmed, 1), "server_log": log.name,
    }, indent=2))


if __name__ == "__main__":
    main()
