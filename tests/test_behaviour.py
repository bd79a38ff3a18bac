"""What a user sees, with a small model that really knows languages (tests/assets/tiny-lid,
trained by tools/train_test_model.py on espeak-ng speech): the right language, switches
reported quickly, and no switch that did not happen.

Speech here is espeak-ng reading sentences the model never heard (it was trained on random
word sequences). The checks are the product's promises, not the model's accuracy figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from harness import ListSink, make_config
from speech import Segment, espeak_missing, script

from streamlid.events import LanguageChange, Prediction

TINY_LID = Path(__file__).parent / "assets" / "tiny-lid"

SWITCH_S = 2.5  # a switch without a pause is reported within this long
AFTER_PAUSE_S = 1.5  # after a pause, the new language within this long of speech onset
FRAME_S = 0.03  # windows end on speech-gate frame edges (30 ms): onset is known to a frame


@pytest.fixture(scope="module")
def lid():
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    if espeak_missing():
        pytest.skip(espeak_missing())
    from streamlid.classifier import Classifier

    return Classifier(str(TINY_LID), device="cpu", dtype="float32", announce=lambda m: None)


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("behaviour")


# The promises are live ones: files run fast, on the live schedule (what --realtime reports
# when the model keeps up), unless a test names another.
LIVE = {"live_schedule": True}
SCHEDULES = {"live": LIVE, "fixed": {"adaptive_hop": False}, "file": {}}


def _run(lid, wav: Path, **overrides) -> ListSink:
    from streamlid.audio.open import open_source
    from streamlid.engine import Engine

    sink = ListSink()
    config = make_config(**{**LIVE, **overrides})
    engine = Engine(config, [open_source(str(wav), realtime=False)], lid, [sink])
    engine.run()
    return sink


def _switches(truth: list[Segment]) -> list[tuple[float, str, bool]]:
    """(time, new language, after a pause) for every start of speech in a new language."""
    out, previous, paused = [], None, True
    for seg in truth:
        if seg.language is None:
            paused = True
            continue
        if seg.language != previous:
            out.append((seg.start_s, seg.language, paused))
        previous, paused = seg.language, False
    return out


def _truth_at(truth: list[Segment], t: float) -> str | None:
    for seg in truth:
        if seg.start_s <= t < seg.end_s:
            return seg.language
    return None


def _check_behaviour(sink: ListSink, truth: list[Segment], model_slips: int = 0) -> None:
    """`model_slips`: changes allowed that answer no real switch, for recordings where the
    stand-in model (93 % right on 3 s windows) is wrong for two windows running; each must be
    put right within the switch delay."""
    changes = [c for c in sink.of_type(LanguageChange) if c.language is not None]
    drops = [c for c in sink.of_type(LanguageChange) if c.language is None]
    switches = _switches(truth)

    # Each real switch is reported, in time, in the right language.
    reports = []
    for t_switch, language, paused in switches:
        limit = (AFTER_PAUSE_S if paused else SWITCH_S) + FRAME_S
        reported = [c for c in changes if c.language == language and c.t_s >= t_switch]
        assert reported, f"switch to {language} at {t_switch} s never reported"
        reports.append(reported[0])
        delay = reported[0].t_s - t_switch
        assert delay <= limit, f"{language} at {t_switch} s reported after {delay:.2f} s"

    # No other switch: every change names the language being spoken, except at most
    # `model_slips` wrong ones, each put right within the switch delay.
    slips = [c for c in changes if c.language != _truth_at(truth, c.t_s - 0.01)]
    assert len(slips) <= model_slips, [(c.t_s, c.language) for c in slips]
    for slip in slips:
        put_right = [c for c in changes if c.t_s > slip.t_s]
        assert put_right and put_right[0].t_s - slip.t_s <= SWITCH_S, "a slip lasted"
        assert put_right[0].language == _truth_at(truth, put_right[0].t_s - 0.01)
    # A slip adds two changes (it, and the one that puts it right), or one where the change
    # that puts it right is a switch's own report (a wrong first guess after a pause).
    corrections = [next(c for c in changes if c.t_s > slip.t_s) for slip in slips]
    extra = sum(1 if any(c is r for r in reports) else 2 for c in corrections)
    assert len(changes) == len(switches) + extra, [(c.t_s, c.language) for c in changes]
    slipped_s = sum(
        next(c.t_s for c in changes if c.t_s > slip.t_s) - slip.since_s for slip in slips
    )
    assert not drops, [(c.t_s, c.previous) for c in drops]

    # The language on screen matches the speech for most of the speech time (the first
    # seconds after each switch excepted, which the delay limits above cover, and the time
    # each allowed slip was on screen, which its own limit above covers).
    decided = sorted((c.t_s, c.language) for c in changes)
    slipped = [(slip.t_s, next(c.t_s for c in changes if c.t_s > slip.t_s)) for slip in slips]
    agree = total = 0
    for seg in truth:
        if seg.language is None:
            continue
        for t in np.arange(seg.start_s, seg.end_s, 0.1):
            if any(a <= t < b for a, b in slipped):
                continue
            shown = [lang for ts, lang in decided if ts <= t]
            total += 1
            agree += bool(shown) and shown[-1] == seg.language
    assert agree / total >= 0.8, f"right language on screen {agree / total:.0%} of speech time"

    # Per-window answers agree with the truth far more often than chance.
    windows = sink.of_type(Prediction)
    right = sum(p.top[0].code == _truth_at(truth, p.t_end_s - 0.01) for p in windows)
    assert right / len(windows) >= 0.7

    # Summary: speech time per language within 2 s of the truth (plus what slips took).
    per_language: dict[str, float] = {}
    for seg in truth:
        if seg.language:
            per_language[seg.language] = per_language.get(seg.language, 0) + seg.end_s - seg.start_s
    found = sink.summary.streams[0].speech_s_by_language
    for language, seconds in per_language.items():
        assert found.get(language, 0.0) == pytest.approx(seconds, abs=2.0 + slipped_s), found


def test_pause_then_switches_are_reported_quickly_and_only_then(lid, speech_dir):
    wav, truth = script(
        [("fra", 20), (None, 3), ("deu", 20), ("spa", 15)], speech_dir, "fra-deu-spa"
    )
    _check_behaviour(_run(lid, wav), truth)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_back_and_forth_without_pauses(lid, speech_dir, schedule):
    wav, truth = script(
        [(None, 1), ("eng", 12), ("fra", 10), ("eng", 10), ("deu", 12)], speech_dir, "mixed"
    )
    # The stand-in model hears Dutch in about 1.5 s of the second English stretch (26-28 s),
    # and the live schedule, which looks again sooner when in doubt, also lands on a shorter
    # Dutch-sounding stretch of the first (4.7-6.2 s); each is put right within the switch delay.
    # The file schedule gives the fixed hop's answers.
    slips = 2 if schedule == "live" else 1
    _check_behaviour(_run(lid, wav, **SCHEDULES[schedule]), truth, model_slips=slips)


class CountingModel:
    """The classifier, counting what it is asked to classify (windows and tails)."""

    def __init__(self, model) -> None:
        self._model = model
        self.labels = model.labels
        self.inputs = 0

    def classify(self, windows):
        self.inputs += len(windows)
        return self._model.classify(windows)


def test_the_file_schedule_gives_the_fixed_hops_answers_for_under_half_the_passes(lid, speech_dir):
    """Fast file mode (the file schedule, the default for files) against every window of the
    fixed 1 s hop, on long turns without pauses: the same switches, the same speech time per
    language within 1 % of all speech, in under half the forward passes."""
    wav, _ = script(
        [(None, 1), ("deu", 50), ("spa", 45), ("fra", 55), ("deu", 40)], speech_dir, "long"
    )
    runs = {}
    for name in ("fixed", "file"):
        counting = CountingModel(lid)
        sink = _run(counting, wav, **{"live_schedule": False, **SCHEDULES[name]})
        changes = [c.language for c in sink.of_type(LanguageChange)]
        runs[name] = (changes, sink.summary.streams[0], counting.inputs)
    (fixed_changes, fixed, fixed_n), (file_changes, file, file_n) = runs["fixed"], runs["file"]
    assert fixed_changes == ["deu", "spa", "fra", "deu"]
    assert file_changes == fixed_changes
    total_s = sum(fixed.speech_s_by_language.values())
    for code in set(fixed.speech_s_by_language) | set(file.speech_s_by_language):
        diff_s = file.speech_s_by_language.get(code, 0.0) - fixed.speech_s_by_language.get(
            code, 0.0
        )
        assert abs(diff_s) <= 0.01 * total_s, (code, fixed.speech_s_by_language, file)
    assert file_n < 0.5 * fixed_n, (file_n, fixed_n)
    assert file.hop_mean_s > 2.0 and fixed.hop_mean_s <= 1.05  # the effective hop, honestly


def test_silence_after_speech_names_no_language_and_changes_nothing(lid, speech_dir):
    wav, _ = script([("deu", 8), (None, 20), ("deu", 6)], speech_dir, "deu-gap")
    sink = _run(lid, wav)
    changes = sink.of_type(LanguageChange)
    assert [c.language for c in changes] == ["deu"]  # named once; the silence changed nothing
    for p in sink.predictions:
        assert not (8.5 < p.t_end_s < 28.0), "a window was classified during silence"
