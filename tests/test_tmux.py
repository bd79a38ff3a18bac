"""The real program in a real terminal: tmux runs `streamlid listen` on espeak-ng French with
--realtime, the test reads the screen as a person would (capture-pane), presses keys, and checks
that q ends the run the way Ctrl-C does, with the summary and the terminal given back.

With the trained stand-in model (tests/assets/tiny-lid) the screen must say French; with only
the random tiny model it must name some language (thresholds lowered) and draw the bars.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_LID = REPO_ROOT / "tests" / "assets" / "tiny-lid"
WIDTH, HEIGHT = 100, 30
SCREEN_TIMEOUT_S = 45.0  # model load (several seconds on a busy CPU) plus the first answers
EXIT_TIMEOUT_S = 20.0
FRENCH_TEXT = (  # the suite's French sentence (tests/speech.py), at the same speed
    "Bonjour à tous, nous allons parler aujourd'hui de la ville, du marché et des enfants "
    "qui jouent dans le jardin après l'école pendant que leurs parents travaillent encore au "
    "bureau. "
)
CAPTION = re.compile(r"│ (\S[^·│]*?) · ([a-z]{3}) · (\d+)% confidence")
BAR = re.compile(r"│ \S.*? [a-z]{3} █*[▏▎▍▌▋▊▉]?─*\s+\d+%\s+│")


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt install {tool})")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    for name in ("COLUMNS", "LINES", "TMUX", "NO_COLOR"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def model_args(tmp_path_factory) -> tuple[list[str], str | None]:
    """(model options, the language the screen must name if the model really knows one)."""
    config = TINY_LID / "config.json"
    if config.exists() and "fra" in json.loads(config.read_text()).get("id2label", {}).values():
        return ["--model", str(TINY_LID)], "French"
    from modelfactory import build_checkpoint

    folder = build_checkpoint(tmp_path_factory.mktemp("tiny-random-lid"))
    # random weights: every language near 1/8, so let the smoother name one anyway
    return ["--model", str(folder), "--min-confidence", "0.1", "--min-margin", "0"], None


@pytest.fixture(scope="module")
def french_wav(tmp_path_factory) -> Path:
    _need("espeak-ng")
    path = tmp_path_factory.mktemp("speech") / "bonjour.wav"
    # about a minute: the run must still be going when the test presses q
    subprocess.run(
        ["espeak-ng", "-v", "fr", "-s", "160", "-w", str(path), FRENCH_TEXT * 5],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


_SERVERS_STARTED = itertools.count()


class Tmux:
    """A private tmux server (its own socket), so a user's sessions are never touched."""

    def __init__(self) -> None:
        # One socket per test: `kill-server` returns before the server is gone, and the next
        # test's `new-session` on the same socket could reach the dying one ("server exited
        # unexpectedly", seen under load).
        self.socket = f"streamlid-test-{os.getpid()}-{next(_SERVERS_STARTED)}"
        self.session = "listen"

    def __call__(self, *args: str, timeout_s: float = 10.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=_env(),
            check=False,
        )

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session).stdout

    def history(self) -> str:
        return self("capture-pane", "-p", "-S", "-200", "-t", self.session).stdout

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.session, *keys)

    def wait_screen(self, ok, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        text = self.screen()
        while not ok(text) and time.monotonic() < deadline:
            time.sleep(0.3)
            text = self.screen()
        return text


@pytest.fixture
def tmux():
    _need("tmux")
    server = Tmux()
    yield server
    server("kill-server")


def _redrawn_at(text: str, width: int, height: int) -> bool:
    """The panel spans exactly the new width and the footer sits on the last line."""
    lines = text.splitlines()
    return (
        0 < len(lines) <= height
        and lines[0].startswith("╭")
        and lines[0].endswith("╮")
        and len(lines[0]) == width
        and "q quit" in lines[-1]
    )


def _showing_an_answer(text: str, expected: str | None) -> bool:
    match = CAPTION.search(text)
    if match is None or len(BAR.findall(text)) < 3:
        return False
    return expected is None or match.group(1) == expected


# After the program: its exit status, whether the terminal is back in cooked mode and echoing,
# then a signal for the test; the pane stays open so the test can read it.
AFTER_LISTEN = (
    "echo EXIT=$?; "
    "stty -a | grep -qw -- -icanon && echo TTY=cbreak || echo TTY=cooked; "
    "stty -a | grep -qw -- -echo && echo ECHO=off || echo ECHO=on; "
    "tmux wait-for -S streamlid-done; sleep 600"
)


def _start_listen(
    tmux, wav: Path, args: list[str], wrap: Callable[[str], str] = lambda listen: listen
) -> None:
    """`streamlid listen WAV --realtime ARGS` (as `wrap` runs it) in a new pane, AFTER_LISTEN
    after it."""
    listen = shlex.join(
        [sys.executable, "-m", "streamlid", "listen", str(wav), "--realtime", *args]
    )
    command = f"cd {shlex.quote(str(REPO_ROOT))} && {wrap(listen)}; {AFTER_LISTEN}"
    started = tmux(
        "new-session", "-d", "-s", tmux.session, "-x", str(WIDTH), "-y", str(HEIGHT), command
    )
    assert started.returncode == 0, started.stderr


@pytest.mark.tmux
def test_live_view_in_a_real_terminal_then_q_exits_with_the_summary(tmux, french_wav, model_args):
    _need("tmux")
    args, expected = model_args
    _start_listen(tmux, french_wav, args)

    text = tmux.wait_screen(lambda t: _showing_an_answer(t, expected), SCREEN_TIMEOUT_S)
    assert _showing_an_answer(text, expected), f"no language and bars on screen:\n{text}"
    lines = text.splitlines()
    assert len(lines) <= HEIGHT and max(map(len, lines)) <= WIDTH
    assert "q quit · p pause · r reset" in lines[-1]  # keys are live: stdin is the terminal
    assert "win/s" in text and "latency" in text and "bonjour.wav" in text
    assert "input ▮" in text or "input ▯" in text

    tmux.keys("p")
    paused = tmux.wait_screen(lambda t: "PAUSED" in t, 5)
    assert "PAUSED" in paused
    tmux.keys("p")
    assert "PAUSED" not in tmux.wait_screen(lambda t: "PAUSED" not in t, 5)

    # A smaller terminal: the view redraws to fit it, footer still at the bottom.
    tmux("resize-window", "-t", tmux.session, "-x", "80", "-y", "24")
    small = tmux.wait_screen(lambda t: _redrawn_at(t, 80, 24), 5)
    assert _redrawn_at(small, 80, 24), small
    assert max(map(len, small.splitlines())) <= 80
    assert CAPTION.search(small) or "listening…" in small, small

    tmux.keys("q")
    done = tmux("wait-for", "streamlid-done", timeout_s=EXIT_TIMEOUT_S)
    assert done.returncode == 0
    after = tmux.history()
    assert "EXIT=0" in after, after
    assert "TTY=cooked" in after, after  # cbreak mode was undone
    # At 80 columns the health table is wider than the terminal (it was drawn cut: 'los',
    # '0.0 '), so the summary comes as the plain view's lines.
    summary = after[after.index("Summary (interrupted") :]
    assert re.search(r"bonjour\.wav: \d+\.\d s audio", summary), after
    assert "latency median" in summary
    language = "fra" if expected else "[a-z]{3}"
    assert re.search(rf"^\s+{language}\s+\d+\.\d s", summary, flags=re.M), summary


def test_piped_output_is_plain_lines(french_wav, model_args, tmp_path):
    """No terminal: no live display, no escape codes, one readable line per answer."""
    import soundfile

    args, expected = model_args
    audio, rate = soundfile.read(str(french_wav), dtype="float32")
    short = tmp_path / "short.wav"
    soundfile.write(str(short), audio[: 6 * rate], rate)
    result = subprocess.run(
        [sys.executable, "-m", "streamlid", "listen", str(short), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert re.search(r"^\[short\.wav\] .*now: ", result.stdout, flags=re.M), result.stdout
    assert "Summary (end of input" in result.stdout
    if expected:
        assert "French (fra)" in result.stdout


@pytest.mark.tmux
def test_sighup_under_the_live_view_stops_cleanly_and_gives_the_terminal_back(
    tmux, french_wav, model_args, tmp_path
):
    """A hang-up (the window closed, an ssh session dropped) takes SIGTERM's path: summary,
    exit 129, and the terminal is left as it was found: normal screen, cursor shown, cooked."""
    _need("tmux")
    args, _ = model_args
    pid_file = tmp_path / "streamlid.pid"
    _start_listen(
        tmux,
        french_wav,
        args,
        lambda listen: (
            f"sh -c {shlex.quote(f'echo $$ > {shlex.quote(str(pid_file))}; exec {listen}')}"
        ),
    )
    text = tmux.wait_screen(lambda t: "q quit" in t and "win/s" in t, SCREEN_TIMEOUT_S)
    assert "q quit" in text, text  # the live view is up, keys in cbreak mode
    assert tmux("display", "-p", "-t", tmux.session, "#{alternate_on}").stdout.strip() == "1"

    os.kill(int(pid_file.read_text()), signal.SIGHUP)
    done = tmux("wait-for", "streamlid-done", timeout_s=EXIT_TIMEOUT_S)
    assert done.returncode == 0
    after = tmux.history()
    assert "EXIT=129" in after, after
    assert "TTY=cooked" in after, after
    assert re.search(r"streamlid · interrupted after \d", after), after
    shown = tmux("display", "-p", "-t", tmux.session, "#{alternate_on} #{cursor_flag}")
    assert shown.stdout.split() == ["0", "1"], shown.stdout  # normal screen, cursor visible


@pytest.mark.tmux
@pytest.mark.parametrize("then", ["view", "ctrl-c"])
def test_keys_typed_while_the_model_loads_are_not_echoed_and_the_terminal_comes_back(
    tmux, french_wav, model_args, then
):
    """The terminal is the key reader's from the start: keys typed while the model loads are
    neither echoed (over the loading line and the first frame) nor taken as commands when the
    view starts; and it is given back cooked and echoing however the run ends, a Ctrl-C
    during the load included."""
    _need("tmux")
    args, _ = model_args
    _start_listen(tmux, french_wav, args)
    loading = tmux.wait_screen(lambda t: "Loading model" in t, SCREEN_TIMEOUT_S)
    assert "Loading model" in loading, loading
    tmux.keys("xyzzp")  # p would start the view paused
    # An echo lasts until the spinner's next redraw (a tenth of a second): look at once.
    during = [tmux.screen() for _ in range(3)]
    if "Loading model" not in during[-1]:
        pytest.skip("the model loaded before the keys were typed: nothing to check")
    assert not [screen for screen in during if "xyzz" in screen], during
    if then == "view":
        text = tmux.wait_screen(lambda t: "q quit" in t, SCREEN_TIMEOUT_S)
        assert "q quit" in text, text
        time.sleep(1.0)  # the reader has started
        text = tmux.screen()
        assert "PAUSED" not in text and "xyzz" not in text, text
        tmux.keys("q")
    else:
        tmux.keys("C-c")
    done = tmux("wait-for", "streamlid-done", timeout_s=EXIT_TIMEOUT_S)
    assert done.returncode == 0
    after = tmux.history()
    assert "TTY=cooked" in after and "ECHO=on" in after, after
    assert "xyzz" not in after, after
