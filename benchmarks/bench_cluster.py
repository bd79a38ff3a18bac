"""The cluster's orchestration cost: simulated live feeds through the Ray Serve model deployment.

A stand-in model with a fixed service time per batch (`--service-s A` + `--per-window-s B` x
batch; it sleeps, so the figures are about Ray and Serve, not about this machine's cores) is
served by the model deployment, and N simulated live feeds, spread over ingest actors, each form
a 3 s window every `--hop` seconds on their own schedule and send it through a Serve handle.
Each feed follows the live rules of a local run: one window in flight per feed, a window formed
while the previous one is out waits and is superseded by a newer one, and a waiting window whose
answer would come out later than `--max-lag` is skipped (`scheduler.too_late`, the worker's own
rule). Reported per cell (replicas x feeds): windows answered per second, answer latency
(answer time - window formed time) median and p95, and what was skipped; then the overhead of
the Serve hop per window against a local call of the same stand-in.

Ray runs locally, every process bound to 127.0.0.1, and is stopped at the end and on Ctrl-C.

    python benchmarks/bench_cluster.py --quick
    python benchmarks/bench_cluster.py --json figures.json           # the full grid, ~8 min
    python benchmarks/bench_cluster.py --replicas 1 --feeds 2 --seconds 2 --warmup-s 0.5
    # the real classifier instead of the stand-in (one replica per GPU):
    python benchmarks/bench_cluster.py --model mms-lid-256 --random-weights --device cuda \\
        --replicas 1 --feeds 50,100,200,400 --gpus-per-replica 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlid.bench import percentile  # noqa: E402
from streamlid.scheduler import ForwardTimes, too_late  # noqa: E402

RATE_HZ = 16000
WINDOW_S = 3.0
APP_NAME = "streamlid-bench"
FULL_GRID_REPLICAS = (1, 2, 4)
FULL_GRID_FEEDS = (10, 50, 100, 200, 400)
QUICK_GRID_REPLICAS = (1, 2)
QUICK_GRID_FEEDS = (10, 100)
OVERHEAD_CALLS_N = 200
STANDIN_LABELS = ("eng", "fra", "deu", "spa", "ita", "por", "nld", "pol", "tur", "swe")


@dataclass(frozen=True)
class ServiceTime:
    """What one forward pass of the stand-in costs: `fixed_s` + `per_window_s` x batch."""

    fixed_s: float
    per_window_s: float

    def seconds(self, batch_n: int) -> float:
        return self.fixed_s + self.per_window_s * batch_n

    def windows_per_s(self, batch_n: int) -> float:
        """What one replica sustains when every pass is full."""
        return batch_n / self.seconds(batch_n)


class StandinModel:
    """streamlid's `Model` (labels, classify) with a fixed service time and no weights: it
    sleeps as a GPU forward pass of that batch would take, and names the first language."""

    labels = STANDIN_LABELS

    def __init__(self, service: ServiceTime) -> None:
        self._service = service
        self._row = np.full(len(self.labels), 0.02, np.float32)
        self._row[0] = 1.0 - 0.02 * (len(self.labels) - 1)

    def classify(self, windows: list[np.ndarray]) -> np.ndarray:
        time.sleep(self._service.seconds(len(windows)))
        return np.tile(self._row, (len(windows), 1))


@dataclass
class FeedCounts:
    """One group's tallies, for windows formed inside the measured interval only."""

    formed: int = 0
    answered: int = 0
    superseded: int = 0  # a newer window of the same feed took its place while it waited
    too_late: int = 0  # it waited, and its answer would have come out later than max-lag
    late_answers: int = 0  # answered, but more than max-lag after it was formed
    failed: int = 0  # the request raised (a replica died, the handle gave up)
    latencies_s: list[float] = field(default_factory=list)


class FeedGroup:
    """Simulated live feeds of one ingest actor, each on its own schedule (a random phase
    within the hop), all on this actor's event loop. Made a Ray actor by `feed_group_actor`."""

    def __init__(
        self,
        feeds_n: int,
        hop_s: float,
        max_lag_s: float,
        payload_n: int,
        seed: int,
    ) -> None:
        from ray import serve

        self._handle = serve.get_app_handle(APP_NAME)
        self._feeds_n = feeds_n
        self._hop_s = hop_s
        self._max_lag_s = max_lag_s
        rng = np.random.default_rng(seed)
        self._phases_s = rng.uniform(0.0, hop_s, feeds_n)
        # One payload for every send: the bytes still cross the wire each time.
        self._window = (0.1 * rng.standard_normal(payload_n)).astype(np.float32)

    def ready(self) -> bool:
        return True

    async def run(self, start_at: float, warmup_s: float, measure_s: float) -> dict:
        """Feeds form windows from `start_at` (wall clock) for warmup + measure seconds;
        counts only windows formed in the measured part; returns when every answer is in."""
        counts = FeedCounts()
        measured = (start_at + warmup_s, start_at + warmup_s + measure_s)
        await asyncio.gather(
            *(self._feed(i, start_at, measured, counts) for i in range(self._feeds_n))
        )
        return asdict(counts)

    async def _feed(
        self, i: int, start_at: float, measured: tuple[float, float], counts: FeedCounts
    ) -> None:
        state = {"busy": False, "waiting": None}  # waiting: formed-at of the held window
        times = ForwardTimes()  # round trips of this feed, for the too-late rule
        senders: list[asyncio.Task] = []
        tick = start_at + float(self._phases_s[i])
        while tick < measured[1]:
            await asyncio.sleep(max(0.0, tick - time.time()))
            formed_at = time.time()
            in_measure = measured[0] <= formed_at < measured[1]
            counts.formed += in_measure
            if state["busy"]:
                if state["waiting"] is not None:
                    counts.superseded += measured[0] <= state["waiting"] < measured[1]
                state["waiting"] = formed_at
            else:
                state["busy"] = True
                senders.append(
                    asyncio.create_task(self._send(formed_at, state, times, measured, counts))
                )
            tick += self._hop_s
        await asyncio.gather(*senders)

    async def _send(self, formed_at, state, times, measured, counts) -> None:
        """Sends this window, then the one that waited meanwhile (if still fresh enough)."""
        while formed_at is not None:
            in_measure = measured[0] <= formed_at < measured[1]
            sent_at = time.time()
            try:
                probs = await self._handle.remote(self._window)
            except Exception:
                counts.failed += in_measure
            else:
                answered_at = time.time()
                times.record(1, answered_at - sent_at)
                if in_measure and len(probs) > 0:
                    counts.answered += 1
                    counts.latencies_s.append(answered_at - formed_at)
                    counts.late_answers += answered_at - formed_at > self._max_lag_s
            formed_at, state["waiting"] = state["waiting"], None
            while formed_at is not None:
                age_s = time.time() - formed_at
                if not too_late(age_s, times.predict_s(1), self._max_lag_s):
                    break
                counts.too_late += measured[0] <= formed_at < measured[1]
                formed_at = None
        state["busy"] = False


def feed_group_actor():
    import ray

    # No CPU reserved: the feeds sleep most of the time, and a reservation would cap how many
    # groups a small machine can hold next to the replicas.
    return ray.remote(num_cpus=0)(FeedGroup)


def build_model(spec: dict):
    """The model a replica serves: the stand-in, or streamlid's classifier from its loader."""
    if spec["kind"] == "standin":
        return StandinModel(ServiceTime(spec["fixed_s"], spec["per_window_s"]))
    from streamlid.classifier import RANDOM_SHAPES, Classifier

    random_weights = spec["random_weights"]
    model = str(RANDOM_SHAPES[spec["model"]]) if random_weights else spec["model"]
    return Classifier(
        model, device=spec["device"], dtype=spec["dtype"], random_weights=random_weights
    )


def deploy(spec: dict, replicas_n: int, max_batch_n: int, batch_wait_s: float, gpus: float):
    """Deploys (or redeploys) the model with `replicas_n` replicas; returns its handle."""
    from ray import serve

    @serve.deployment(name="BenchModel", max_ongoing_requests=2 * max_batch_n)
    class BenchModel:
        def __init__(self, spec: dict) -> None:
            self._model = build_model(spec)

        # One batch at a time (max_concurrent_batches=1), like a GPU; the forward pass runs
        # off the event loop so the replica keeps answering Serve's queue-length probes.
        @serve.batch(max_batch_size=max_batch_n, batch_wait_timeout_s=batch_wait_s)
        async def __call__(self, windows: list[np.ndarray]) -> list[np.ndarray]:
            probs = await asyncio.to_thread(self._model.classify, windows)
            return list(probs)

    options = {"num_cpus": 0 if gpus else 1, "num_gpus": gpus}
    app = BenchModel.options(num_replicas=replicas_n, ray_actor_options=options).bind(spec)
    return serve.run(app, name=APP_NAME, route_prefix=None)


def summarise(cell: dict, results: list[dict], measure_s: float) -> dict:
    total = FeedCounts()
    for r in results:
        for key in ("formed", "answered", "superseded", "too_late", "late_answers", "failed"):
            setattr(total, key, getattr(total, key) + r[key])
        total.latencies_s.extend(r["latencies_s"])
    lat = total.latencies_s
    return {
        **cell,
        "offered_per_s": round(cell["feeds"] / cell["hop_s"], 1),
        "windows_per_s": round(total.answered / measure_s, 1),
        "latency_p50_s": round(statistics.median(lat), 4) if lat else None,
        "latency_p95_s": round(percentile(lat, 95), 4) if lat else None,
        "latency_max_s": round(max(lat), 4) if lat else None,
        "formed": total.formed,
        "answered": total.answered,
        "skipped": total.superseded + total.too_late,
        "superseded": total.superseded,
        "too_late": total.too_late,
        "late_answers": total.late_answers,
        "failed": total.failed,
    }


def run_cell(args, replicas_n: int, feeds_n: int) -> dict:
    import ray

    groups_n = min(args.ingest_actors, feeds_n)
    shares = [feeds_n // groups_n + (i < feeds_n % groups_n) for i in range(groups_n)]
    actor = feed_group_actor()
    groups = [
        actor.remote(n, args.hop, args.max_lag, args.payload_samples, seed=i)
        for i, n in enumerate(shares)
    ]
    try:
        ray.get([g.ready.remote() for g in groups])
        start_at = time.time() + 0.5
        results = ray.get(
            [g.run.remote(start_at, args.warmup_s, args.seconds) for g in groups],
            timeout=args.warmup_s + args.seconds + args.max_lag + 60,
        )
    finally:
        for g in groups:
            ray.kill(g)
    cell = {"replicas": replicas_n, "feeds": feeds_n, "ingest_actors": groups_n, "hop_s": args.hop}
    return summarise(cell, results, args.seconds)


def measure_overhead(args, spec: dict, wait_s: float) -> dict:
    """One window at a time: the stand-in called here against the same through Serve (one
    replica), with the given batch wait (a lone window waits that long for company)."""
    service = ServiceTime(args.service_s, args.per_window_s)
    handle = deploy(spec, 1, args.max_batch, wait_s, args.gpus_per_replica)
    window = np.zeros(args.payload_samples, np.float32)
    local = StandinModel(service)
    local_s, serve_s = [], []
    for _ in range(5):
        handle.remote(window).result()  # warm the route and the replica
    for _ in range(args.overhead_calls):
        started = time.perf_counter()
        local.classify([window])
        local_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        handle.remote(window).result()
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
    print(
        f"Serve hop, one window at a time ({over['calls']} calls, {over['payload_samples']} "
        f"float32 samples, batch wait {wait_s:g} s): local {ms(over['local_p50_s'])} / "
        f"{ms(over['local_p95_s'])} ms, through Serve {ms(over['serve_p50_s'])} / "
        f"{ms(over['serve_p95_s'])} ms (median / p95): overhead {ms(over['overhead_p50_s'])} / "
        f"{ms(over['overhead_p95_s'])} ms",
        flush=True,
    )
    return over


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


def quiet_serve_logs(verbose: bool) -> None:
    """Serve sets up its own logger when it starts; keep only its errors unless asked."""
    if not verbose:
        from ray import serve  # noqa: F401  (its import sets the logger up)

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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", default=",".join(map(str, FULL_GRID_REPLICAS)))
    p.add_argument("--feeds", default=",".join(map(str, FULL_GRID_FEEDS)))
    p.add_argument("--quick", action="store_true", help="replicas 1,2 x feeds 10,100, 5 s a cell")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per cell")
    p.add_argument("--warmup-s", type=float, default=3.0, help="unmeasured seconds before each")
    p.add_argument("--hop", type=float, default=1.0, help="seconds between a feed's windows")
    p.add_argument("--max-lag", type=float, default=3.0, help="skip windows older than this")
    p.add_argument("--service-s", type=float, default=0.02, help="stand-in: fixed s per pass")
    p.add_argument("--per-window-s", type=float, default=0.004, help="stand-in: s per window")
    p.add_argument("--max-batch", type=int, default=32, help="@serve.batch max_batch_size")
    p.add_argument("--batch-wait-s", type=float, default=0.01, help="batch_wait_timeout_s")
    p.add_argument(
        "--payload-samples",
        type=int,
        default=int(WINDOW_S * RATE_HZ),
        help="float32 samples sent per window (48000 = 3 s at 16 kHz)",
    )
    p.add_argument("--ingest-actors", type=int, default=2, help="actors the feeds are spread on")
    p.add_argument("--num-cpus", type=int, default=8, help="logical CPUs of the local Ray")
    p.add_argument("--overhead-calls", type=int, default=OVERHEAD_CALLS_N)
    p.add_argument("--no-overhead", action="store_true", help="skip the Serve-hop overhead")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--ray-temp-dir", help="the local Ray's temp folder (short: socket paths)")
    p.add_argument("--verbose", action="store_true", help="keep Ray's and Serve's own logs")
    real = p.add_argument_group("the real classifier instead of the stand-in")
    real.add_argument("--model", help="a model folder or hub id, as for `streamlid --model`")
    real.add_argument(
        "--random-weights",
        action="store_true",
        help="--model mms-lid-256 built with random weights",
    )
    real.add_argument("--device", default="auto")
    real.add_argument("--dtype", default="auto")
    real.add_argument("--gpus-per-replica", type=float, default=0.0)
    args = p.parse_args(argv)
    if args.quick:
        args.replicas, args.feeds, args.seconds = "1,2", "10,100", 5.0
    args.replica_counts = parse_counts(args.replicas, "replicas")
    args.feed_counts = parse_counts(args.feeds, "feeds")
    if args.model and args.payload_samples != int(WINDOW_S * RATE_HZ):
        raise SystemExit("--payload-samples applies to the stand-in only; the model needs 3 s.")
    return args


def model_spec(args) -> dict:
    if args.model:
        return {
            "kind": "classifier",
            "model": args.model,
            "random_weights": args.random_weights,
            "device": args.device,
            "dtype": args.dtype,
        }
    return {"kind": "standin", "fixed_s": args.service_s, "per_window_s": args.per_window_s}


def start_ray(args) -> None:
    import ray

    # Replicas and ingest actors import streamlid: give them this checkout.
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        address="local",  # a fresh local Ray, never one some other run left behind
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        num_cpus=args.num_cpus,
        object_store_memory=200_000_000,
        log_to_driver=args.verbose,
        logging_level=logging.INFO if args.verbose else logging.ERROR,
        _temp_dir=args.ray_temp_dir,
    )
    quiet_serve_logs(args.verbose)


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


def print_cell(row: dict) -> None:
    p50 = "-" if row["latency_p50_s"] is None else f"{1000 * row['latency_p50_s']:.0f}"
    p95 = "-" if row["latency_p95_s"] is None else f"{1000 * row['latency_p95_s']:.0f}"
    print(
        f"{row['replicas']:>8} {row['feeds']:>6} {row['offered_per_s']:>8.0f} "
        f"{row['windows_per_s']:>9.1f} {p50:>7} {p95:>7} {row['skipped']:>8} "
        f"{row['late_answers']:>5} {row['failed']:>6}",
        flush=True,
    )


def machine_line() -> str:
    return f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = model_spec(args)
    report: dict = {"settings": {k: v for k, v in vars(args).items() if k != "json"}}
    report["settings"]["json"] = None if args.json is None else str(args.json)
    report["model"] = spec
    report["cells"] = []
    print(machine_line() + " at the start", flush=True)
    if spec["kind"] == "standin":
        service = ServiceTime(args.service_s, args.per_window_s)
        print(
            f"stand-in model: {args.service_s * 1000:g} ms + {args.per_window_s * 1000:g} ms x "
            f"batch per pass; one replica sustains at most "
            f"{service.windows_per_s(args.max_batch):.0f} windows/s at batch {args.max_batch}",
            flush=True,
        )
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        start_ray(args)
        if spec["kind"] == "standin" and not args.no_overhead:
            waits_s = sorted({args.batch_wait_s, 0.0}, reverse=True)
            report["overhead"] = [measure_overhead(args, spec, w) for w in waits_s]
        for replicas_n in args.replica_counts:
            deploy(spec, replicas_n, args.max_batch, args.batch_wait_s, args.gpus_per_replica)
            print(
                f"{'replicas':>8} {'feeds':>6} {'offered':>8} {'answered':>9} {'p50 ms':>7} "
                f"{'p95 ms':>7} {'skipped':>8} {'late':>5} {'failed':>6}",
                flush=True,
            )
            for feeds_n in args.feed_counts:
                row = run_cell(args, replicas_n, feeds_n)
                report["cells"].append(row)
                print_cell(row)
    except KeyboardInterrupt:
        print("interrupted: stopping Ray", file=sys.stderr, flush=True)
        return 130
    finally:
        stop_ray()
        report["machine_at_end"] = machine_line()
        if args.json is not None:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(machine_line() + " at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
