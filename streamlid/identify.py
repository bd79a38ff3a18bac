"""`streamlid identify`: one language per file, from all of its speech.

A file's answer is the mean of its windows' full probability vectors (every label, not the
rounded top-k a live view shows), so it does not depend on `--top`. No live answer is needed, so
windows do not overlap by default (hop = window): a third of the forward passes of the live 1 s
hop, for the same answer on whole files (tests/test_identify.py shows it on real speech). The
same speech gate and windower as `listen` cut the windows; windows from consecutive files share
forward passes up to `--batch`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .audio import SAMPLE_RATE_HZ
from .audio.feeds import FeedSettings
from .audio.ring import RingBuffer
from .audio.source import Source
from .config import Config
from .errors import AudioSourceError, ConfigError
from .frontend import NONFINITE, Resampler
from .gate import SILENCE_DBFS, SpeechTrack, admitted, build_gate, gate_settings, quiet_advice
from .languages import language_name
from .smoothing import clear_lead
from .windows import Windower

READ_BLOCK_S = 0.5  # no live view to feed: large reads, little Python per second of audio
RING_S = 10.0  # a file source waits for room, so this bounds memory, not what is kept
SOURCE_JOIN_S = 2.0


@dataclass
class FileTally:
    """What one file's windows added up to."""

    spec: str
    prob_sum: np.ndarray
    windows: int = 0
    speech_n: int = 0  # 16 kHz samples the gate called speech
    cut: int = 0  # windows cut from the speech, admitted or not
    loudest_dbfs: float = SILENCE_DBFS  # the loudest gate frame: says when a file is too quiet
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # a damaged file: its answer rests on less


def open_files(
    specs: Sequence[str], feed: FeedSettings, track: int = 0
) -> list[Source | AudioSourceError]:
    """Each file or URL opened and checked now, before the model loads, read as fast as the
    model allows. One that cannot be opened is kept as its error: that file's row says why,
    and the others are still identified."""
    from .audio.open import open_source

    opened: list[Source | AudioSourceError] = []
    for spec in specs:
        try:
            source = open_source(spec, realtime=False, feed=feed, track=track)
        except AudioSourceError as exc:
            opened.append(exc)
            continue
        source.release()  # read one at a time: a thousand files open would run out of fds
        opened.append(source)
    return opened


def speech_windows(
    source: Source,
    config: Config,
    hop_s: float,
    tally: FileTally,
    on_retry: Callable[[str], None] = lambda message: None,
) -> Iterator[np.ndarray]:
    """The windows of a file's speech, in order; counts its speech, errors and warnings into
    `tally`. A URL's retries are said through `on_retry` as they come (from the source's
    thread): it may take a while before one gives up.

    Runs the source's own thread; whoever stops iterating early still ends it (finally)."""
    ring = RingBuffer(round(RING_S * source.sample_rate_hz))
    resample = Resampler(source.sample_rate_hz)
    gate = build_gate(gate_settings(config))
    track = SpeechTrack(keep_s=RING_S)  # each window's speech share, as `listen` admits them
    windower = Windower(config.window, hop_s, config.min_speech, config.pause)

    def speech(windows) -> Iterator[np.ndarray]:
        for window in windows:
            tally.cut += 1
            if admitted(track.measured(window), config.min_speech_share):
                yield window.samples

    def notice(severity: str, message: str) -> None:
        if severity == "error":
            tally.errors.append(message)
        elif severity == "warning":  # e.g. decoding stopped short of the header's length
            # The file's row already names it.
            tally.warnings.append(message.removeprefix(f"{source.description}: "))

    def feed(state: str, reason: str, attempt: int, outage_s: float) -> None:
        if state == "retrying":  # reason: why, and the attempt's number and wait
            tries = config.reconnect_attempts
            most = f"; at most {tries}" if tries >= 0 else ""
            on_retry(f"retrying ({reason}{most})")

    index = 0
    source.connect(ring, notice, feed)
    source.start()
    try:
        block_n = max(1, round(source.sample_rate_hz * READ_BLOCK_S))
        while True:
            chunk = ring.read(block_n, timeout_s=0.5)
            last = chunk is None
            raw = np.zeros(0, np.float32) if last else chunk.samples
            if not np.isfinite(raw).all():
                if NONFINITE not in tally.warnings:  # as `listen` says it, once
                    tally.warnings.append(NONFINITE)
                raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
            samples = resample(raw, last=last)
            frames = gate.feed(index, samples) if len(samples) else []
            if last:
                frames += gate.flush()  # the gate holds its newest frames back
            for frame in frames:
                tally.speech_n += len(frame.samples) if frame.speech else 0
                tally.loudest_dbfs = max(tally.loudest_dbfs, frame.level_dbfs)
                track.add(frame)
                yield from speech(windower.feed(frame.start_index, frame.samples, frame.speech))
            index += len(samples)
            if last:
                yield from speech(windower.flush())
                return
    finally:
        source.stop()
        source.join(SOURCE_JOIN_S)


def identify_files(
    model,
    sources: Sequence[Source | AudioSourceError],
    specs: Sequence[str],
    config: Config,
    *,
    hop_s: float | None = None,
    max_speech_s: float = 0.0,
    on_file: Callable[[int, str], None] = lambda number, spec: None,
    on_retry: Callable[[str, str], None] = lambda spec, message: None,
) -> list[dict]:
    """One result per file, in order (the JSON of `streamlid identify --json`). A file that
    could not be opened (`open_files`) gets its error; `model` may be None when no file could
    be, as there is nothing to classify. `hop_s` defaults to the window: windows side by side.
    `on_retry(spec, message)`: a URL that cannot be read is being retried. `max_speech_s`
    (0: none): an input is answered from its first that much speech, and read no further."""
    hop = config.window if hop_s is None else hop_s
    labels = () if model is None else model.labels
    tallies = [FileTally(spec, np.zeros(len(labels), np.float64)) for spec in specs]
    pending: list[tuple[int, np.ndarray]] = []

    read_whole: list[int] = []  # files whose windows have all been cut

    def classify_pending() -> None:
        if not pending:
            return
        probs = model.classify([samples for _, samples in pending])
        for (number, _), row in zip(pending, probs, strict=True):
            tallies[number].prob_sum += row
            tallies[number].windows += 1
        pending.clear()

    try:
        for number, (spec, source) in enumerate(zip(specs, sources, strict=True)):
            on_file(number + 1, spec)
            if isinstance(source, AudioSourceError):
                tallies[number].errors.append(str(source))
                read_whole.append(number)
                continue
            # closing(): an interrupt in the model still ends the file's source thread at once.
            retry = functools.partial(on_retry, spec)
            windows = speech_windows(source, config, hop, tallies[number], retry)
            with contextlib.closing(windows):  # closed early: its source stops reading
                for samples in windows:
                    pending.append((number, samples))
                    if len(pending) >= config.batch:
                        classify_pending()
                    if enough_speech(tallies[number], max_speech_s):
                        break
            read_whole.append(number)
        classify_pending()
    except KeyboardInterrupt as exc:  # Ctrl-C after an hour of files: keep what was answered
        unanswered = {number for number, _ in pending}
        done = set(read_whole) - unanswered
        for number, tally in enumerate(tallies):
            if number not in done:  # an answer from part of a file is none
                tally.errors.append(INTERRUPTED)
                tally.prob_sum[:], tally.windows = 0.0, 0
        signum = getattr(exc, "signum", signal.SIGINT)
        raise IdentifyInterrupted(
            [result(tally, labels, config) for tally in tallies], signum
        ) from exc
    return [result(tally, labels, config) for tally in tallies]


INTERRUPTED = "not identified: the run was interrupted before this file's end"


def check_max_speech(seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(
            f"--max-speech {seconds:g}: use a number of seconds of speech, such as 60, or 0 "
            "to read every input to its end."
        )


def enough_speech(tally: FileTally, max_speech_s: float) -> bool:
    """True once an input has given `max_speech_s` of speech (never for 0); its answer then
    rests on that, which its row's warning says."""
    if not max_speech_s or tally.speech_n < max_speech_s * SAMPLE_RATE_HZ:
        return False
    heard_s = tally.speech_n / SAMPLE_RATE_HZ
    tally.warnings.append(
        f"answered from its first {heard_s:.0f} s of speech (--max-speech); not read further"
    )
    return True


class IdentifyInterrupted(KeyboardInterrupt):
    """A stop signal (Ctrl-C) while identifying: `results` has every file's row, those read
    whole with their answer, the others with INTERRUPTED as their error."""

    def __init__(self, results: list[dict], signum: int) -> None:
        super().__init__(signum)
        self.results = results
        self.signum = signum


def result(tally: FileTally, labels: Sequence[str], config: Config) -> dict:
    """A file's answer: the best label of the mean probability vector, and the top few. It is
    confident as `listen` names a language: with --min-confidence and a lead of --min-margin
    over the runner-up, both of the whole vector."""
    mean = tally.prob_sum / tally.windows if tally.windows else tally.prob_sum
    order = np.argsort(-mean, kind="stable")[: config.top] if tally.windows else []
    top = [
        {
            "code": labels[i],
            "name": language_name(labels[i]),
            "probability": round(float(mean[i]), 6),
        }
        for i in order
    ]
    best = top[0] if top else None
    error = tally.errors[0] if tally.errors else None
    name = best["name"] if best else None
    if (
        not best and not error
    ):  # an error says why in its own field; a file read whole, what it held
        name = no_answer(tally, config)
    return {
        "file": tally.spec,
        "language": best["code"] if best else None,
        "name": name,
        "probability": best["probability"] if best else None,
        "confident": bool(
            best and clear_lead(mean, config.min_confidence, config.min_margin) is not None
        ),
        "speech_s": round(tally.speech_n / SAMPLE_RATE_HZ, 3),
        "windows": tally.windows,
        "top": top,
        "error": error,
        "warning": "; ".join(tally.warnings) or None,
    }


def no_answer(tally: FileTally, config: Config) -> str:
    """Why a file read whole has no language: no speech, too little, or none of its windows
    mostly speech to the detector; and when the file is quiet next to --energy-floor (frames
    below it are never speech), that it is, and what to change."""
    speech_s, min_speech_s = tally.speech_n / SAMPLE_RATE_HZ, config.min_speech
    if speech_s <= 0:
        why = "no speech found"
    elif speech_s < min_speech_s:
        why = f"too little speech ({speech_s:.1f} s; --min-speech is {min_speech_s:g} s)"
    elif tally.cut:
        why = (
            f"too little clear speech ({speech_s:.1f} s in all, but none of its {tally.cut} "
            f"windows was at least {config.min_speech_share:.0%} speech to the detector, "
            "as --min-speech-share asks)"
        )
    else:
        why = (
            f"too little speech in one stretch ({speech_s:.1f} s in all; --min-speech is "
            f"{min_speech_s:g} s)"
        )
    advice = quiet_advice(tally.loudest_dbfs, config.energy_floor)
    return why if advice is None else f"{why}; {advice}"
