"""`streamlid bench`: figures that follow from the forward times, and one-line errors."""

from __future__ import annotations

import io
import json
import math
import shutil

import pytest

from streamlid import cli
from streamlid.bench import BenchReport, make_row, render_table

OPTIONS = ("--device", "cpu", "--dtype", "float32", "--runs", "2")


def bench_json(run_cli, *args) -> dict:
    result = run_cli("bench", *args, *OPTIONS, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_rows_are_consistent_with_their_forward_times(run_cli, tiny_model_dir):
    report = bench_json(
        run_cli, "--model", tiny_model_dir, "--windows", "1,2.5", "--batches", "2,1", "--hop", "0.5"
    )
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["hop_s"] == 0.5 and report["runs"] == 2
    assert [(r["window_s"], r["batch"]) for r in report["rows"]] == [
        (1.0, 2),
        (1.0, 1),
        (2.5, 2),
        (2.5, 1),
    ]
    for row in report["rows"]:
        median = row["forward_median_s"]
        assert 0 < median <= row["forward_p95_s"]
        assert row["per_window_s"] == pytest.approx(median / row["batch"], rel=1e-3)
        assert row["windows_per_s"] == pytest.approx(row["batch"] / median, rel=1e-2)
        assert row["streams_at_hop"] == math.floor(0.5 * row["batch"] / median)
        assert row["device_peak_gb"] is None  # no GPU
    for window_s in (1.0, 2.5):
        rows = [r for r in report["rows"] if r["window_s"] == window_s]
        batch1 = next(r for r in rows if r["batch"] == 1)
        # The smallest hop is a property of the window length: batch 1's median, on every row.
        assert {r["min_hop_s"] for r in rows} == {batch1["forward_median_s"]}
    assert 0 < report["host_model_gb"] <= report["host_peak_gb"]


def test_table_names_the_model_and_every_row(run_cli, tiny_model_dir):
    result = run_cli(
        "bench", "--model", tiny_model_dir, "--windows", "1.5", "--batches", "1,3", *OPTIONS
    )
    assert result.returncode == 0, result.stderr
    assert "cpu/float32" in result.stdout and "streams" in result.stdout
    rows = [line for line in result.stdout.splitlines() if "1.5 s" in line]
    assert len(rows) == 2


@pytest.mark.parametrize("width", [80, 50])
def test_a_narrow_terminal_folds_the_table_rather_than_cutting_figures(width):
    """At 80 columns (any pipe) the header read 'window…'; at 50 every figure read '0.…'."""
    from rich.console import Console

    row = make_row(3.0, 32, [0.154321] * 3, batch1_median_s=0.012345, hop_s=1.0, max_lag_s=3.0)
    report = BenchReport(
        model="tests/assets/tiny-lid",
        device="cpu",
        dtype="bfloat16",
        hop_s=1.0,
        max_lag_s=3.0,
        runs=3,
        load_s=3.1,
        host_model_gb=0.36,
        host_peak_gb=0.39,
        rows=(row,),
    )
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(render_table(report))
    text = console.file.getvalue()
    assert "…" not in text
    # Every cell's characters are all there, read down its column.
    columns = ["".join(cells) for cells in zip(*_table_cells(text), strict=True)]
    for figure in ("0.154s", "207.4", "0.01s", "207"):
        assert any(figure in column.replace(" ", "") for column in columns), (figure, text)


def _table_cells(text: str) -> list[list[str]]:
    """The body rows of a rendered table, split into cells at the box's bars."""
    return [line.strip("│").split("│") for line in text.splitlines() if line.startswith("│")]


def test_a_pass_longer_than_the_max_lag_sustains_no_live_stream():
    row = make_row(3.0, 4, [4.0, 4.2, 4.1], batch1_median_s=1.0, hop_s=1.0, max_lag_s=3.0)
    assert row.streams_at_hop == 0 and row.min_hop_s == 1.0
    row = make_row(3.0, 4, [2.0, 2.0, 2.0], batch1_median_s=1.0, hop_s=1.0, max_lag_s=3.0)
    assert row.streams_at_hop == 2 and row.windows_per_s == 2.0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--batches", "0"), "--batches"),
        (("--batches", "2,x"), "'x' is not a number"),
        (("--windows", "100"), "--windows"),
        (("--windows", ","), "--windows"),
        (("--runs", "0"), "--runs"),
        (("--hop", "5"), "hop"),
        (("--random-weights",), "--random-weights builds mms-lid-256's architecture itself"),
    ],
)
def test_bad_options_fail_in_one_line_before_loading(run_cli, args, named):
    """(--random-weights with --model measured mms-lid-256 and left the model given unsaid.)"""
    result = run_cli("bench", "--model", "/nonexistent/model", *args)
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_random_weights_build_the_architecture_in_memory(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """The shipped shape is the full-size model (minutes on a CPU); the same path with the
    tiny shape: config and preprocessor only, no weights on disk."""
    from streamlid import classifier

    shape = tmp_path / "shape"
    shape.mkdir()
    shutil.copy(tiny_model_dir / "preprocessor_config.json", shape)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    # As the shipped shape: sizes only, so its labels are placeholders (LABEL_0, ...).
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(len(config["id2label"]))}
    config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    (shape / "config.json").write_text(json.dumps(config))
    monkeypatch.setitem(classifier.RANDOM_SHAPES, "mms-lid-256", shape)
    code = cli.main(["bench", "--random-weights", "--windows", "1", "--batches", "1", *OPTIONS])
    assert code == 0
    out, err = capsys.readouterr()
    assert "random weights" in out and "cpu/float32" in out
    assert "not language codes" not in err  # placeholders by design: nothing to warn of


def test_the_full_size_shape_ships_inside_the_package():
    from streamlid.classifier import RANDOM_SHAPES

    config = json.loads((RANDOM_SHAPES["mms-lid-256"] / "config.json").read_text())
    assert config["num_hidden_layers"] == 48
    assert (RANDOM_SHAPES["mms-lid-256"] / "preprocessor_config.json").exists()


@pytest.mark.parametrize("as_json", [True, False])
def test_ctrl_c_shows_the_rows_finished_before_it(tiny_model_dir, monkeypatch, capsys, as_json):
    """A bench of a full-size model on a CPU runs for many minutes; Ctrl-C threw every
    finished row away. A real SIGINT at the 10th forward pass (the second window length's
    batch-2 warm-up): the first length's rows and the second's batch 1 are shown, marked as
    interrupted, and the exit code is still the signal's."""
    import os
    import signal

    from streamlid.classifier import Classifier

    calls: list[int] = []
    classify = Classifier.classify

    def classify_then_interrupt(self, windows):
        calls.append(len(windows))
        if len(calls) == 10:
            os.kill(os.getpid(), signal.SIGINT)  # through streamlid's own signal handler
        return classify(self, windows)

    monkeypatch.setattr(Classifier, "classify", classify_then_interrupt)
    args = ["bench", "--model", str(tiny_model_dir), "--windows", "0.5,1", "--batches", "1,2"]
    code = cli.main([*args, *OPTIONS, *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 128 + signal.SIGINT
    assert "Interrupted." in err
    assert len(calls) == 10  # nothing after the signal
    if as_json:
        report = json.loads(out)
        assert report["interrupted"] is True and report["rows_asked"] == 4
        rows = [(row["window_s"], row["batch"]) for row in report["rows"]]
        assert rows == [(0.5, 1), (0.5, 2), (1.0, 1)]
    else:
        assert "interrupted: 3 of 4 rows" in out
        assert len([line for line in out.splitlines() if "0.5 s" in line]) == 2
