"""Switch delay and compute: adaptive hop against fixed hops, with the trained test model.

Mixed streams of espeak-ng speech that no test was tuned on (other sentences, languages and
orders, drawn from a seed), switching language without a pause, run through the engine in
fast file mode with tests/assets/tiny-lid and the defaults. For each hop setting it prints the
delay from each switch to the change that reports it (stream time), the wrong changes, and the
forward passes the model ran (windows and re-checked tails). A second table runs one language
for a long stretch and compares forward passes and the answer.

    python benchmarks/bench_switches.py                      # 8 streams, seed 1
    python benchmarks/bench_switches.py --streams 16 --seed 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's espeak-ng helper
TINY_LID = ROOT / "tests" / "assets" / "tiny-lid"
RATE_HZ = 16000

# espeak voice, text: sentences that appear in no test and no training data (which used
# random word sequences).
TEXTS = {
    "eng": (
        "en",
        "Last winter the river froze so hard that the old ferryman walked across it every "
        "morning, carrying bread for the family on the other bank, and nobody in the village "
        "could remember a colder season than that one.",
    ),
    "fra": (
        "fr",
        "Hier soir, la boulangère a fermé sa boutique plus tôt que d'habitude, parce que la "
        "neige tombait si fort que personne ne pouvait traverser la place sans glisser.",
    ),
    "deu": (
        "de",
        "Im letzten Sommer haben wir eine lange Reise mit dem Fahrrad gemacht, von den Bergen "
        "bis zum Meer, und jeden Abend haben wir in einem anderen kleinen Dorf geschlafen.",
    ),
    "spa": (
        "es",
        "Mi abuela cocinaba cada domingo una sopa enorme para toda la familia, y los vecinos "
        "siempre encontraban una excusa para pasar por la casa justo a la hora de comer.",
    ),
    "ita": (
        "it",
        "Quando ero bambino passavo le vacanze in campagna dai nonni, dove si mangiava sotto "
        "il pergolato e la sera si ascoltavano le storie del paese fino a tardi.",
    ),
    "por": (
        "pt",
        "O pescador saiu muito cedo naquela manhã, mas o vento mudou de repente e ele teve de "
        "voltar ao porto antes de conseguir apanhar um único peixe.",
    ),
    "nld": (
        "nl",
        "Op zaterdag gaan we meestal naar de markt om verse groenten te kopen, en daarna "
        "drinken we koffie op het terras bij de oude kerk in het centrum.",
    ),
    "pol": (
        "pl",
        "W zeszłym roku pojechaliśmy nad morze pociągiem, a podróż trwała tak długo, że "
        "zdążyliśmy przeczytać wszystkie książki, które zabraliśmy ze sobą.",
    ),
    "tur": (
        "tr",
        "Geçen hafta sonu arkadaşlarımla birlikte dağa çıktık, yolda yağmur başladı ama "
        "manzara o kadar güzeldi ki kimse geri dönmek istemedi.",
    ),
    "swe": (
        "sv",
        "Varje sommar åker vi till stugan vid sjön, där vi fiskar på morgonen och badar på "
        "eftermiddagen tills solen går ner bakom skogen.",
    ),
}

SETTINGS = {  # name -> config overrides
    "adaptive (default)": {},
    "fixed 1 s hop": {"adaptive_hop": False, "hop": 1.0},
    "fixed 0.25 s hop": {"adaptive_hop": False, "hop": 0.25},
}


@dataclass
class Run:
    delays_s: list[float]
    missed: int
    wrong: int
    windows: int
    passes: int
    tails: int


class CountingModel:
    """The classifier, counting forward passes, windows and tails (shorter inputs)."""

    def __init__(self, model, window_n: int, confirm_n: int) -> None:
        self._model = model
        self.labels = model.labels
        self._confirm_n = confirm_n
        self.passes = self.inputs = self.tails = 0

    def classify(self, windows):
        self.passes += 1
        self.inputs += len(windows)
        self.tails += sum(len(w) == self._confirm_n for w in windows)
        return self._model.classify(windows)


def speech_for(code: str, folder: Path, seconds: float, rng: np.random.Generator) -> np.ndarray:
    from audio_helpers import synthesize

    voice, text = TEXTS[code]
    audio = synthesize(text, voice, folder)
    start = int(rng.integers(0, len(audio) // 2))  # start mid-sentence: a new order each time
    n = round(seconds * RATE_HZ)
    reps = int(np.ceil((start + n) / len(audio)))
    return np.tile(audio, reps)[start : start + n]


def mixed_stream(
    folder: Path, rng: np.random.Generator, segments_n: int
) -> tuple[Path, list[tuple[float, str]]]:
    """Speech switching language without a pause; returns the file and (start_s, language)."""
    codes = list(TEXTS)
    parts, truth, t = [np.zeros(RATE_HZ // 2, np.float32)], [], 0.5
    previous = None
    for _ in range(segments_n):
        code = str(rng.choice([c for c in codes if c != previous]))
        seconds = float(rng.uniform(6.0, 12.0))
        parts.append(speech_for(code, folder, seconds, rng))
        truth.append((t, code))
        t += seconds
        previous = code
    parts.append(np.zeros(RATE_HZ // 2, np.float32))
    import soundfile

    path = folder / f"mixed-{rng.integers(1 << 30)}.wav"
    soundfile.write(str(path), np.concatenate(parts), RATE_HZ, subtype="PCM_16")
    return path, truth


def run(model, path: Path, overrides: dict) -> tuple[list, CountingModel]:
    from streamlid.audio.open import open_source
    from streamlid.config import load_config
    from streamlid.engine import Engine
    from streamlid.events import LanguageChange

    config = load_config(overrides={"ui": "none", **overrides})
    counting = CountingModel(
        model, round(config.window * RATE_HZ), round(config.confirm_window * RATE_HZ)
    )

    class Sink:
        def __init__(self) -> None:
            self.changes: list[LanguageChange] = []

        def handle(self, event) -> None:
            if isinstance(event, LanguageChange):
                self.changes.append(event)

        def close(self) -> None:
            pass

    sink = Sink()
    Engine(config, [open_source(str(path), realtime=False)], counting, [sink]).run()
    return sink.changes, counting


def judge(changes, counting: CountingModel, truth: list[tuple[float, str]]) -> Run:
    def spoken_at(t_s: float) -> str | None:
        current = None
        for start_s, code in truth:
            if start_s <= t_s:
                current = code
        return current

    delays, missed = [], 0
    for i, (start_s, code) in enumerate(truth[1:], start=1):
        end_s = truth[i + 1][0] if i + 1 < len(truth) else float("inf")
        hits = [c.t_s for c in changes if c.language == code and start_s <= c.t_s < end_s]
        if hits:
            delays.append(hits[0] - start_s)
        else:
            missed += 1
    wrong = sum(1 for c in changes if c.language != spoken_at(c.t_s - 0.01))
    return Run(
        delays,
        missed,
        wrong,
        counting.inputs - counting.tails,
        counting.passes,
        counting.tails,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=8, help="mixed streams per setting")
    parser.add_argument("--segments", type=int, default=6, help="languages per stream")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--long-s", type=float, default=300.0, help="single-language stretch")
    parser.add_argument(
        "--max-hop", type=float, nargs="*", default=[], help="also try these --max-hop values"
    )
    args = parser.parse_args()

    from streamlid.classifier import Classifier

    model = Classifier(str(TINY_LID), device="cpu", dtype="float32", announce=lambda m: None)
    settings = dict(SETTINGS)
    for max_hop in args.max_hop:
        settings[f"adaptive, max-hop {max_hop:g}"] = {"max_hop": max_hop}
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        streams = [mixed_stream(folder, rng, args.segments) for _ in range(args.streams)]
        print(
            f"{args.streams} streams x {args.segments - 1} switches without a pause "
            f"(seed {args.seed}), tiny-lid, fast file mode"
        )
        print(
            f"{'setting':28} {'switches':>8} {'median':>7} {'p90':>6} {'max':>6} {'≤2.5s':>6} "
            f"{'missed':>6} {'wrong':>5} {'windows':>7} {'tails':>6} {'passes':>6} {'fwd':>6}"
        )
        for name, overrides in settings.items():
            runs = [judge(*run(model, path, overrides), truth=truth) for path, truth in streams]
            run_rows(name, runs)

        print(f"\none language for {args.long_s:g} s of speech, each of 4 languages")
        print(f"{'setting':28} {'passes':>7} {'windows':>7} {'tails':>6} {'answer':>24}")
        for name, overrides in settings.items():
            passes = windows = tails = 0
            answers = []
            for code in ("eng", "deu", "ita", "tur"):
                audio = speech_for(code, folder, args.long_s, np.random.default_rng(0))
                import soundfile

                path = folder / f"long-{code}.wav"
                soundfile.write(str(path), audio, RATE_HZ, subtype="PCM_16")
                changes, counting = run(model, path, overrides)
                passes += counting.passes
                windows += counting.inputs - counting.tails
                tails += counting.tails
                answers.append("/".join(c.language or "?" for c in changes))
            print(f"{name:28} {passes:7d} {windows:7d} {tails:6d} {' '.join(answers):>24}")


def run_rows(name: str, runs: list[Run]) -> None:
    delays = sorted(d for r in runs for d in r.delays_s)
    n = len(delays) + sum(r.missed for r in runs)
    within = sum(d <= 2.5 for d in delays)
    print(
        f"{name:28} {n:8d} {statistics.median(delays):7.2f} "
        f"{float(np.percentile(delays, 90)):6.2f} {max(delays):6.2f} "
        f"{within / n:6.0%} {sum(r.missed for r in runs):6d} {sum(r.wrong for r in runs):5d} "
        f"{sum(r.windows for r in runs):7d} {sum(r.tails for r in runs):6d} "
        f"{sum(r.passes for r in runs):6d} {sum(r.windows + r.tails for r in runs):6d}"
    )


if __name__ == "__main__":
    main()
