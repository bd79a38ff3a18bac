"""streamlid on a Ray cluster (issue 11), on a real two-node Ray cluster on this machine.

The cluster is a head and a second node started with `ray start`, CPU only, every process
bound to 127.0.0.1, once per session; the fixture always ends every process it started (found by
the unique RAY_TMPDIR in their environment: `ray stop` would end other people's Ray too) and
checks that none is left. The model is the committed test model, tests/assets/tiny-lid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streamlid.cluster import require_ray
from streamlid.errors import ClusterError

try:
    require_ray("127.0.0.1:1")  # before Ray is imported: this process stays on loopback
except ClusterError:
    pytest.skip(
        "Ray with Serve is not installed (pip install streamlid[cluster])", allow_module_level=True
    )

import ray
from harness import REPO_ROOT, ListSink, make_engine

from streamlid.config import ClusterSettings

pytestmark = pytest.mark.xdist_group("ray")  # one Ray at a time, in one worker: scripts/test

TINY_LID = REPO_ROOT / "tests" / "assets" / "tiny-lid"
RAY_BIN = Path(sys.executable).parent / "ray"
START_TIMEOUT_S = 180.0
CLI_TIMEOUT_S = 240.0
PROB_TOLERANCE = 2e-4  # float32 both sides (JSONL rounds to 4 decimals; batches may differ)

# `ray start` for a second node would rewrite 127.0.0.1 into this machine's outward address
# (and refuses to join at all with the switch that keeps the head on loopback), so it is
# started with that rewrite turned off.
WORKER_LAUNCHER = (
    "import sys, ray._private.services as services\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv = ['ray', *sys.argv[1:]]\n"
    "main()\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def our_pids(marker: str) -> list[int]:
    """Processes whose environment carries our RAY_TMPDIR: every process the cluster started."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if f"RAY_TMPDIR={marker}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
    return pids


def command_of(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def end_processes(marker: str) -> list[str]:
    """Ends (by pid) every process of ours; the command lines of any still alive after."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in our_pids(marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and our_pids(marker):
            time.sleep(0.2)
    alive = [pid for pid in our_pids(marker) if Path(f"/proc/{pid}/status").exists()]
    # Zombies of processes re-parented to init are gone as far as the cluster is concerned.
    return [
        command_of(pid)
        for pid in alive
        if "State:\tZ" not in Path(f"/proc/{pid}/status").read_text(errors="replace")
    ]


def _start_node(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, f"{command[:4]} failed: {result.stderr[-2000:]}"


@pytest.fixture(scope="session")
def ray_client_port() -> int:
    """The head's Ray Client port (`--cluster ray://127.0.0.1:PORT`)."""
    return free_port()


@pytest.fixture(scope="session")
def ray_cluster(ray_client_port):
    """(address, env): a head and a second node on 127.0.0.1, 3 CPUs each (logical)."""
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    temp_dir = tempfile.mkdtemp(prefix="slray", dir="/tmp")  # short: Ray's socket paths
    env = dict(os.environ)
    env.update(
        RAY_TMPDIR=temp_dir,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",  # loopback only, for the length of the tests
        PYTHONPATH=str(REPO_ROOT),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # this process's; the head gets its own
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "3", "--disable-usage-stats"]
    common += ["--object-store-memory", "100000000"]
    try:
        _start_node(
            [
                *(str(RAY_BIN), "start", "--head", "--port", str(port), "--temp-dir", temp_dir),
                *("--include-dashboard=false", "--ray-client-server-port", str(ray_client_port)),
                *("--dashboard-agent-listen-port", str(free_port()), *common),
            ],
            {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
        )
        _start_node(
            [
                *(sys.executable, "-c", WORKER_LAUNCHER, "start", "--address", address),
                *("--dashboard-agent-listen-port", str(free_port()), *common),
            ],
            env,
        )
        yield address, env
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        left = end_processes(temp_dir)
        if not left:
            shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left running: {left}"
        assert not any("raylet" in cmd or "gcs_server" in cmd for cmd in left)


@pytest.fixture(scope="module")
def driver(ray_cluster):
    """This test process, connected to the cluster as a Ray driver."""
    address, _ = ray_cluster
    ray.init(address=address, namespace="streamlid", log_to_driver=False)
    yield address
    from ray import serve

    with contextlib.suppress(Exception):
        serve.delete("streamlid")
    ray.shutdown()


@pytest.fixture(scope="module")
def long_feeds(espeak, tmp_path_factory) -> list[Path]:
    """Four files of about 25 s (English and French in turn), for a live run long enough to
    break things in the middle of."""
    from audio_helpers import silence, write_wav

    folder = tmp_path_factory.mktemp("long-feeds")
    en, fr = espeak.samples("en"), espeak.samples("fr")
    paths = []
    for n, parts in enumerate(([en, fr, en], [fr, en, fr], [en, en, fr], [fr, fr, en])):
        path = folder / f"long-{n}.wav"
        write_wav(path, np.concatenate([x for part in parts for x in (part, silence(0.6))]))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def lid():
    from streamlid.classifier import Classifier

    return Classifier(str(TINY_LID), device="cpu", dtype="float32", announce=lambda m: None)


@pytest.fixture(scope="module")
def feeds(espeak, tmp_path_factory) -> list[Path]:
    """Six short files, English and French, with different pauses around the speech."""
    return [
        espeak.wav(voice, lead_s, tail_s)
        for voice, lead_s, tail_s in (
            ("en", 0.0, 0.0),
            ("fr", 0.0, 0.0),
            ("en", 0.5, 0.5),
            ("fr", 1.0, 0.0),
            ("en", 0.0, 1.0),
            ("fr", 0.5, 1.0),
        )
    ]


def settings(replicas_n: int = 2, batch_n: int = 4) -> ClusterSettings:
    return ClusterSettings("auto", 2, replicas_n, replicas_n, batch_n, 0.005, 0.5)


def our_listeners(temp_dir: str) -> list[str]:
    """Addresses our cluster's processes listen on (TCP)."""
    pids = set(our_pids(temp_dir))
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout
    addresses = []
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            addresses.append(line.split()[3])
    return addresses


# -- the model as a service ---------------------------------------------------------------


@pytest.mark.slow
def test_cluster_listens_on_loopback_only(ray_cluster):
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed; it lists the listening sockets")
    _, env = ray_cluster
    addresses = our_listeners(env["RAY_TMPDIR"])
    assert addresses, "the cluster's processes listen nowhere (or ss is missing)"
    outside = [a for a in addresses if not a.removeprefix("[::ffff:").startswith("127.")]
    assert not outside, f"listening beyond 127.0.0.0/8: {outside}"


@pytest.mark.slow
def test_deployment_answers_as_the_local_classifier(driver, lid, feeds):
    """Windows from several feeds, of several lengths, sent at once (so Serve batches them):
    each answer is the vector the local classifier gives that window alone."""
    from streamlid.cluster.remote import RemoteModel
    from streamlid.cluster.serving import ModelSpec, deploy_model, local_or_as_is

    spec = ModelSpec(
        kwargs={
            "model": local_or_as_is(str(TINY_LID)),
            "device": "cpu",
            "dtype": "float32",
            "languages": (),
        }
    )
    handle = deploy_model(spec, settings(replicas_n=2, batch_n=8))
    model = RemoteModel(handle, handle.labels.remote().result(), timeout_s=60.0)
    assert model.labels == lid.labels
    windows = []
    for path in feeds[:4]:
        audio = _read(path)
        windows += [audio[:48000], audio[8000:56000], audio[:24000]]
    remote = model.classify(windows)
    local = np.stack([lid.classify([w])[0] for w in windows])
    assert np.isfinite(remote).all()
    np.testing.assert_allclose(remote, local, atol=PROB_TOLERANCE)
    assert (remote.argmax(axis=1) == local.argmax(axis=1)).all()
    assert model.counts.answered_n == len(windows)


@pytest.mark.slow
def test_unanswered_windows_come_back_as_skipped(driver):
    """A model slower than the deadline: the windows come back as NaN rows (the worker counts
    them as skipped), within the deadline, and are counted as timed out."""
    from streamlid.cluster.remote import RemoteModel
    from streamlid.cluster.serving import ModelSpec, deploy_model

    spec = ModelSpec("streamlid.cluster.standin:SleepModel", {"labels_n": 4, "service_s": 3.0})
    handle = deploy_model(spec, settings(replicas_n=1))
    model = RemoteModel(handle, handle.labels.remote().result(), timeout_s=0.5)
    started = time.monotonic()
    probs = model.classify([np.zeros(16000, np.float32)] * 3)
    assert time.monotonic() - started < 2.0
    assert np.isnan(probs).all()
    assert model.counts.timed_out_n == 3 and model.counts.answered_n == 0
    fast = RemoteModel(handle, model.labels, timeout_s=30.0)
    assert np.isfinite(fast.classify([np.zeros(16000, np.float32)])).all()


def _read(path: Path) -> np.ndarray:
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32")
    assert rate == 16000
    return audio


# -- one command: listen --cluster --------------------------------------------------------


def _cli(env: dict[str, str], *args: object, timeout_s: float = CLI_TIMEOUT_S):
    return _python(env, "-m", "streamlid", *args, timeout_s=timeout_s)


def _python(env: dict[str, str], *args: object, timeout_s: float = CLI_TIMEOUT_S):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        check=False,
    )


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _local_events(lid, specs: list[Path], **overrides) -> list[dict]:
    from streamlid.events import event_to_dict

    sink = ListSink()
    make_engine(specs, lid, [sink], dtype="float32", **overrides).run()
    return [event_to_dict(e) for e in sink.events]


def _story(events: list[dict], stream: str) -> list[tuple]:
    """What a listener is told about one stream: predictions (window, answer, decision),
    changes and speech edges, each kind in order; times to the millisecond (JSONL rounds).
    Speech edges come from the front end's thread and answers from the worker's, and a file's
    front end runs ahead of the model, so how the kinds interleave is timing, not story."""

    def ms(t_s: float) -> float:
        return round(t_s, 3)

    story = []
    for e in events:
        if e.get("stream") != stream:
            continue
        if e["type"] == "prediction":
            top = e["top"][0]["code"]
            story.append(("prediction", ms(e["t_start_s"]), ms(e["t_end_s"]), top, e["language"]))
        elif e["type"] == "change":
            story.append(("change", ms(e["t_s"]), e["previous"], e["language"]))
        elif e["type"] == "speech":
            story.append(("speech", ms(e["t_s"]), e["speech"]))
    return sorted(story, key=lambda told: told[0])  # stable: each kind keeps its order


@pytest.mark.slow
def test_six_feeds_on_two_actors_and_two_replicas_match_a_local_run(
    ray_cluster, driver, lid, feeds, tmp_path
):
    address, env = ray_cluster
    config = tmp_path / "feeds.toml"
    config.write_text(
        "sources = [" + ", ".join(json.dumps(str(p)) for p in feeds) + "]\n"
        "[cluster]\ningest-actors = 2\nreplicas = 2\nserve-batch = 8\nreplica-cpus = 0.5\n"
    )
    jsonl = tmp_path / "cluster.jsonl"
    csv = tmp_path / "timeline.csv"
    result = _cli(
        env,
        "listen",
        "--cluster",
        address,
        "--config",
        config,
        "--model",
        TINY_LID,
        "--dtype",
        "float32",
        "--ui",
        "none",
        "--jsonl",
        jsonl,
        "--timeline-csv",
        csv,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cluster = _events(jsonl)
    local = _local_events(lid, feeds)
    names = sorted(p.name for p in feeds)
    assert sorted({e["stream"] for e in cluster if e["type"] == "started"}) == names
    for name in names:
        assert _story(cluster, name) == _story(local, name), name
        # The probabilities too, window by window.
        remote_p = [e["top"] for e in cluster if e["type"] == "prediction" and e["stream"] == name]
        local_p = [e["top"] for e in local if e["type"] == "prediction" and e["stream"] == name]
        for r, lo in zip(remote_p, local_p, strict=True):
            assert [s["code"] for s in r] == [s["code"] for s in lo]
            np.testing.assert_allclose(
                [s["probability"] for s in r], [s["probability"] for s in lo], atol=PROB_TOLERANCE
            )
    summary = cluster[-1]
    assert summary["type"] == "summary" and summary["reason"] == "end of input"
    local_summary = local[-1]
    by_stream = {s["stream"]: s for s in summary["streams"]}
    for s in local_summary["streams"]:
        mine = by_stream[s["stream"]]
        assert mine["speech_s_by_language"] == pytest.approx(s["speech_s_by_language"], abs=0.01)
        assert mine["windows"] == s["windows"] and mine["skipped_windows"] == 0
    assert summary["extra"]["cluster"]["ingest_actors"] == 2
    assert csv.read_text().count("\n") > len(feeds)  # a header and a segment per feed at least
    # Every feed's events came from one of two actors, and the model had two replicas.
    assert "replicas 2-2" in result.stderr


@pytest.mark.slow
def test_a_lost_replica_and_a_lost_ingest_actor_do_not_stop_the_run(
    ray_cluster, driver, long_feeds, tmp_path
):
    """Mid-run (live, --realtime), one model replica and one ingest actor are killed: the run
    goes on, the outage is reported and recovered, and the summary accounts for every file's
    whole length."""
    address, env = ray_cluster
    specs = long_feeds
    jsonl = tmp_path / "faults.jsonl"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "streamlid", "listen", "--cluster", address),
            *map(str, specs),
            *("--model", str(TINY_LID), "--dtype", "float32", "--ui", "none", "--realtime"),
            *("--ingest-actors", "2", "--replicas", "2", "--replica-cpus", "0.5"),
            *("--max-lag", "10", "--jsonl", str(jsonl)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        _wait_for(lambda: _count(jsonl, "prediction") >= 4, 150.0, process)
        status = _cli(env, "cluster", "status", "--address", address, "--json", timeout_s=60)
        assert status.returncode == 0, status.stderr[-2000:]
        shown = json.loads(status.stdout)
        assert shown["replicas"].get("RUNNING") == 2
        assert sorted(len(a["feeds"]) for a in shown["actors"]) == [2, 2]
        assert sorted(f for a in shown["actors"] for f in a["feeds"]) == [p.name for p in specs]
        replicas = [
            a
            for a in ray.util.list_named_actors(all_namespaces=True)
            if "LanguageModel" in a["name"] and a["namespace"] == "serve"
        ]
        assert len(replicas) == 2, replicas
        ray.kill(ray.get_actor(replicas[0]["name"], namespace="serve"), no_restart=True)
        shard = ray.get_actor("streamlid-ingest-0", namespace="streamlid")
        ray.kill(shard, no_restart=False)  # Ray restarts it, as after a crash
        _, stderr = process.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-3000:]
    events = _events(jsonl)
    shard0 = [p.name for p in specs[0::2]]  # feeds are dealt round-robin
    for name in shard0:
        states = [e["state"] for e in events if e["type"] == "feed" and e["stream"] == name]
        told = [e for e in events if e["type"] in ("feed", "notice")]
        assert states[:2] == ["disconnected", "recovered"], (name, states, told)
    notices = [e["message"] for e in events if e["type"] == "notice"]
    assert any("model replica lost" in m for m in notices), notices
    summary = events[-1]
    assert summary["type"] == "summary" and summary["reason"] == "end of input"
    assert summary["extra"]["cluster"]["actor_restarts"] >= 1
    for s in summary["streams"]:
        path = next(p for p in specs if p.name == s["stream"])
        length_s = len(_read(path)) / 16000
        # every second of the file is in the books: heard to its end, across the restart
        assert abs(s["duration_s"] - length_s) < 0.5, (s["stream"], s["duration_s"], length_s)
        assert abs(sum(s["speech_s_by_language"].values()) - s["speech_s"]) < 0.01
        assert s["windows"] > 0
    for name in shard0:
        s = next(s for s in summary["streams"] if s["stream"] == name)
        assert s["reconnects"] >= 1
        # answers again after the restart, later in the stream than before it
        kinds = [(e["type"], e.get("state")) for e in events if e.get("stream") == name]
        recovered_at = kinds.index(("feed", "recovered"))
        assert ("prediction", None) in kinds[recovered_at:], name


def _count(path: Path, kind: str) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if f'"type": "{kind}"' in line)


def _wait_for(condition, timeout_s: float, process) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.stderr.read()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_restarted_shards_events_carry_on_where_the_feed_was():
    """Books across an ingest actor's restart: the new actor's stream times start at zero and
    its counters afresh; the run's events carry on from where the feed had got to."""
    from streamlid.cluster.gather import ShardBooks
    from streamlid.events import FeedState, Prediction, SpeechChange, Status, StreamStarted

    books = ShardBooks(0, actor=None, feeds=[])
    books.names = ["a"]
    started = StreamStarted("a", "a.wav", 16000, True, "m", "cpu", "float32")
    assert books.translate(started) == started
    answer = Prediction("a", 5.0, 8.0, (), (), "eng", "English", 0.9, 0.1, 0.2)
    books.translate(answer)
    books.translate(Status("a", 10.0, 0.2, 0.0, 2, 7))
    down = books.died()
    assert [type(e) for e in down] == [SpeechChange, FeedState]
    assert down[1].state == "disconnected" and down[1].t_s == 10.0
    assert books.unanswered_s("a") == pytest.approx(2.0)  # 8-10 s was read, never answered
    assert books.resume_s() == {"a": 10.0}
    assert books.recovered()[0].state == "recovered"
    assert books.translate(started) is None  # said once per run
    later = books.translate(Prediction("a", 0.5, 3.5, (), (), "eng", "English", 0.9, 0.1, 0.2))
    assert (later.t_start_s, later.t_end_s) == (10.5, 13.5)
    status = books.translate(Status("a", 4.0, 0.1, 0.5, 1, 3))
    assert (status.t_s, status.skipped_windows, status.windows) == (14.0, 3, 10)
    assert status.overflow_s == pytest.approx(0.5 + 2.0)  # the new actor's, and the 2 s lost


def test_a_stop_with_the_cluster_gone_ends_the_gatherer_before_the_run_gives_up(monkeypatch):
    """SIGTERM to the process group stops Ray's own processes with the driver: no actor hands
    over its last events and Serve's controller never answers. The gatherer waited 10 s, and
    asked Serve for its replicas without end; the run leaves after FORCED_EXIT_AFTER_S, so the
    summary was never written. It must end within that, whatever the cluster does."""
    from types import SimpleNamespace

    from streamlid.cluster import gather
    from streamlid.cluster.gather import Gatherer, ShardBooks
    from streamlid.threads import FORCED_EXIT_AFTER_S

    gone = threading.Event()  # set at the end: frees a call that would never return

    def wait(refs, timeout, num_returns=1):
        time.sleep(timeout)  # no actor ever answers, nor Serve's controller
        return [], refs

    monkeypatch.setattr(gather, "ask_replica_counts", object)
    monkeypatch.setattr(gather.ray, "wait", wait)
    silent = SimpleNamespace(
        take=SimpleNamespace(remote=object), stop=SimpleNamespace(remote=lambda: None)
    )
    gatherer = Gatherer([ShardBooks(0, silent, [])], lambda event: None, lambda message: None)
    try:
        gatherer.start()
        time.sleep(0.3)  # running: the replicas counted once, the next count due in 1 s
        gatherer.stop()
        assert gatherer.join(FORCED_EXIT_AFTER_S)
    finally:
        gone.set()
        # Ended before the fakes are taken away (a real ray.wait would start a local Ray).
        assert gatherer.join(gather.STOP_GRACE_S + 5.0)


def test_a_serve_controller_that_stops_answering_holds_up_no_event_and_is_said(monkeypatch):
    """The model's replicas are counted once a second. The count was asked of Serve's
    controller on the gatherer's thread, so a controller gone with the cluster held up every
    feed's events (and Ctrl-C) without end. The count is now collected when it comes: the
    feeds' events keep flowing, and the silence is said once."""
    from types import SimpleNamespace

    from streamlid.cluster import gather
    from streamlid.cluster.gather import Gatherer, ShardBooks
    from streamlid.events import Notice

    takes_n = 12
    taken: list[object] = []

    class Take:  # a shard's answer: one event per take, done after takes_n
        def __init__(self) -> None:
            taken.append(self)
            self.n = len(taken)

    def wait(refs, timeout, num_returns=1):
        ready = [ref for ref in refs if isinstance(ref, Take)]
        if ready:
            time.sleep(0.05)  # an actor's outbox fills in its own time
            return ready[:1], [ref for ref in refs if ref is not ready[0]]
        time.sleep(timeout)  # the count never comes
        return [], refs

    def get(ref):
        assert isinstance(ref, Take), "the unanswered count was waited for"
        return [Notice("radio", float(ref.n), "info", f"event {ref.n}")], ref.n == takes_n

    monkeypatch.setattr(gather, "ask_replica_counts", object)
    monkeypatch.setattr(gather, "CONTROLLER_SILENT_S", 0.2)
    monkeypatch.setattr(gather.ray, "wait", wait)
    monkeypatch.setattr(gather.ray, "get", get)
    actor = SimpleNamespace(take=SimpleNamespace(remote=Take))
    published: list[Notice] = []
    errors: list[str] = []
    gatherer = Gatherer([ShardBooks(0, actor, [])], published.append, errors.append)
    gatherer.start()
    assert gatherer.join(10.0), "the gatherer did not end when its one shard was done"
    assert errors == []
    assert [n.message for n in published if n.stream] == [
        f"event {n}" for n in range(1, takes_n + 1)
    ]
    silences = [n for n in published if "controller has not answered" in n.message]
    assert len(silences) == 1 and silences[0].severity == "warning"


@pytest.mark.slow
def test_a_run_through_ray_client_tells_the_local_story_and_no_ray_traceback(
    ray_cluster, ray_client_port, lid, feeds, tmp_path
):
    """`--cluster ray://HEAD:PORT` (Ray Client: the driver off the cluster): the events of a
    local run, and standard error holds only streamlid's own lines. The driver asked the model
    its labels through a Serve handle; through Ray Client, Serve's router gave up on a replica's
    queue length after 0.1 s and Ray Client printed tracebacks when the answer came."""
    _, env = ray_cluster
    feed = feeds[0]
    jsonl = tmp_path / "client.jsonl"
    for _ in range(2):
        result = _cli(
            env,
            *("listen", "--cluster", f"ray://127.0.0.1:{ray_client_port}", feed),
            *("--model", TINY_LID, "--dtype", "float32", "--ui", "none", "--jsonl", jsonl),
            "--overwrite",
        )
        # Ray's proxy starts a server process per client; on a loaded machine (CI running
        # beside other work) that start sometimes fails, in Ray, before any of our code runs.
        if "Starting Ray client server failed" not in result.stderr:
            break
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
    assert _story(_events(jsonl), feed.name) == _story(_local_events(lid, [feed]), feed.name)


RELAY_PROBE = """
import logging, sys
from streamlid.cluster.connection import join
join(sys.argv[1])
from ray.util.client import ray as client_ray
relay = client_ray.worker.log_client  # how the server-side driver's log reaches this process
relay.log(logging.WARNING, "SIGTERM handler is not set because current thread is not main.")
relay.log(logging.ERROR, "an error of the server-side driver")
"""


@pytest.mark.slow
def test_ray_clients_relay_of_rays_own_warnings_stays_off_standard_error(
    ray_cluster, ray_client_port
):
    """`cluster status --address ray://...` printed "SIGTERM handler is not set because current
    thread is not the main thread." now and then: Ray Client relays its server-side driver's
    log at INFO whatever log_to_driver says. Its errors still come through."""
    _, env = ray_cluster
    address = f"ray://127.0.0.1:{ray_client_port}"
    for _ in range(2):
        result = _python(env, "-c", RELAY_PROBE, address)
        if "Starting Ray client server failed" not in result.stderr:  # Ray, under load
            break
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SIGTERM" not in result.stderr
    assert "an error of the server-side driver" in result.stderr


@pytest.mark.slow
def test_a_local_cluster_run_says_only_streamlids_own_lines_and_ends_its_cluster(feeds, tmp_path):
    """`listen --cluster auto` starts a cluster of its own on 127.0.0.1, token-protected by
    Ray's default: Ray's warning about that ("Set RAY_AUTH_MODE=disabled to opt out") was the
    run's first line. And the cluster it started ends with it."""
    temp_dir = tempfile.mkdtemp(prefix="slauto", dir="/tmp")  # short: Ray's socket paths
    env = _own_cluster_env(temp_dir)
    jsonl = tmp_path / "auto.jsonl"
    try:
        result = _cli(
            env,
            *("listen", "--cluster", "auto", feeds[0], "--model", TINY_LID),
            *("--ui", "none", "--jsonl", jsonl),
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Token authentication" not in result.stderr, result.stderr
        assert any(event["type"] == "prediction" for event in _events(jsonl))
        assert not our_pids(temp_dir), "the run left its local cluster running"
    finally:
        left = end_processes(temp_dir)
        if not left:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _own_cluster_env(temp_dir: str) -> dict[str, str]:
    """The environment of a run that starts its own local cluster in `temp_dir`: no address or
    token of a cluster this machine may already have, no model download."""
    env = dict(os.environ, RAY_TMPDIR=temp_dir, RAY_USAGE_STATS_ENABLED="0")
    env.update(PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        env.pop(name, None)
    return env


@pytest.mark.slow
def test_sigterm_to_the_process_group_ends_the_run_with_its_summary_and_its_cluster(
    feeds, tmp_path
):
    """systemd, docker stop and `timeout` send SIGTERM to the whole process group, so the Ray
    processes this run started stop with it: the run then waited for ever for Serve to take
    the model down, its gcs_server still running, and left without a summary when the stop
    took longer than its forced-exit deadline."""
    temp_dir = tempfile.mkdtemp(prefix="slterm", dir="/tmp")  # short: Ray's socket paths
    env = _own_cluster_env(temp_dir)
    jsonl = tmp_path / "term.jsonl"
    argv = [sys.executable, "-m", "streamlid", "listen", "--cluster", "auto", "--realtime"]
    argv += [*map(str, feeds[:2]), "--model", str(TINY_LID), "--ui", "none", "--jsonl", str(jsonl)]
    process = subprocess.Popen(
        argv, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + CLI_TIMEOUT_S
        while not (jsonl.exists() and '"prediction"' in jsonl.read_text()):
            assert process.poll() is None, process.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no answer came"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=60.0) == 128 + signal.SIGTERM
        events = _events(jsonl)
        assert events[-1]["type"] == "summary" and events[-1]["reason"] == "interrupted"
        assert not [cmd for cmd in map(command_of, our_pids(temp_dir)) if "gcs_server" in cmd]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        left = end_processes(temp_dir)
        if not left:
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def token_head():
    """(address, env): a one-node cluster on 127.0.0.1 that asks for a token (what `ray start`
    does by default since Ray 2.59), and an environment without it."""
    temp_dir = tempfile.mkdtemp(prefix="sltok", dir="/tmp")
    env = dict(os.environ)
    env.update(RAY_TMPDIR=temp_dir, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO_ROOT))
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    port = free_port()
    head_env = {
        **env,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    try:
        _start_node(
            [
                *(str(RAY_BIN), "start", "--head", "--port", str(port), "--temp-dir", temp_dir),
                *("--include-dashboard=false", "--ray-client-server-port", str(free_port())),
                *("--dashboard-agent-listen-port", str(free_port())),
                *("--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"),
                *("--object-store-memory", "100000000"),
            ],
            head_env,
        )
        yield f"127.0.0.1:{port}", {**env, "RAY_AUTH_MODE": "disabled"}
    finally:
        left = end_processes(temp_dir)
        if not left:
            shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left running: {left}"


@pytest.mark.parametrize("command", ["status", "listen"])
def test_a_head_port_that_takes_no_connection_is_one_line_at_once(run_cli, command, tmp_path):
    """Ray's core retried a refused GCS port for minutes (`cluster status --address
    127.0.0.1:1` ran past four) before saying anything."""
    address = f"127.0.0.1:{free_port()}"  # closed again: nothing listens there
    if command == "status":
        args = ("cluster", "status", "--address", address)
    else:
        import soundfile

        feed = tmp_path / "quiet.wav"
        soundfile.write(str(feed), np.zeros(16000, np.float32), 16000)
        args = ("listen", "--cluster", address, "--model", TINY_LID, feed)
    result = run_cli(*args, timeout_s=60.0)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: Cannot reach the Ray cluster at '{address}' (Connection refused); "
        + ("give its address with --address HOST:PORT, or set RAY_ADDRESS." if command ==
           "status" else "check the address and that `ray start` runs there.")
    ]  # fmt: skip


@pytest.mark.slow
def test_a_cluster_that_asks_for_a_token_is_one_line_naming_the_fix(token_head, tmp_path):
    """Ray's core retries a refused join for 20 s, a warning a second on standard error; the
    user gets one line saying what is wrong and what to set."""
    import soundfile

    address, env = token_head
    feed = tmp_path / "quiet.wav"
    soundfile.write(str(feed), np.zeros(16000, np.float32), 16000)
    result = _cli(env, "listen", "--cluster", address, feed, "--model", TINY_LID, "--ui", "none")
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "token authentication" in lines[0] and "RAY_AUTH_TOKEN" in lines[0], lines[0]


def test_a_refused_join_names_the_token_and_a_silent_one_suggests_it(monkeypatch):
    from streamlid.cluster.connection import unreachable_message

    refused = unreachable_message(
        "10.0.0.5:6379",
        ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379"),
        "gcs_client.cc:210: Unauthenticated: RPC error: InvalidAuthToken: missing\n",
        "check the address",
    )
    assert refused.startswith("The Ray cluster at '10.0.0.5:6379' refused this process")
    assert "RAY_AUTH_MODE=token" in refused and "check the address" not in refused
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    silent = unreachable_message(
        "ray://head:10001", ConnectionError("ray client connection timeout"), "", "check it"
    )
    assert silent.startswith("Cannot reach the Ray cluster at 'ray://head:10001'")
    assert "check it" in silent and "RAY_AUTH_MODE=token" in silent
    # RAY_AUTH_MODE=token with no token at all: Ray's own error, not one of the usual three.
    missing = ray.exceptions.AuthenticationError("Authentication token is missing")
    assert "refused this process" in unreachable_message("h:6379", missing, "", "check it")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # a token is given: it is not the reason
    assert "RAY_AUTH_MODE" not in unreachable_message(
        "ray://head:10001", ConnectionError("ray client connection timeout"), "", "check it"
    )
