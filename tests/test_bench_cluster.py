"""benchmarks/bench_cluster.py's smallest cell: it answers windows through the Serve deployment
and leaves no Ray process behind (it starts a local Ray bound to 127.0.0.1 and must stop it)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

# Only looked for, not imported: Ray reads how to treat 127.0.0.1 when it is first imported,
# and the cluster tests in this same process set that up before they import it.
pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="needs Ray (pip install streamlid[cluster])"
    ),
    pytest.mark.xdist_group("ray"),  # with tests/test_cluster.py, in one worker: see scripts/test
]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_cluster.py"
MARK = "STREAMLID_BENCH_CLUSTER_TEST"  # every process Ray starts inherits the environment


def marked_pids(mark: str) -> set[int]:
    """Processes of this user whose environment carries `MARK=mark`."""
    needle = f"{MARK}={mark}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if needle in environ.split(b"\0"):
            pids.add(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_smallest_cell_answers_windows_and_stops_every_ray_process(tmp_path):
    mark = uuid.uuid4().hex
    # Ray's socket paths must stay under ~100 characters: a short folder of our own.
    ray_dir = tempfile.mkdtemp(prefix="rbt", dir="/tmp")
    out = tmp_path / "figures.json"
    env = {**os.environ, MARK: mark, "PYTHONPATH": str(ROOT)}
    args = [
        *("--replicas", "1", "--feeds", "2", "--seconds", "2", "--warmup-s", "0.5"),
        *("--no-overhead", "--num-cpus", "2", "--ray-temp-dir", ray_dir, "--json", str(out)),
    ]
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: set[int] = set()
    left: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            seen |= marked_pids(mark) - {proc.pid}
            time.sleep(0.5)
        output = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for _ in range(20):  # the last of Ray's processes get a moment to be reaped
            left = marked_pids(mark)
            if not left:
                break
            time.sleep(0.5)
        for pid in left:  # a failing run still leaves nothing behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_dir, ignore_errors=True)
    assert proc.returncode == 0, output
    # Ray's processes (GCS, raylet, the Serve controller, a replica, the ingest actor) ran,
    assert len(seen) >= 3, (seen, output)
    # and the benchmark stopped every one of them.
    assert not left, f"Ray processes left running: {sorted(left)}"
    cell = json.loads(out.read_text())["cells"][0]
    assert (cell["replicas"], cell["feeds"]) == (1, 2)
    assert cell["answered"] > 0, output
    assert cell["latency_p50_s"] is not None and cell["latency_p50_s"] > 0
