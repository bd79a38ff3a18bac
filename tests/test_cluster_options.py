"""The cluster's options and seams that need no Ray: config checks, the single-machine path
never importing Ray, one clear line when Ray is missing, and the worker's rule for windows a
remote model could not answer (tests/test_cluster.py runs the real cluster)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from harness import REPO_ROOT, ListSink, make_engine

from streamlid.config import cluster_settings, load_config
from streamlid.errors import ConfigError
from streamlid.events import Prediction, Status

pytestmark = pytest.mark.xdist_group("ray")  # one Ray at a time: see scripts/test


def test_cluster_options_from_a_table_and_the_command_line(tmp_path):
    path = tmp_path / "feeds.toml"
    path.write_text(
        'sources = ["a.wav"]\n[cluster]\ningest-actors = 3\nreplicas = "1:4"\n'
        "serve-batch = 16\nserve-batch-wait-ms = 20\n"
    )
    config = load_config(path, {"cluster": "ray://10.0.0.5:10001"})
    settings = cluster_settings(config)
    assert (settings.address, settings.ingest_actors_n) == ("ray://10.0.0.5:10001", 3)
    assert (settings.replicas_min_n, settings.replicas_max_n) == (1, 4)
    assert (settings.batch_max_n, settings.batch_wait_s) == (16, 0.02)
    fixed = cluster_settings(load_config(None, {"cluster": "auto", "replicas": 2}))
    assert (fixed.replicas_min_n, fixed.replicas_max_n) == (2, 2)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("replicas", "4:2", "MIN:MAX"),
        ("replicas", "0", "MIN:MAX"),
        ("replicas", "two", "MIN:MAX"),
        ("cluster", "my-cluster", "ray://HOST:PORT"),
        ("ingest_actors", 0, "1 to 1024"),
        ("serve_batch", 0, "1 to 1024"),
    ],
)
def test_bad_cluster_options_are_one_clear_sentence(key, value, says):
    with pytest.raises(ConfigError, match=says) as caught:
        load_config(None, {key: value})
    assert "\n" not in str(caught.value)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def test_the_single_machine_path_never_imports_ray(espeak, tiny_model_dir):
    wav = espeak.wav("en")
    result = _python(
        "import sys\n"
        "from streamlid.cli import main\n"
        f"code = main(['listen', {str(wav)!r}, '--model', {str(tiny_model_dir)!r}, "
        "'--ui', 'none'])\n"
        "assert code == 0, code\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_without_ray_cluster_says_what_to_install(espeak):
    wav = espeak.wav("en")
    result = _python(
        "import sys\n"
        "sys.modules['ray'] = None  # as if Ray were not installed\n"
        "from streamlid.cli import main\n"
        f"sys.exit(main(['listen', '--cluster', 'auto', {str(wav)!r}, '--ui', 'none']))\n"
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install streamlid[cluster]" in lines[0], result.stderr


def test_a_microphone_is_refused_on_a_cluster():
    result = _python(
        "import sys\nfrom streamlid.cli import main\n"
        "sys.exit(main(['listen', '--cluster', 'auto', 'mic', '--ui', 'none']))\n"
    )
    assert result.returncode == 2
    assert "--cluster listens to files and URLs" in result.stderr


class HalfAnswered:
    """Answers every other call; the others get no answer (rows of NaN), as a remote model
    gives for windows that timed out or whose replica died twice."""

    def __init__(self, labels_n: int = 3) -> None:
        self.labels = tuple(f"l{i}" for i in range(labels_n))
        self.calls_n = 0
        self.inputs_n = 0
        self.unanswered_n = 0

    def classify(self, windows):
        self.calls_n += 1
        self.inputs_n += len(windows)
        out = np.full((len(windows), len(self.labels)), 1.0 / len(self.labels), np.float32)
        out[:, 0] += 0.5
        out /= out.sum(axis=1, keepdims=True)
        if self.calls_n % 2 == 0:
            out[:] = np.nan
            self.unanswered_n += len(windows)
        return out


def test_unanswered_windows_are_counted_as_skipped_never_lost(espeak):
    model = HalfAnswered()
    sink = ListSink()
    make_engine([espeak.wav("en", 0.5, 0.5)], model, [sink], batch=1).run()
    predictions = sink.of_type(Prediction)
    last_status = sink.of_type(Status)[-1]
    assert model.unanswered_n > 0 and predictions
    assert all(np.isfinite(p.confidence) for p in predictions)
    # Each window handed to the model got an answer or was counted as skipped (tail checks
    # are extra inputs: an unanswered tail leaves its window to decide alone; the file
    # schedule hands held windows over several to a call).
    assert last_status.windows == len(predictions)
    assert last_status.skipped_windows > 0
    assert last_status.windows + last_status.skipped_windows <= model.inputs_n
    summary = sink.summary.streams[0]
    assert summary.skipped_windows == last_status.skipped_windows


def test_cluster_status_checks_its_address_first():
    result = _python(
        "import sys\nfrom streamlid.cli import main\n"
        "sys.exit(main(['cluster', 'status', '--address', 'nowhere']))\n"
    )
    assert result.returncode == 2
    assert "ray://HOST:PORT" in result.stderr and "Traceback" not in result.stderr
