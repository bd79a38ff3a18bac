"""What the speech gate costs: detector CPU time per hour of audio, and its effect on how soon
answers come (first answer after speech onset, language-switch delay) with the trained test
model (tests/assets/tiny-lid).

    python benchmarks/bench_gate.py                 # all engines, both parts
    python benchmarks/bench_gate.py --seconds 120   # longer CPU samples

CPU time is the thread CPU time of the gate alone (torch's own threads included would show as
process time; silero runs on the calling thread only), fed 16 kHz audio in 0.1 s chunks as the
frontend does, scaled to one hour. Latencies are stream time, from the engine's events on
espeak-ng recordings run as fast as the model allows (the same scripts as tests/test_behaviour).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's speech and corpus helpers

ENGINES = ("webrtc", "silero", "both")
RATE_HZ = 16000
CHUNK_N = RATE_HZ // 10


def cpu_s_per_hour(samples: np.ndarray, engine: str) -> float:
    from streamlid.gate import GateSettings, build_gate

    gate = build_gate(GateSettings(engine=engine))
    gate.feed(0, samples[:CHUNK_N])  # first call pins threads and warms the model up
    start = time.thread_time()
    for i in range(CHUNK_N, len(samples), CHUNK_N):
        gate.feed(i, samples[i : i + CHUNK_N])
    used_s = time.thread_time() - start
    return used_s * 3600.0 / ((len(samples) - CHUNK_N) / RATE_HZ)


def cpu_table(folder: Path, seconds: float) -> None:
    from corpus import at_level, build_corpus
    from speech import speech

    corpus = build_corpus(folder)
    n = round(seconds * RATE_HZ)
    loop = lambda x: np.tile(x, int(np.ceil(n / len(x))))[:n]  # noqa: E731
    inputs = {
        "speech (espeak, continuous)": loop(at_level(speech("eng", folder), -20.0)),
        "loud noise (white, -24 dBFS)": loop(corpus.nonspeech["white-noise@-24"]),
        "music (plucked melody, -24 dBFS)": loop(corpus.nonspeech["melody-pluck@-24"]),
        "silence (below the energy floor)": np.zeros(n, np.float32),
    }
    print(f"\nGate CPU seconds per hour of audio ({seconds:g} s of each input, one thread)\n")
    print("| input | " + " | ".join(ENGINES) + " |")
    print("|---|" + "---:|" * len(ENGINES))
    for name, samples in inputs.items():
        row = [cpu_s_per_hour(samples, engine) for engine in ENGINES]
        print(f"| {name} | " + " | ".join(f"{v:.0f}" for v in row) + " |")


def latency_table(folder: Path) -> None:
    from harness import ListSink, make_config
    from speech import script

    from streamlid.audio.open import open_source
    from streamlid.classifier import Classifier
    from streamlid.engine import Engine
    from streamlid.events import LanguageChange

    tiny_lid = str(ROOT / "tests" / "assets" / "tiny-lid")
    lid = Classifier(tiny_lid, device="cpu", dtype="float32", announce=lambda m: None)
    scripts = {
        "pause-switches": [("fra", 20), (None, 3), ("deu", 20), ("spa", 15)],
        "back-and-forth": [(None, 1), ("eng", 12), ("fra", 10), ("eng", 10), ("deu", 12)],
        "after-silence": [("deu", 8), (None, 20), ("fra", 8)],
    }
    print("\nStream seconds from each start of speech in a new language to its LanguageChange\n")
    print("| recording | switch | after a pause | " + " | ".join(ENGINES) + " |")
    print("|---|---|---|" + "---:|" * len(ENGINES))
    for name, parts in scripts.items():
        wav, truth = script(parts, folder, name)
        delays: dict[str, list[float | None]] = {}
        for engine in ENGINES:
            sink = ListSink()
            config = make_config(vad_engine=engine)
            Engine(config, [open_source(str(wav), realtime=False)], lid, [sink]).run()
            changes = [c for c in sink.of_type(LanguageChange) if c.language]
            row = []
            previous, paused = None, True
            for seg in truth:
                if seg.language is None:
                    paused = True
                    continue
                if seg.language != previous:
                    hit = [
                        c.t_s
                        for c in changes
                        if c.language == seg.language and c.t_s >= seg.start_s
                    ]
                    row.append(
                        (seg.start_s, seg.language, paused, hit[0] - seg.start_s if hit else None)
                    )
                previous, paused = seg.language, False
            delays[engine] = row
        for i, (start_s, language, paused, _) in enumerate(delays[ENGINES[0]]):
            cells = []
            for engine in ENGINES:
                d = delays[engine][i][3]
                cells.append("never" if d is None else f"{d:.2f}")
            after = "yes" if paused else "no"
            print(f"| {name} | {language} at {start_s:g} s | {after} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per CPU sample")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
        if not args.skip_cpu:
            cpu_table(Path(tmp), args.seconds)
        if not args.skip_latency:
            latency_table(Path(tmp))


if __name__ == "__main__":
    main()
