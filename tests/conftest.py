"""Shared fixtures: a tiny mms-lid-shaped model, espeak-ng speech, and ways to run the pipeline.

Nothing here touches the network, a GPU or a microphone. The model is built once per session
into a temp folder and loaded through streamlid's own loader; speech is synthesised once per
session and cached.
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: this process must never reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import SENTENCES, espeak_available, silence, synthesize, write_wav
from harness import REPO_ROOT, ListSink, make_engine
from modelfactory import build_checkpoint

# -- --runslow ------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """The stop signals act normally in the test process and every process it starts.

    A shell starts a background job (`cmd &`, nohup, some CI runners) with SIGINT or SIGHUP
    ignored; exec'd children inherit an ignored signal, and streamlid keeps a signal ignored
    that was ignored at its launch (as nohup asks). The signal tests would then wait forever.
    A handler here (not SIG_IGN) also means children start with the default action."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) == signal.SIG_IGN:
            signal.signal(number, signal.SIG_DFL)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


# -- model ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Wav2Vec2ForSequenceClassification shaped like mms-lid-256 (tiny sizes,
    ISO 639-3 labels, the real preprocessor settings), saved as safetensors."""
    return build_checkpoint(tmp_path_factory.mktemp("tiny-lid"))


@pytest.fixture(scope="session")
def bert_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny text model (BERT), saved as safetensors: a checkpoint that is not an audio
    classifier."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    folder = tmp_path_factory.mktemp("bert")
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def classifier(tiny_model_dir: Path):
    from streamlid.classifier import Classifier

    return Classifier(str(tiny_model_dir), device="cpu", dtype="float32", announce=lambda m: None)


# -- speech ---------------------------------------------------------------------------------


class Speech:
    """espeak-ng speech, synthesised on first use and cached for the session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self._files: dict[tuple[str, float, float], Path] = {}

    def samples(self, voice: str = "en", text: str | None = None) -> np.ndarray:
        """16 kHz mono float32 speech."""
        text = SENTENCES[voice] if text is None else text
        key = (voice, text)
        if key not in self._cache:
            self._cache[key] = synthesize(text, voice, self.folder)
        return self._cache[key]

    def wav(self, voice: str = "en", lead_s: float = 0.0, tail_s: float = 0.0) -> Path:
        """A 16 kHz mono PCM_16 WAV of `voice` speech with silence before and after."""
        key = (voice, lead_s, tail_s)
        if key not in self._files:
            path = self.folder / f"speech-{voice}-{lead_s:g}-{tail_s:g}.wav"
            audio = np.concatenate([silence(lead_s), self.samples(voice), silence(tail_s)])
            write_wav(path, audio)
            self._files[key] = path
        return self._files[key]


@pytest.fixture(scope="session")
def espeak(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt install espeak-ng); it makes test speech")
    return Speech(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def sound_corpus(tmp_path_factory: pytest.TempPathFactory):
    """Noise, hum, tones, chords, melodies and clicks at three levels, and speech over music
    (tests/corpus.py), synthesised once per session."""
    from corpus import build_corpus

    missing = [tool for tool in ("sox", "ffmpeg", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed; they synthesise the sound corpus")
    return build_corpus(tmp_path_factory.mktemp("corpus"))


# -- running the pipeline -------------------------------------------------------------------


@pytest.fixture
def run_pipeline(classifier) -> Callable[..., ListSink]:
    """Runs the engine to the end of its input on the given sources; returns the events."""

    def run(specs: Iterable[str | Path], **overrides: object) -> ListSink:
        sink = ListSink()
        engine = make_engine(specs, classifier, [sink], **overrides)
        engine.run()
        assert sink.closed
        return sink

    return run


# -- the command line -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for `python -m streamlid` subprocesses: offline, with an empty hub cache."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp_path_factory.mktemp("hf-home")),
        PYTHONPATH=str(REPO_ROOT),
    )
    env.pop("COLUMNS", None)
    return env


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    def run(
        *args: str | Path,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout_s: float = 120.0,
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "streamlid", *map(str, args)],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=env or cli_env,
            timeout=timeout_s,
            cwd=REPO_ROOT,
            check=False,
        )
        return subprocess.CompletedProcess(
            result.args,
            result.returncode,
            result.stdout.decode("utf-8", errors="replace"),
            result.stderr.decode("utf-8", errors="replace"),
        )

    return run
