"""Never name a language for what is not speech (issue 9).

The model has no non-speech class, so the gate alone decides. With the default settings and the
trained test model (tests/assets/tiny-lid), through the real engine and the command line: noise,
hum, tones, chords, melodies, clicks and a music bed at several levels get no prediction, no
language change and no speech time credited to any language; clean speech is classified for
at least 90 % of its time; speech over music 10 dB below it still gets the right language."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from corpus import RATE_HZ, SPEECH_DBFS, at_level
from harness import ListSink, make_config

from streamlid.events import LanguageChange

TINY_LID = Path(__file__).parent / "assets" / "tiny-lid"
GAP_S = 1.0  # silence between sounds, so each starts from a closed gate
LANGUAGES = ("eng", "fra", "deu", "spa")
MUSIC_FIRST_S = 3.0  # music alone before speech over music starts


@pytest.fixture(scope="module")
def lid():
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    from streamlid.classifier import Classifier

    return Classifier(str(TINY_LID), device="cpu", dtype="float32", announce=lambda m: None)


def _run(lid, wav: Path, **overrides) -> ListSink:
    from streamlid.audio.open import open_source
    from streamlid.engine import Engine

    sink = ListSink()
    engine = Engine(make_config(**overrides), [open_source(str(wav), realtime=False)], lid, [sink])
    engine.run()
    return sink


def _write(path: Path, samples: np.ndarray) -> Path:
    soundfile.write(str(path), samples, RATE_HZ, subtype="PCM_16")
    return path


def _concatenate(sounds: dict[str, np.ndarray]) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """All sounds in a row with silence between; returns the audio and (start_s, name)."""
    gap = np.zeros(round(GAP_S * RATE_HZ), np.float32)
    parts, starts, t = [], [], 0.0
    for name, samples in sounds.items():
        parts += [samples, gap]
        starts.append((t, name))
        t += (len(samples) + len(gap)) / RATE_HZ
    return np.concatenate(parts), starts


def _sound_at(starts: list[tuple[float, str]], t_s: float) -> str:
    return [name for start, name in starts if start <= t_s][-1]


def _audible_s(samples: np.ndarray) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return loud[0] / RATE_HZ, loud[-1] / RATE_HZ


def test_no_language_is_ever_named_for_sounds_that_are_not_speech(lid, sound_corpus, tmp_path):
    sounds = {**sound_corpus.nonspeech, "music-bed@-20": sound_corpus.music(12.0) * 1.2}
    audio, starts = _concatenate(sounds)
    sink = _run(lid, _write(tmp_path / "nonspeech.wav", audio))

    named = [(_sound_at(starts, p.t_end_s), p.top[0].code) for p in sink.predictions]
    assert not named, f"classified as speech: {named}"
    assert not sink.of_type(LanguageChange)
    summary = sink.summary.streams[0]
    credited = {code: s for code, s in summary.speech_s_by_language.items() if code != "unknown"}
    assert credited == {}
    assert summary.windows == 0
    # The corpus is loud enough for webrtcvad: the neural detector is what keeps it out.
    webrtc = _run(lid, tmp_path / "nonspeech.wav", vad_engine="webrtc")
    assert len(webrtc.predictions) > 100


def test_the_command_line_names_nothing_for_noise_and_music(lid, sound_corpus, tmp_path, run_cli):
    sounds = {k: sound_corpus.nonspeech[k] for k in ("white-noise@-12", "melody-pluck@-24")}
    sounds["brown-noise@-24"] = sound_corpus.nonspeech["brown-noise@-24"]
    audio, _ = _concatenate(sounds)
    wav = _write(tmp_path / "noise-and-music.wav", audio)
    out = tmp_path / "events.jsonl"
    result = run_cli("listen", wav, "--model", TINY_LID, "--jsonl", out, "--ui", "none")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    types = {e["type"] for e in events}
    assert "prediction" not in types and "change" not in types, types
    (summary,) = [e for e in events if e["type"] == "summary"]
    (stream,) = summary["streams"]
    assert stream["speech_s"] == 0.0 and stream["speech_s_by_language"] == {}
    assert stream["duration_s"] > 15.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_clean_speech_is_classified_for_at_least_90_percent_of_its_time(
    lid, sound_corpus, tmp_path, language
):
    voice = sound_corpus.speech_over_music(language, None)
    lead = np.zeros(RATE_HZ, np.float32)
    audio = np.concatenate([lead, voice, lead])
    start_s, end_s = (t + 1.0 for t in _audible_s(voice))
    sink = _run(lid, _write(tmp_path / f"{language}.wav", audio))

    covered = np.zeros(round((end_s - start_s) * 100), bool)  # 10 ms steps of the speech
    for p in sink.predictions:
        a = max(0, round((p.t_start_s - start_s) * 100))
        b = min(len(covered), round((p.t_end_s - start_s) * 100))
        covered[a:b] = True
        assert p.speech_prob > 0.5
    assert covered.mean() >= 0.9, f"{covered.mean():.0%} of the speech was classified"
    summary = sink.summary.streams[0]
    assert summary.speech_s_by_language.get(language, 0.0) >= 0.9 * (end_s - start_s), summary


def _speech_over_music(lid, corpus, folder: Path, language: str, snr_db: float):
    """Music alone for MUSIC_FIRST_S, then `language` over the same music `snr_db` below it;
    returns the events and the speech's audible span (stream seconds)."""
    voice = corpus.speech_over_music(language, None)
    mixed = corpus.speech_over_music(language, snr_db)
    intro = at_level(corpus.music(MUSIC_FIRST_S), SPEECH_DBFS - snr_db)
    audio = np.concatenate([intro, mixed])
    sink = _run(lid, _write(folder / f"{language}-{snr_db:g}.wav", audio))
    start_s, end_s = (t + MUSIC_FIRST_S for t in _audible_s(voice))
    return sink, start_s, end_s


@pytest.mark.parametrize("snr_db", [20.0, 10.0])
@pytest.mark.parametrize("language", LANGUAGES)
def test_speech_over_music_is_classified_and_the_music_alone_is_not(
    lid, sound_corpus, tmp_path, language, snr_db
):
    sink, start_s, end_s = _speech_over_music(lid, sound_corpus, tmp_path, language, snr_db)
    # The first window holds a second of speech (min-speech): none can end much before a
    # second into the speech unless the music alone was let through.
    assert all(p.t_end_s > start_s + 0.9 for p in sink.predictions)
    covered = np.zeros(round((end_s - start_s) * 100), bool)
    for p in sink.predictions:
        covered[
            max(0, round((p.t_start_s - start_s) * 100)) : round((p.t_end_s - start_s) * 100)
        ] = 1
        assert p.speech_prob > 0.5
    assert covered.mean() >= 0.9, f"{covered.mean():.0%} of the speech was classified"
    credited = sum(sink.summary.streams[0].speech_s_by_language.values())
    assert credited == pytest.approx(end_s - start_s, abs=1.0)  # the speech, not the music


@pytest.mark.parametrize("language", LANGUAGES)
def test_speech_over_music_10_db_below_gets_the_right_language(
    lid, sound_corpus, tmp_path, language
):
    sink, _, _ = _speech_over_music(lid, sound_corpus, tmp_path, language, 10.0)
    named = [c.language for c in sink.of_type(LanguageChange) if c.language]
    assert named and named[0] == language, named
    by_language = sink.summary.streams[0].speech_s_by_language
    assert max(by_language, key=by_language.get) == language, by_language


def test_random_bytes_on_stdin_name_no_language(lid, tmp_path, run_cli):
    """Raw s16le noise at full scale (the issue's "random bytes on stdin -> Polish")."""
    noise = np.random.default_rng(9).bytes(10 * RATE_HZ * 2)
    out = tmp_path / "stdin.jsonl"
    result = run_cli("-", "--model", TINY_LID, "--jsonl", out, "--ui", "none", stdin=noise)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert not [e for e in events if e["type"] in ("prediction", "change")]
    (summary,) = [e for e in events if e["type"] == "summary"]
    assert summary["streams"][0]["speech_s_by_language"] == {}
    assert summary["streams"][0]["duration_s"] >= 9.9
