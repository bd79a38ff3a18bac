"""The cluster's orchestration cost: simulated live feeds through the Ray Serve model deployment.

The model deployment of `listen --cluster` (streamlid/cluster/serving.py) serves the stand-in
model of fixed service time (cluster/standin.py: `--service-s` + `--per-window-s` x batch per
forward pass; it sleeps, so the figures show Ray and Serve, not this machine's cores). Simulated
ingest actors run what a real one runs after its front ends: streamlid's own WindowQueues and
Worker, with the model behind a RemoteModel (one Serve request per window, batched by Serve
across every actor; no answer awaited past `--max-lag`). Only the sources, gate and front ends
are replaced by a ticker that cuts each feed's 3 s window every `--hop` seconds on the feed's own
schedule and, as a live front end does, holds it while the feed's previous window is still with
the model (the hop stretches instead of windows piling up). Reported per cell (replicas x
feeds): windows answered per second against those offered, answer latency (answer time - window
formed time) median and p95, the effective hop, and what the worker skipped (a window whose
answer would come out later than `--max-lag`, or that got none in time), and the CPU time per
window answered of the ingest actors, the replicas and Ray itself (GCS, raylet, Serve
controller, this driver); first, the overhead of the Serve hop per window against a local call
of the same stand-in.

Ray runs locally, every process bound to 127.0.0.1, and is stopped at the end and on Ctrl-C.

    python benchmarks/bench_cluster.py --quick
    python benchmarks/bench_cluster.py --json figures.json          # the full grid, ~10 min
    python benchmarks/bench_cluster.py --replicas 1 --feeds 2 --seconds 2 --warmup-s 0.5
    # the real classifier instead of the stand-in (one replica per GPU where there are GPUs):
    python benchmarks/bench_cluster.py --model mms-lid-256 --random-weights --device cuda \\
        --replicas 1 --feeds 100,200,400,800 --serve-batch 64 --batch 32 --num-cpus 16
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlid.bench import percentile  # noqa: E402
from streamlid.config import Config, cluster_settings, load_config  # noqa: E402

RATE_HZ = 16000
WINDOW_S = 3.0
FULL_GRID_REPLICAS = "1,2,4"
FULL_GRID_FEEDS = "10,50,100,200,400"
STANDIN_FACTORY = "streamlid.cluster.standin:SleepModel"
CLASSIFIER_FACTORY = "streamlid.classifier:Classifier"
STANDIN_LABELS_N = 256  # as many as mms-lid-256: the answers cross the wire at full size
WARM_CALLS_N = 5


RUN_MARK = "STREAMLID_BENCH_CLUSTER_RUN"  # in the environment of every process Ray starts
CPU_ROLES = (("ray::ServeReplica", "replicas"), ("ray::FeedGroup", "ingest"))


def ray_cpu_s(mark: str) -> dict[str, float] | None:
    """CPU seconds so far of every live process carrying `RUN_MARK=mark` (this run's Ray and
    this driver), by role: the model replicas, the ingest actors, and Ray itself (GCS,
    raylet, Serve controller, this driver). None where there is no /proc to read."""
    proc = Path("/proc")
    if not (proc / "self" / "environ").exists():
        return None
    needle = f"{RUN_MARK}={mark}".encode()
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    totals = {"replicas": 0.0, "ingest": 0.0, "ray": 0.0}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile, or not ours
            continue
        role = next((r for prefix, r in CPU_ROLES if cmdline.startswith(prefix)), "ray")
        totals[role] += (int(fields[11]) + int(fields[12])) * tick_s  # utime + stime
    return totals


class LiveClock:
    """Stands in for a feed's ring buffer: its write index is the wall clock since the start,
    so the worker's "live edge" and lag are those of a live feed."""

    def __init__(self, t0: float) -> None:
        self._t0 = t0

    @property
    def write_index(self) -> int:
        return int((time.monotonic() - self._t0) * RATE_HZ)


class SimulatedSource:
    """What the worker asks of a source: live, its rate and its name."""

    live = True
    sample_rate_hz = RATE_HZ

    def __init__(self, name: str) -> None:
        self.name = name


class FeedGroup:
    """One simulated ingest actor: N feeds' windows through the real WindowQueues, Worker and
    RemoteModel. A Ray actor (see `feed_group_actor`); `run` blocks for the run's length."""

    def __init__(self, feeds_n: int, group_n: int, config: Config, payload_n: int) -> None:
        from streamlid.cluster.remote import RemoteModel
        from streamlid.cluster.serving import model_handle

        handle = model_handle()
        labels = tuple(handle.labels.remote().result())
        self._model = RemoteModel(handle, labels, timeout_s=config.max_lag)
        self._config = config
        self._names = [f"g{group_n}-feed{i}" for i in range(feeds_n)]
        rng = np.random.default_rng(group_n)
        self._phases_s = rng.uniform(0.0, config.hop, feeds_n)
        # One payload for every window: its bytes still cross the wire each time.
        self._samples = (0.1 * rng.standard_normal(payload_n)).astype(np.float32)

    def ready(self) -> bool:
        return True

    def run(self, start_at: float, warmup_s: float, measure_s: float) -> dict:
        """Feeds cut windows from `start_at` (wall clock) for warmup + measure seconds; the
        figures count windows formed in the measured part; returns once every answer is in."""
        from streamlid.events import Prediction
        from streamlid.smoothing import Smoother
        from streamlid.stream import StreamState
        from streamlid.windowqueue import WindowQueues
        from streamlid.worker import Worker

        cfg = self._config
        t0 = time.monotonic() + (start_at - time.time())
        measured = (warmup_s, warmup_s + measure_s)  # stream seconds since t0
        latencies_s: list[float] = []
        errors: list[str] = []

        def publish(event) -> None:  # the worker's thread: appends only
            if isinstance(event, Prediction) and measured[0] <= event.t_end_s < measured[1]:
                latencies_s.append(event.latency_s)

        clock = LiveClock(t0)
        streams = {
            name: StreamState(name, SimulatedSource(name), clock, Smoother(len(self._model.labels)))
            for name in self._names
        }
        queues = WindowQueues()
        capacity_n = max(1, round(cfg.max_lag / cfg.hop))  # as the engine sizes a live queue
        for name in self._names:
            queues.add_stream(name, capacity_n, live=True)
            streams[name].next_hop_s = cfg.hop
        stop = threading.Event()
        worker = Worker(self._model, streams, queues, cfg, publish, stop, errors.append)
        ticker = Ticker(self._names, self._phases_s, queues, streams, t0, self._samples, stop)
        worker.start()
        try:
            ticker.run_until(measured[0])
            skipped_before = sum(s.skipped_windows for s in streams.values())
            remote_before = asdict(self._model.counts)
            ticker.run_until(measured[1])
            for name in self._names:
                queues.close_stream(name)  # the worker ends once every window is answered
            if not worker.join(cfg.max_lag + 30.0):
                errors.append("the worker did not finish")
        finally:
            worker.stop()
            worker.join(5.0)
        formed = ticker.formed_in(measured)
        counts = {k: v - remote_before[k] for k, v in asdict(self._model.counts).items()}
        return {
            "formed": formed,
            "answered": len(latencies_s),
            "latencies_s": latencies_s,
            "skipped": sum(s.skipped_windows for s in streams.values()) - skipped_before,
            "held": ticker.held_in(measured),
            # RemoteModel's counts from the start of the measured part to the end
            "timed_out": counts["timed_out_n"],
            "failed": counts["failed_n"],
            "retried": counts["retried_n"],
            "errors": errors,
        }


class Ticker:
    """The feeds' front ends: each cuts a window when its hop is due, and holds it (cut later,
    from the freshest audio) while the feed's previous window is still queued or with the
    model, as streamlid's live front end does. Runs on the caller's thread."""

    POLL_S = 0.005  # how often a held window checks whether its feed is free again

    def __init__(self, names, phases_s, queues, streams, t0, samples, stop) -> None:
        self._queues = queues
        self._streams = streams
        self._t0 = t0
        self._samples = samples
        self._stop = stop
        self._due = [(float(p), name) for p, name in zip(phases_s, names, strict=True)]
        heapq.heapify(self._due)
        self._held: set[str] = set()
        self._formed_s: list[float] = []  # stream time of every window cut
        self._held_s: list[float] = []  # stream time at which a due window had to wait

    def run_until(self, end_s: float) -> None:
        while not self._stop.is_set():
            now_s = time.monotonic() - self._t0
            for name in [n for n in self._held if self._queues.idle(n)]:
                self._held.discard(name)
                self._cut(name, now_s)
            while self._due and self._due[0][0] <= now_s:
                _, name = heapq.heappop(self._due)
                if self._queues.idle(name):
                    self._cut(name, now_s)
                else:
                    self._held.add(name)
                    self._held_s.append(now_s)
            if now_s >= end_s:
                return
            next_s = min(end_s, self._due[0][0] if self._due else end_s)
            wait_s = next_s - now_s
            if self._held:
                wait_s = min(wait_s, self.POLL_S)
            time.sleep(max(0.0, wait_s))

    def _cut(self, name: str, now_s: float) -> None:
        from streamlid.windows import Window

        state = self._streams[name]
        window = Window(
            t_start_s=now_s - WINDOW_S,
            t_end_s=now_s,
            samples=self._samples,
            segment_start_s=0.0,
            hop_s=state.next_hop_s,
        )
        self._queues.put(name, window, self._stop)
        self._formed_s.append(now_s)
        heapq.heappush(self._due, (now_s + state.next_hop_s, name))

    def formed_in(self, span: tuple[float, float]) -> int:
        return sum(span[0] <= t < span[1] for t in self._formed_s)

    def held_in(self, span: tuple[float, float]) -> int:
        return sum(span[0] <= t < span[1] for t in self._held_s)


def feed_group_actor():
    import ray

    # No CPU reserved: the feeds sleep most of the time, and a reservation would cap how many
    # groups a small machine holds beside the replicas.
    return ray.remote(num_cpus=0)(FeedGroup)


def model_spec(args):
    from streamlid.cluster.serving import ModelSpec

    if args.model is None:
        kwargs = {
            "labels_n": STANDIN_LABELS_N,
            "service_s": args.service_s,
            "per_window_s": args.per_window_s,
        }
        return ModelSpec(factory=STANDIN_FACTORY, kwargs=kwargs)
    model = args.model
    if Path(model).is_dir():  # a folder here: the replicas run elsewhere in the file system
        model = str(Path(model).resolve())
    if args.random_weights:  # the architecture shipped with streamlid, weights made up
        from streamlid.classifier import RANDOM_SHAPES

        model = str(RANDOM_SHAPES[args.model])
    kwargs = {
        "model": model,
        "device": args.device,
        "dtype": args.dtype,
        "random_weights": args.random_weights,
    }
    return ModelSpec(factory=CLASSIFIER_FACTORY, kwargs=kwargs)


def bench_config(args, replicas_n: int, serve_wait_s: float | None = None) -> Config:
    """The run's Config, as `listen --cluster` would build it from these options."""
    wait_s = args.serve_batch_wait_s if serve_wait_s is None else serve_wait_s
    return load_config(
        overrides={
            "cluster": "auto",
            "hop": args.hop,
            "max_lag": args.max_lag,
            "adaptive_hop": False,  # every feed at the hop asked: the offered load is known
            "batch": args.batch,
            "replicas": str(replicas_n),
            "serve_batch": args.serve_batch,
            "serve_batch_wait_ms": 1000.0 * wait_s,
            "replica_cpus": args.replica_cpus,
            "ui": "none",
        }
    )


def deploy(args, spec, config: Config):
    from streamlid.cluster.serving import deploy_model

    quiet_serve_logs(args.verbose)
    handle = deploy_model(spec, cluster_settings(config))
    quiet_serve_logs(args.verbose)
    return handle


def run_cell(args, spec, replicas_n: int, feeds_n: int) -> dict:
    import ray

    config = bench_config(args, replicas_n)
    groups_n = max(1, min(feeds_n, -(-feeds_n // args.feeds_per_actor)))
    shares = [feeds_n // groups_n + (i < feeds_n % groups_n) for i in range(groups_n)]
    actor = feed_group_actor()
    groups = [actor.remote(n, i, config, args.payload_samples) for i, n in enumerate(shares)]
    try:
        ray.get([g.ready.remote() for g in groups], timeout=120)
        start_at = time.time() + 1.0
        refs = [g.run.remote(start_at, args.warmup_s, args.seconds) for g in groups]
        time.sleep(max(0.0, start_at + args.warmup_s - time.time()))
        cpu_before = ray_cpu_s(args.run_mark)
        results = ray.get(refs, timeout=args.warmup_s + args.seconds + args.max_lag + 120)
        cpu_after = ray_cpu_s(args.run_mark)
    finally:
        for g in groups:
            ray.kill(g)
    row = summarise(args, replicas_n, feeds_n, groups_n, results)
    if cpu_before is not None and cpu_after is not None and row["answered"]:
        # Until every answer is in: the drain after the measured part serves its windows.
        row["cpu_ms_per_window"] = {
            role: round(1000 * (cpu_after[role] - cpu_before[role]) / row["answered"], 2)
            for role in cpu_after
        }
    return row


def summarise(args, replicas_n: int, feeds_n: int, groups_n: int, results: list[dict]) -> dict:
    listed = ("latencies_s", "errors")
    total = {key: sum(r[key] for r in results) for key in results[0] if key not in listed}
    latencies = [x for r in results for x in r["latencies_s"]]
    errors = [e for r in results for e in r["errors"]]
    formed = total["formed"]
    return {
        "replicas": replicas_n,
        "feeds": feeds_n,
        "ingest_actors": groups_n,
        "offered_per_s": round(feeds_n / args.hop, 1),
        "windows_per_s": round(total["answered"] / args.seconds, 1),
        "latency_p50_s": round(statistics.median(latencies), 4) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 95), 4) if latencies else None,
        "latency_max_s": round(max(latencies), 4) if latencies else None,
        "effective_hop_s": round(feeds_n * args.seconds / formed, 3) if formed else None,
        **total,
        "errors": errors,
    }


def measure_overhead(args, spec, wait_s: float) -> dict:
    """One window at a time: the stand-in called here against the same through the
    RemoteModel and Serve (one replica), with the given batch wait (a lone window waits that
    long for company before its pass)."""
    from streamlid.cluster.remote import RemoteModel

    handle = deploy(args, spec, bench_config(args, 1, serve_wait_s=wait_s))
    labels = tuple(handle.labels.remote().result())
    remote = RemoteModel(handle, labels, timeout_s=60.0)
    local = spec.build()
    window = np.zeros(args.payload_samples, np.float32)
    for _ in range(WARM_CALLS_N):
        remote.classify([window])
    local_s, serve_s = [], []
    for _ in range(args.overhead_calls):
        started = time.perf_counter()
        local.classify([window])
        local_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        remote.classify([window])
        serve_s.append(time.perf_counter() - started)
    over = {
        "calls": args.overhead_calls,
        "payload_samples": args.payload_samples,
        "batch_wait_s": wait_s,
        "local_p50_s": round(statistics.median(local_s), 5),
        "local_p95_s": round(percentile(local_s, 95), 5),
        "serve_p50_s": round(statistics.median(serve_s), 5),
        "serve_p95_s": round(percentile(serve_s, 95), 5),
        "overhead_p50_s": round(statistics.median(serve_s) - statistics.median(local_s), 5),
        "overhead_p95_s": round(percentile(serve_s, 95) - percentile(local_s, 95), 5),
    }
    f = {key: ms(value, 1) for key, value in over.items() if key.endswith("_s")}
    print(
        f"Serve hop, one window at a time ({over['calls']} calls, {over['payload_samples']} "
        f"float32 samples, batch wait {wait_s:g} s): local {f['local_p50_s']} / "
        f"{f['local_p95_s']} ms, through RemoteModel + Serve {f['serve_p50_s']} / "
        f"{f['serve_p95_s']} ms (median / p95): overhead {f['overhead_p50_s']} / "
        f"{f['overhead_p95_s']} ms",
        flush=True,
    )
    return over


def ms(seconds: float | None, decimals: int = 0) -> str:
    return "-" if seconds is None else f"{1000 * seconds:.{decimals}f}"


def quiet_serve_logs(verbose: bool) -> None:
    """Serve sets up its own logger when it starts; keep only its errors unless asked."""
    if not verbose:
        logging.getLogger("ray.serve").setLevel(logging.ERROR)


def parse_counts(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise SystemExit(f"--{name} {text!r}: give whole numbers from 1, comma-separated.")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Config()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", default=FULL_GRID_REPLICAS, help="model replicas, e.g. 1,2,4")
    p.add_argument("--feeds", default=FULL_GRID_FEEDS, help="simulated live feeds, e.g. 10,400")
    p.add_argument("--quick", action="store_true", help="replicas 1,2 x feeds 10,100, 5 s each")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per cell")
    p.add_argument("--warmup-s", type=float, default=3.0, help="unmeasured seconds before each")
    p.add_argument("--hop", type=float, default=1.0, help="seconds between a feed's windows")
    p.add_argument("--max-lag", type=float, default=defaults.max_lag)
    p.add_argument("--service-s", type=float, default=0.02, help="stand-in: seconds per pass")
    p.add_argument("--per-window-s", type=float, default=0.004, help="stand-in: s per window")
    p.add_argument("--serve-batch", type=int, default=32, help="@serve.batch max_batch_size")
    p.add_argument("--serve-batch-wait-s", type=float, default=0.02, help="its wait timeout")
    p.add_argument(
        "--batch", type=int, default=defaults.batch, help="an ingest worker's windows per call"
    )
    p.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs a replica reserves")
    p.add_argument("--feeds-per-actor", type=int, default=50, help="feeds on one ingest actor")
    p.add_argument(
        "--payload-samples",
        type=int,
        default=int(WINDOW_S * RATE_HZ),
        help="float32 samples sent per window (48000 = 3 s at 16 kHz)",
    )
    p.add_argument("--num-cpus", type=int, default=8, help="logical CPUs of the local Ray")
    p.add_argument("--overhead-calls", type=int, default=200)
    p.add_argument("--no-overhead", action="store_true", help="skip the Serve-hop overhead")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--ray-temp-dir", help="the local Ray's temp folder (keep it short)")
    p.add_argument("--verbose", action="store_true", help="keep Ray's and Serve's own logs")
    real = p.add_argument_group("the real classifier instead of the stand-in")
    real.add_argument("--model", help="a model folder or hub id, as `streamlid --model` takes")
    real.add_argument(
        "--random-weights", action="store_true", help="--model mms-lid-256, weights made up"
    )
    real.add_argument("--device", default="auto")
    real.add_argument("--dtype", default="auto")
    args = p.parse_args(argv)
    if args.quick:
        args.replicas, args.feeds, args.seconds = "1,2", "10,100", 5.0
    args.run_mark = uuid.uuid4().hex
    args.replica_counts = parse_counts(args.replicas, "replicas")
    args.feed_counts = parse_counts(args.feeds, "feeds")
    if args.model is not None and args.payload_samples != int(WINDOW_S * RATE_HZ):
        raise SystemExit("--payload-samples is for the stand-in; the model takes 3 s windows.")
    if args.random_weights and args.model != "mms-lid-256":
        raise SystemExit("--random-weights builds mms-lid-256 only: add --model mms-lid-256.")
    return args


def start_ray(args) -> None:
    from streamlid.cluster import require_ray

    # Replicas and actors import streamlid: this checkout first, as for the driver.
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ[RUN_MARK] = args.run_mark
    require_ray("auto")  # before Ray is imported: keeps 127.0.0.1 from being rewritten
    import ray

    ray.init(
        address="local",  # a fresh local Ray, never one some other run left behind
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        num_cpus=args.num_cpus,
        num_gpus=None,
        object_store_memory=200_000_000,
        log_to_driver=args.verbose,
        logging_level=logging.INFO if args.verbose else logging.ERROR,
        _temp_dir=args.ray_temp_dir,
    )


def stop_ray() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


HEADER = (
    f"{'replicas':>8} {'feeds':>5} {'actors':>6} {'offered/s':>9} {'answered/s':>10} "
    f"{'p50 ms':>6} {'p95 ms':>6} {'hop s':>5} {'skipped':>7} {'timed out':>9} "
    f"{'CPU ms/window: ingest':>21} {'replicas':>8} {'Ray':>5}"
)


def print_cell(row: dict) -> None:
    hop = "-" if row["effective_hop_s"] is None else f"{row['effective_hop_s']:.2f}"
    cpu = row.get("cpu_ms_per_window", {})
    print(
        f"{row['replicas']:>8} {row['feeds']:>5} {row['ingest_actors']:>6} "
        f"{row['offered_per_s']:>9.0f} {row['windows_per_s']:>10.1f} "
        f"{ms(row['latency_p50_s']):>6} {ms(row['latency_p95_s']):>6} {hop:>5} "
        f"{row['skipped']:>7} {row['timed_out']:>9} "
        f"{cpu.get('ingest', '-'):>21} {cpu.get('replicas', '-'):>8} {cpu.get('ray', '-'):>5}",
        flush=True,
    )
    for error in row["errors"]:
        print(f"  error: {error}", flush=True)


def machine_line() -> str:
    return f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def describe(args) -> str:
    if args.model is not None:
        return f"model: {args.model}{' (random weights)' if args.random_weights else ''}"
    batch_n = args.serve_batch
    per_s = batch_n / (args.service_s + args.per_window_s * batch_n)
    return (
        f"stand-in model: {1000 * args.service_s:g} ms + {1000 * args.per_window_s:g} ms x "
        f"batch per pass; a replica sustains at most {per_s:.0f} windows/s at batch {batch_n}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine_at_start": machine_line(),
        "overhead": [],
        "cells": [],
    }
    print(report["machine_at_start"], flush=True)
    print(describe(args), flush=True)
    # Both stop it the same way, even where a shell started it with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)
    status = 0
    try:
        start_ray(args)
        spec = model_spec(args)
        if args.model is None and not args.no_overhead:
            for wait_s in sorted({args.serve_batch_wait_s, 0.0}, reverse=True):
                report["overhead"].append(measure_overhead(args, spec, wait_s))
        for replicas_n in args.replica_counts:
            deploy(args, spec, bench_config(args, replicas_n))
            print(HEADER, flush=True)
            for feeds_n in args.feed_counts:
                row = run_cell(args, spec, replicas_n, feeds_n)
                report["cells"].append(row)
                print_cell(row)
    except KeyboardInterrupt:
        print("interrupted: stopping Ray", file=sys.stderr, flush=True)
        status = 130
    finally:
        stop_ray()
        report["machine_at_end"] = machine_line()
        if args.json is not None:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(report["machine_at_end"], flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
