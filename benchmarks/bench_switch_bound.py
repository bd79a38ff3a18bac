"""How fast could any switch rule be with the trained test model? The bound, not a schedule.

bench_switches.py measures what the engine's schedule and smoother report. This script asks what
the model itself allows: on the same kind of mixed streams (espeak-ng speech switching language
without a pause), it classifies the 3 s window ending at every quarter second around each
switch, and its last 1.5 s (the tail the smoother re-checks), as if the schedule looked at
both at every quarter second (four windows and four tails a second: 8x the fixed hop's passes).
For each switch rule it prints when the rule would first report the newcomer (median, p90,
max, share within 2.5 s, switches it never reports within 3.5 s), and how often the same rule
fires for a wrong language inside the turns (share of quarter-second looks there), where a
single wrong look is a wrong change on screen.

    python benchmarks/bench_switch_bound.py                  # tune texts, seed 2
    python benchmarks/bench_switch_bound.py --seed 3
    python benchmarks/bench_switch_bound.py --texts eval     # the reported streams
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bench_switches as streams
import numpy as np

STEP_S = 0.25  # looks at every quarter second: the live schedule's shortest hop
AROUND_S = 3.5  # looks up to this long after a switch belong to it; later ones are inside
WINDOW_S, TAIL_S = 3.0, 1.5
CLEAR_P, CLEAR_MARGIN = 0.5, 0.2  # the smoother's defaults for naming a language clearly
LEAN_P = 0.05  # "the window leans to it": gives the tail's language at least this
SURE_P = 0.8  # `--sure-tail` at 0.8: one tail this sure of a newcomer switches alone


@dataclass(frozen=True)
class Look:
    window: np.ndarray  # probabilities of the 3 s window ending here
    tail: np.ndarray  # and of its last 1.5 s on its own


def clear(probs: np.ndarray) -> int | None:
    order = np.argsort(probs)[::-1]
    top, second = probs[order[0]], probs[order[1]]
    return int(order[0]) if top >= CLEAR_P and top - second >= CLEAR_MARGIN else None


def top(probs: np.ndarray) -> int:
    return int(np.argmax(probs))


# A rule sees the look now, the look half a second earlier (None at a turn's first looks) and
# the current language; it returns the language it would switch to, or None.
Rule = Callable[[Look, "Look | None", int], "int | None"]


def _new(language: int | None, current: int) -> int | None:
    return language if language is not None and language != current else None


def one_clear_tail(now: Look, before: Look | None, current: int) -> int | None:
    return _new(clear(now.tail), current)


def one_clear_window(now: Look, before: Look | None, current: int) -> int | None:
    return _new(clear(now.window), current)


def clear_tail_leaning_window(now: Look, before: Look | None, current: int) -> int | None:
    language = _new(clear(now.tail), current)
    return language if language is not None and now.window[language] >= LEAN_P else None


def two_clear_windows(now: Look, before: Look | None, current: int) -> int | None:
    language = _new(clear(now.window), current)
    return language if before is not None and clear(before.window) == language else None


def two_clear_tails(now: Look, before: Look | None, current: int) -> int | None:
    language = _new(clear(now.tail), current)
    return language if before is not None and clear(before.tail) == language else None


def two_clear_tails_window_unsure(now: Look, before: Look | None, current: int) -> int | None:
    """The smoother's row of tails: two clear tails half a second apart, unless the whole
    window still names the current language clearly."""
    language = two_clear_tails(now, before, current)
    return language if clear(now.window) != current else None


def row_or_sure_tail(now: Look, before: Look | None, current: int) -> int | None:
    """The smoother with `--sure-tail 0.8`: its row of tails, or one tail that names the
    newcomer at least SURE_P (and clearly)."""
    sure = _new(clear(now.tail), current)
    if sure is not None and now.tail[sure] >= SURE_P:
        return sure
    return two_clear_tails_window_unsure(now, before, current)


def clear_tail_then_top(now: Look, before: Look | None, current: int) -> int | None:
    language = None if before is None else _new(clear(before.tail), current)
    return language if language is not None and top(now.tail) == language else None


RULES: dict[str, Rule] = {
    "one look: clear tail": one_clear_tail,
    "one look: clear window": one_clear_window,
    "one look: clear tail, window >= 0.05": clear_tail_leaning_window,
    "two clear windows 0.5 s apart": two_clear_windows,
    "two clear tails 0.5 s apart": two_clear_tails,
    "  ... window not naming old clearly": two_clear_tails_window_unsure,
    "  ... or one tail >= 0.8 (--sure-tail)": row_or_sure_tail,
    "clear tail, then its top 0.5 s later": clear_tail_then_top,
}


def looks_for(model, path: Path, truth: list[tuple[float, str]], labels: list[str]):
    """(kind, turn, seconds into the turn, language before, language now, Look) at every
    quarter second: 'switch' up to AROUND_S after a switch, 'inside' later in a turn."""
    import soundfile

    audio, _ = soundfile.read(str(path), dtype="float32")
    rate = streams.RATE_HZ
    ends_s = [start for start, _ in truth[1:]] + [len(audio) / rate - 0.5]
    for turn, ((start_s, code), end_s) in enumerate(zip(truth, ends_s, strict=True)):
        before = labels.index(truth[turn - 1][1]) if turn else None
        for into_s in np.arange(0.0, end_s - start_s + 1e-9, STEP_S):
            t_s = start_s + float(into_s)
            if t_s < WINDOW_S + 0.5:
                continue
            kind = (
                "switch" if turn and into_s <= AROUND_S else "inside" if into_s > AROUND_S else ""
            )
            if not kind:
                continue
            end = round(t_s * rate)
            window, tail = (
                audio[end - round(WINDOW_S * rate) : end],
                audio[end - round(TAIL_S * rate) : end],
            )
            probs = model.classify([window, tail])
            yield kind, turn, round(float(into_s), 2), before, labels.index(code), Look(*probs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", choices=["eval", "tune"], default="tune")
    parser.add_argument("--seed", type=int, help="stream draw (default 1 for eval, 2 for tune)")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--model", type=Path, default=streams.TINY_LID)
    args = parser.parse_args()

    from streamlid.classifier import Classifier

    streams.TEXTS = streams.TUNE_TEXTS if args.texts == "tune" else streams.EVAL_TEXTS
    seed = args.seed if args.seed is not None else (2 if args.texts == "tune" else 1)
    model = Classifier(str(args.model), device="cpu", dtype="float32", announce=lambda m: None)
    labels = list(model.labels)
    rng = np.random.default_rng(seed)
    switches: dict[tuple[int, int], dict[float, tuple[int, int, Look]]] = {}
    inside: dict[tuple[int, int], dict[float, tuple[int, Look]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        drawn = [streams.mixed_stream(Path(folder), rng, 6) for _ in range(args.streams)]
        for s, (path, truth) in enumerate(drawn):
            for kind, turn, into_s, before, now, look in looks_for(model, path, truth, labels):
                if kind == "switch":
                    switches.setdefault((s, turn), {})[into_s] = (before, now, look)
                else:
                    inside.setdefault((s, turn), {})[into_s] = (now, look)

    gap_s = 2 * STEP_S
    print(
        f"{len(switches)} switches without a pause, {args.texts} texts, seed {seed}, "
        f"{args.model.name}; a 3 s window and its 1.5 s tail at every {STEP_S} s"
    )
    print(
        f"{'rule':38} {'median':>7} {'p90':>6} {'max':>6} {'≤2.5s':>6} {'never':>6} "
        f"{'wrong looks':>12}"
    )
    for name, rule in RULES.items():
        delays, never = [], 0
        for looks in switches.values():
            hit = None
            for into_s in sorted(looks):
                before_lang, now_lang, look = looks[into_s]
                earlier = looks.get(round(into_s - gap_s, 2))
                if rule(look, None if earlier is None else earlier[2], before_lang) == now_lang:
                    hit = into_s
                    break
            if hit is None:
                never += 1
            else:
                delays.append(hit)
        wrong = total = 0
        for looks in inside.values():
            for into_s, (now_lang, look) in looks.items():
                earlier = looks.get(round(into_s - gap_s, 2))
                total += 1
                wrong += rule(look, None if earlier is None else earlier[1], now_lang) is not None
        n = len(delays) + never
        median = statistics.median(delays) if delays else float("nan")
        p90 = float(np.percentile(delays, 90)) if delays else float("nan")
        within = sum(d <= 2.5 for d in delays) / n if n else 0.0
        print(
            f"{name:38} {median:6.2f}s {p90:5.2f}s {max(delays, default=0):5.2f}s "
            f"{within:6.0%} {never:6d} {wrong:5d} {wrong / max(total, 1):6.2%}"
        )


if __name__ == "__main__":
    main()
