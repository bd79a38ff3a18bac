#!/usr/bin/env python3
"""Make docs/live-view.svg, the README's picture of the live view, from a real run.

espeak-ng speaks French, pauses, then speaks German; the real pipeline (sources, speech gate,
windows, model, smoother, engine) runs on that recording at real time, as if it were a live
feed, and every event is recorded with its wall time. The events up to a moment during the
German speech are then replayed into the view's state, with the recorded wall clock, and the
view is drawn into a recording rich Console and saved as SVG. Nothing is staged: what the
picture shows is what the terminal showed at that moment.

    python tools/make_screenshot.py                      # tests/assets/tiny-lid if present
    python tools/make_screenshot.py --model facebook/mms-lid-256 --device cuda

Without a model that knows languages (no --model, no tests/assets/tiny-lid) it falls back to
the tiny random test model, with the thresholds lowered so that it names something.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_LID = REPO_ROOT / "tests" / "assets" / "tiny-lid"
RATE_HZ = 16000
PAUSE_S = 2.0
MOMENT = 0.55  # the picture is taken this far into the German speech (--at)

sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the test suite's speech helpers


def speak(language: str, folder: Path):
    """The test suite's sentence in `language`, spoken by espeak-ng, as 16 kHz float32."""
    from speech import speech

    return speech(language, folder)


def event_time(event) -> float | None:
    for name in ("t_end_s", "t_s"):
        value = getattr(event, name, None)
        if value is not None:
            return value
    return None


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, object]] = []

    def handle(self, event) -> None:
        self.events.append((time.monotonic(), event))

    def close(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder or hub id (default: tests/assets/tiny-lid)")
    parser.add_argument("--name", help="how the view names the model (default: as given)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "live-view.svg"))
    parser.add_argument(
        "--at", type=float, default=MOMENT, help="moment of the picture, 0-1 into the German"
    )
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--height", type=int, default=24)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed (apt install espeak-ng)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import soundfile
    from rich.console import Console

    from streamlid.audio.open import open_source
    from streamlid.classifier import Classifier, resolve_model_folder
    from streamlid.config import load_config
    from streamlid.engine import Engine
    from streamlid.ui.render import ViewRenderable
    from streamlid.ui.state import ViewState

    overrides: dict = {"realtime": True, "ui": "none"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, shown_as = args.model, args.name or args.model
        if model is None and (TINY_LID / "config.json").exists():
            model, shown_as = str(TINY_LID), "tests/assets/tiny-lid"
        if model is None:
            sys.path.insert(0, str(REPO_ROOT / "tests"))
            from modelfactory import build_checkpoint

            model = str(build_checkpoint(folder / "tiny-random"))
            shown_as = "tiny random test model"
            overrides.update({"min-confidence": 0.1, "min-margin": 0.0})
            print("no trained model: using random weights (languages will be wrong)")
        labels = json.loads((Path(resolve_model_folder(model)) / "config.json").read_text())
        print(f"model {model} ({len(labels.get('id2label', {}))} languages)")

        french, german = speak("fra", folder), speak("deu", folder)
        pause = np.zeros(int(PAUSE_S * RATE_HZ), np.float32)
        lead = np.zeros(int(0.5 * RATE_HZ), np.float32)
        wav = folder / "bonjour-guten-tag.wav"
        soundfile.write(str(wav), np.concatenate([lead, french, pause, german, lead]), RATE_HZ)
        os.chdir(folder)  # the view names the source as it was given: a short relative path
        german_start_s = (len(lead) + len(french) + len(pause)) / RATE_HZ
        moment_s = german_start_s + args.at * len(german) / RATE_HZ

        config = load_config(overrides=overrides)
        classifier = Classifier(
            str(resolve_model_folder(model)), device=args.device, display_name=shown_as
        )
        info = classifier.info
        recorder = Recorder()
        source = open_source(wav.name, realtime=True)
        engine = Engine(
            config, [source], classifier, [recorder], (shown_as, info.device, info.dtype)
        )
        print(f"running on {wav.name} at real time ({moment_s:.1f} s until the picture)")
        engine.run()
        os.chdir(REPO_ROOT)

    from streamlid.events import LanguageChange

    for _, event in recorder.events:
        if isinstance(event, LanguageChange):
            print(
                f"  {event.t_s:5.1f} s  {event.previous or 'unknown'} -> "
                f"{event.language or 'unknown'} (since {event.since_s:.1f} s)"
            )
    wall = [0.0]
    state = ViewState(top=config.top, timeline_s=config.timeline, clock=lambda: wall[0])
    for at, event in recorder.events:
        t = event_time(event)
        if t is not None and t > moment_s:
            break
        wall[0] = at
        state.handle(event)
    console = Console(
        record=True,
        width=args.width,
        height=args.height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
    )
    console.print(ViewRenderable(state.snapshot(), keys=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(out), title="streamlid listen", clear=False)
    print(console.export_text())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
