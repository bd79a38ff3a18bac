#!/usr/bin/env python3
"""Train a tiny, real spoken-language-identification model for the test suite.

The product runs facebook/mms-lid-256 (a 1B-parameter Wav2Vec2ForSequenceClassification).
Tests must not download it, yet they need a model that really tells languages apart so they
can check behaviour (right language, language switches). This script makes such a stand-in:

* speech is synthesized with ``espeak-ng`` from random sequences of real words
  (``wordfreq.top_n_list``), with varied voice variants, speed and pitch, so the model learns
  the sound of each language rather than memorising sentences;
* the model is the same class and architecture family as the real checkpoint (layer-normed
  conv front end with strides 5,2,2,2,2,2,2 = 50 frames/s, stable layer norm, mean pooling),
  shrunk to a few hundred thousand parameters;
* inputs are preprocessed exactly as the real one (Wav2Vec2FeatureExtractor, 16 kHz,
  zero-mean / unit-variance per input), and labels are ISO 639-3 codes in ``id2label``;
* training has two stages: the conv front end first learns to regress each frame's log-mel
  spectrum (raw-waveform front ends learn far too slowly from labels alone on a CPU budget),
  then the whole model learns the language on random 1.0-3.0 s crops (the product classifies
  1-3 s windows);
* it is evaluated on fresh held-out sentences synthesized with a different seed.

The committed tests/assets/tiny-lid was made with (about 13-15 minutes on one CPU core):

    python tools/train_test_model.py --out tests/assets/tiny-lid --seed 0 --steps 1737

``--steps`` fixes the schedule so the result does not depend on machine speed; without it,
``--minutes`` picks the step count from the measured speed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
import torch.nn.functional as F
import wordfreq
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

SAMPLE_RATE = 16_000
# The real model's shape (a copy of shared/mms/), which the tests' models are built from too.
MMS_SHAPE = Path(__file__).resolve().parents[1] / "streamlid" / "shapes" / "mms-lid-256"

# espeak-ng voice -> ISO 639-3 label. The real checkpoint's id2label uses ISO 639-3 codes, so
# the stand-in does too: code that maps labels to names/flags is exercised the same way.
# "es" must be spelled out: espeak-ng --voices=es lists an mbrola voice first, which may be
# absent; "-v es" picks the built-in one.
LANGUAGES: dict[str, str] = {
    "en": "eng",
    "fr": "fra",
    "de": "deu",
    "es": "spa",
    "it": "ita",
    "pt": "por",
    "nl": "nld",
    "pl": "pol",
    "tr": "tur",
    "sv": "swe",
}

# Voice variants (espeak-ng --voices=variant). A spread of male/female/klatt timbres keeps the
# model from keying on one synthetic voice; "" is the language's default voice, which is what a
# test is most likely to use. Whisper/robot-style variants are left out: they are not speech-like.
# fmt: off
VARIANTS: list[str] = [
    "", "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "adam", "Andy", "Annie", "antonio", "david", "max",
    "michel", "pablo", "paul", "robert", "steph", "linda", "Alicia", "Andrea", "iven",
]
# fmt: on

# Bump when synthesis changes so a stale cache is not reused.
CACHE_VERSION = 2


# --------------------------------------------------------------------------------------------
# Data synthesis
# --------------------------------------------------------------------------------------------


def word_list(lang: str, n: int) -> list[str]:
    """Frequent real words of ``lang``; alphabetic only, because wordfreq also lists clitic
    fragments and digits that espeak would read out in a different way (or as English)."""
    return [w for w in wordfreq.top_n_list(lang, n) if w.isalpha()]


def random_text(words: list[str], rng: np.random.Generator) -> str:
    """A random 'sentence' of real words, with occasional punctuation so espeak produces the
    phrase-final lengthening and pauses of real speech."""
    n = int(rng.integers(12, 36))
    out: list[str] = []
    for i in range(n):
        out.append(str(words[int(rng.integers(len(words)))]))
        if i < n - 1 and rng.random() < 0.08:
            out[-1] += "," if rng.random() < 0.6 else "."
    return " ".join(out) + "."


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Synthesize ``text`` and return 16 kHz mono float32 in [-1, 1].

    ``--stdout`` writes a WAV whose size fields are bogus (streamed), so the 44-byte header is
    parsed by hand for the sample rate (22050 Hz) instead of trusting a WAV reader.
    """
    proc = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    )
    raw = proc.stdout
    if raw[:4] != b"RIFF" or raw[36:40] != b"data":
        raise RuntimeError(f"unexpected espeak-ng output for voice {voice!r}")
    sr = int.from_bytes(raw[24:28], "little")
    pcm = np.frombuffer(raw[44:], dtype="<i2").astype(np.float32) / 32768.0
    return soxr.resample(pcm, sr, SAMPLE_RATE).astype(np.float32)


def trim_silence(x: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence so random crops land on speech, not on espeak's padding."""
    frame = SAMPLE_RATE // 100
    n = len(x) // frame
    if n == 0:
        return x
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(energy / energy.max())
    voiced = np.flatnonzero(db > floor_db)
    if len(voiced) == 0:
        return x
    return x[voiced[0] * frame : (voiced[-1] + 1) * frame]


def synthesize_split(
    langs: list[str], per_lang: int, seed: int, cache_dir: Path
) -> dict[str, list[np.ndarray]]:
    """``per_lang`` random utterances per language, cached on disk (keyed by all inputs)."""
    key = hashlib.sha1(
        json.dumps([CACHE_VERSION, langs, per_lang, seed, VARIANTS]).encode()
    ).hexdigest()[:16]
    path = cache_dir / f"speech-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return {lang: [z[f"{lang}_{i}"] for i in range(per_lang)] for lang in langs}

    out: dict[str, list[np.ndarray]] = {}
    for li, lang in enumerate(langs):
        # One generator per language so adding a language does not change the others' data.
        rng = np.random.default_rng([seed, li])
        words = word_list(lang, 5000)
        utts = []
        for _ in range(per_lang):
            variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
            voice = f"{lang}+{variant}" if variant else lang
            speed = int(rng.integers(120, 200))  # words per minute; espeak default is 175
            pitch = int(rng.integers(25, 80))  # 0-99; default 50
            utts.append(trim_silence(espeak(random_text(words, rng), voice, speed, pitch)))
        out[lang] = utts
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{lang}_{i}": u for lang, us in out.items() for i, u in enumerate(us)})
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written cache
    return out


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def tiny_config(langs: list[str], mms_config: dict) -> Wav2Vec2Config:
    """The mms-lid-256 architecture, shrunk.

    Everything that shapes the *interface* is kept from the real config: the conv strides and
    kernels (320 samples per frame, 50 frames/s, same receptive field), layer-normed conv
    front end, stable layer norm, gelu, mean pooling. Only widths and depth shrink.
    """
    base = mms_config
    labels = [LANGUAGES[lang] for lang in langs]
    return Wav2Vec2Config(
        architectures=["Wav2Vec2ForSequenceClassification"],
        feat_extract_norm=base["feat_extract_norm"],
        feat_extract_activation=base["feat_extract_activation"],
        conv_stride=list(base["conv_stride"]),
        conv_kernel=list(base["conv_kernel"]),
        conv_bias=base["conv_bias"],
        do_stable_layer_norm=base["do_stable_layer_norm"],
        hidden_act=base["hidden_act"],
        layer_norm_eps=base["layer_norm_eps"],
        use_weighted_layer_sum=base["use_weighted_layer_sum"],
        conv_dim=[16, 32, 32, 48, 64, 64, 64],
        hidden_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=192,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=8,
        classifier_proj_size=64,
        # Light regularisation: the data is synthetic and plentiful; layerdrop on a 3-layer
        # model would remove a third of it at random, so it is off.
        hidden_dropout=0.05,
        attention_dropout=0.05,
        activation_dropout=0.0,
        feat_proj_dropout=0.05,
        final_dropout=0.05,
        layerdrop=0.0,
        # SpecAugment-style time masking (on by default in wav2vec2) is cheap augmentation.
        apply_spec_augment=True,
        mask_time_prob=0.05,
        mask_time_length=5,
        num_labels=len(labels),
        id2label={str(i): code for i, code in enumerate(labels)},
        label2id={code: i for i, code in enumerate(labels)},
    )


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


# Frame geometry of the conv front end: its receptive field is 400 samples and its hop 320
# (25 ms / 20 ms at 16 kHz), so a 400-point STFT with hop 320 yields exactly one spectrum per
# model frame.
FRAME_WINDOW = 400
FRAME_HOP = 320
N_MELS = 40


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = FRAME_WINDOW) -> torch.Tensor:
    """Triangular mel filters, shape (n_fft // 2 + 1, n_mels)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    n_bins = n_fft // 2 + 1
    edges_mel = np.linspace(0.0, hz_to_mel(np.array(SAMPLE_RATE / 2)), n_mels + 2)
    edges_hz = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    bin_hz = np.linspace(0.0, SAMPLE_RATE / 2, n_bins)
    fb = np.zeros((n_bins, n_mels), dtype=np.float32)
    for i in range(n_mels):
        lo, mid, hi = edges_hz[i : i + 3]
        rising = (bin_hz - lo) / (mid - lo)
        falling = (hi - bin_hz) / (hi - mid)
        fb[:, i] = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(fb)


def spectral_shape(x: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """Per-frame standardised log-mel spectrum, (batch, N_MELS, frames).

    Standardised per frame (spectral *shape*, not level) because the front end layer-normalises
    every frame over its channels, so it cannot represent absolute level anyway.
    """
    window = torch.hann_window(FRAME_WINDOW)
    spec = torch.stft(x, FRAME_WINDOW, FRAME_HOP, window=window, center=False, return_complex=True)
    logmel = torch.log(spec.abs().pow(2).transpose(1, 2) @ fb + 1e-4).transpose(1, 2)
    logmel = logmel - logmel.mean(dim=1, keepdim=True)
    return logmel / (logmel.std(dim=1, keepdim=True) + 1e-3)


def warm_start_front_end(
    model: Wav2Vec2ForSequenceClassification,
    data: dict[str, list[np.ndarray]],
    langs: list[str],
    fe: Wav2Vec2FeatureExtractor,
    args: argparse.Namespace,
) -> float:
    """Stage 1: teach the conv front end to see a spectrum. Returns the final MSE.

    Trained from scratch on the language labels alone, the raw-waveform front end (7 strided
    convs, each followed by a per-frame LayerNorm) barely moves in a CPU budget: measured, the
    whole model stayed near chance for 800 steps. Regressing the log-mel spectral shape of each
    frame through a throw-away linear head is a dense, easy target that gets it there in a
    couple of minutes on short crops, after which classification learns several times faster.
    """
    rng = np.random.default_rng([args.seed, 2])
    front = model.wav2vec2.feature_extractor
    head = torch.nn.Conv1d(model.config.conv_dim[-1], N_MELS, kernel_size=1)
    opt = torch.optim.AdamW([*front.parameters(), *head.parameters()], lr=3e-3)
    fb = mel_filterbank()
    # 0.5 s crops: long enough for 25 frames, short enough to make each step cheap.
    n = SAMPLE_RATE // 2 + FRAME_WINDOW - 1
    t0 = time.monotonic()
    mse_avg = 0.0
    for step in range(args.front_steps):
        labels = rng.integers(len(langs), size=16)
        waves = []
        for label in labels:
            utts = data[langs[int(label)]]
            waves.append(augment(crop(utts[int(rng.integers(len(utts)))], n, rng), rng))
        x = fe(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")["input_values"]
        target = spectral_shape(x, fb)
        pred = head(front(x))
        frames = min(pred.shape[-1], target.shape[-1])
        loss = F.mse_loss(pred[..., :frames], target[..., :frames])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        mse_avg = 0.98 * mse_avg + 0.02 * loss.item() if step else loss.item()
        if (step + 1) % 200 == 0:
            print(
                f"  front end step {step + 1}/{args.front_steps} spectral mse {mse_avg:.3f} "
                f"{time.monotonic() - t0:.0f}s",
                flush=True,
            )
    return mse_avg


@dataclass
class Batch:
    inputs: torch.Tensor
    labels: torch.Tensor


def crop(utt: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample crop; short utterances are zero-padded at a random offset (the
    product also sees speech that starts or ends inside a window)."""
    if len(utt) >= n:
        start = int(rng.integers(len(utt) - n + 1))
        return utt[start : start + n]
    out = np.zeros(n, dtype=np.float32)
    start = int(rng.integers(n - len(utt) + 1))
    out[start : start + len(utt)] = utt
    return out


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain, a little white noise (20-50 dB SNR) and a small DC offset.

    Gain alone is undone by the per-input normalisation, but it changes the noise ratio; noise
    keeps the model from relying on espeak's perfectly silent gaps.
    """
    x = x * float(10 ** rng.uniform(-1.0, 0.3))
    rms = float(np.sqrt(np.mean(x**2)) + 1e-8)
    snr_db = rng.uniform(20, 50)
    x = x + rng.standard_normal(len(x)).astype(np.float32) * rms * 10 ** (-snr_db / 20)
    x = x + float(rng.uniform(-0.01, 0.01)) * rms
    return x.astype(np.float32)


def make_batch(
    data: dict[str, list[np.ndarray]],
    langs: list[str],
    fe: Wav2Vec2FeatureExtractor,
    batch_size: int,
    rng: np.random.Generator,
) -> Batch:
    """One balanced-at-random batch of equal-length crops (1.0-3.0 s, chosen per batch so no
    padding is needed), normalised by the real feature extractor."""
    n = int(rng.uniform(1.0, 3.0) * SAMPLE_RATE)
    labels = rng.integers(len(langs), size=batch_size)
    waves = []
    for label in labels:
        utts = data[langs[int(label)]]
        waves.append(augment(crop(utts[int(rng.integers(len(utts)))], n, rng), rng))
    feats = fe(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    return Batch(feats["input_values"], torch.as_tensor(labels, dtype=torch.long))


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5% of peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    model: Wav2Vec2ForSequenceClassification,
    data: dict[str, list[np.ndarray]],
    langs: list[str],
    fe: Wav2Vec2FeatureExtractor,
    args: argparse.Namespace,
    budget_s: float,
) -> tuple[int, float]:
    """Stage 2: classify languages. Runs ``args.steps`` steps, or as many as fit in
    ``budget_s`` (speed measured on the first steps, then fixed, so the LR schedule is a proper
    step schedule). Returns (steps run, seconds)."""
    # The projector and classifier are two linear maps back to back; at the config's
    # initializer_range (0.02) each one's gradient is scaled by the other's tiny weights, a
    # saddle that costs hundreds of steps. Start them at the usual 1/sqrt(fan_in) scale.
    for linear in (model.projector, model.classifier):
        torch.nn.init.normal_(linear.weight, std=linear.in_features**-0.5)
    rng = np.random.default_rng([args.seed, 1])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    model.train()
    total = args.steps or 10**9  # provisional until the speed is measured
    warmup = 100
    probe = 30  # < warmup, so the LR of the probe steps does not depend on the provisional total
    t0 = time.monotonic()
    loss_avg = acc_avg = 0.0
    step = 0
    while step < total:
        if not args.steps and step == probe:
            per_step = (time.monotonic() - t0) / probe
            total = max(probe + 1, int(budget_s / per_step))
            print(f"  {per_step * 1000:.0f} ms/step -> {total} steps", flush=True)
        lr = lr_at(step, total, args.lr, warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = make_batch(data, langs, fe, args.batch_size, rng)
        logits = model(batch.inputs).logits
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        acc = (logits.argmax(-1) == batch.labels).float().mean().item()
        loss_avg = 0.98 * loss_avg + 0.02 * loss.item() if step else loss.item()
        acc_avg = 0.98 * acc_avg + 0.02 * acc if step else acc
        step += 1
        if step % 100 == 0 or step == total:
            print(
                f"  step {step}/{total} loss {loss_avg:.3f} acc {acc_avg:.3f} lr {lr:.2e} "
                f"{time.monotonic() - t0:.0f}s",
                flush=True,
            )
    return step, time.monotonic() - t0


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: Wav2Vec2ForSequenceClassification,
    data: dict[str, list[np.ndarray]],
    langs: list[str],
    fe: Wav2Vec2FeatureExtractor,
    seconds: float,
) -> dict[str, float]:
    """Accuracy on consecutive, non-overlapping windows of held-out utterances (clean, as a
    test would feed them); the final partial window is dropped."""
    model.eval()
    n = int(seconds * SAMPLE_RATE)
    result: dict[str, float] = {}
    correct_all = total_all = 0
    for li, lang in enumerate(langs):
        windows = [u[i : i + n] for u in data[lang] for i in range(0, len(u) - n + 1, n)]
        correct = 0
        for i in range(0, len(windows), 64):
            chunk = windows[i : i + 64]
            feats = fe(chunk, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            correct += int((model(feats["input_values"]).logits.argmax(-1) == li).sum())
        result[LANGUAGES[lang]] = correct / max(1, len(windows))
        correct_all += correct
        total_all += len(windows)
    result["overall"] = correct_all / max(1, total_all)
    return result


def print_accuracy(title: str, acc: dict[str, float]) -> None:
    cells = "  ".join(f"{k} {v:.3f}" for k, v in acc.items() if k != "overall")
    print(f"{title}: overall {acc['overall']:.3f}\n  {cells}", flush=True)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder for the checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=12.0, help="training budget (wall clock)")
    p.add_argument("--steps", type=int, default=0, help="exact step count (overrides --minutes)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--front-steps", type=int, default=1500, help="stage-1 (front end) steps")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-utts", type=int, default=120, help="training utterances/language")
    p.add_argument("--eval-utts", type=int, default=60, help="held-out utterances/language")
    p.add_argument("--langs", default=",".join(LANGUAGES), help="espeak voices, comma-separated")
    p.add_argument(
        "--mms-config",
        type=Path,
        default=MMS_SHAPE / "config.json",
        help="real mms-lid-256 config.json (preprocessor_config.json beside it) to copy from",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "streamlid-tiny-lid-cache",
        help="where synthesized audio is cached between runs",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python tools/train_test_model.py " + " ".join(sys.argv[1:] if argv is None else argv)
    langs = [s.strip() for s in args.langs.split(",") if s.strip()]
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        raise SystemExit(f"no ISO 639-3 mapping for {unknown}; add them to LANGUAGES")
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is required (apt-get install espeak-ng)")

    # One thread by default: the script must not starve other work on a 2-core machine, and a
    # single thread also makes CPU results reproducible.
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # transformers' wav2vec2 draws its SpecAugment time masks from NumPy's global RNG.
    np.random.seed(args.seed)
    t_start = time.monotonic()

    print(f"synthesizing speech for {len(langs)} languages ...", flush=True)
    train_data = synthesize_split(langs, args.train_utts, args.seed, args.cache)
    # Held-out data: a different seed gives new word sequences and voice settings.
    eval_data = synthesize_split(langs, args.eval_utts, args.seed + 10_000, args.cache)
    minutes = sum(len(u) for us in train_data.values() for u in us) / SAMPLE_RATE / 60
    print(f"  {minutes:.0f} min of training speech ({time.monotonic() - t_start:.0f}s)")

    mms = json.loads(args.mms_config.read_text())
    # Preprocessing exactly as the real checkpoint's preprocessor_config.json.
    fe = Wav2Vec2FeatureExtractor(
        **json.loads((args.mms_config.parent / "preprocessor_config.json").read_text())
    )
    model = Wav2Vec2ForSequenceClassification(tiny_config(langs, mms))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters", flush=True)

    t_train = time.monotonic()
    print(f"stage 1: front end -> spectrum, {args.front_steps} steps", flush=True)
    front_mse = warm_start_front_end(model, train_data, langs, fe, args)
    print("stage 2: language classification", flush=True)
    budget_s = max(60.0, args.minutes * 60 - (time.monotonic() - t_train))
    steps, _ = train(model, train_data, langs, fe, args, budget_s)
    train_seconds = time.monotonic() - t_train

    acc3 = evaluate(model, eval_data, langs, fe, 3.0)
    acc15 = evaluate(model, eval_data, langs, fe, 1.5)
    print_accuracy("held-out accuracy, 3 s windows", acc3)
    print_accuracy("held-out accuracy, 1.5 s windows", acc15)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("pytorch_model.bin", "model.safetensors"):
        (out / stale).unlink(missing_ok=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    fe.save_pretrained(out)
    labels = [LANGUAGES[lang] for lang in langs]
    metrics = {
        "languages": labels,
        "espeak_voices": langs,
        "params": n_params,
        "accuracy_3s": {k: round(v, 4) for k, v in acc3.items()},
        "accuracy_1_5s": {k: round(v, 4) for k, v in acc15.items()},
        "front_end_steps": args.front_steps,
        "front_end_spectral_mse": round(front_mse, 4),
        "train_steps": steps,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.monotonic() - t_start, 1),
        "seed": args.seed,
        "batch_size": args.batch_size,
        "train_utterances_per_language": args.train_utts,
        "eval_utterances_per_language": args.eval_utts,
        "train_speech_minutes": round(minutes, 1),
        "torch": torch.__version__,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(readme(command, steps, args, labels, n_params, acc3, acc15))
    print(f"saved to {out} ({time.monotonic() - t_start:.0f}s total)")
    return 0


def readme(
    command: str,
    steps: int,
    args: argparse.Namespace,
    labels: list[str],
    n_params: int,
    acc3: dict[str, float],
    acc15: dict[str, float],
) -> str:
    if args.steps:
        reproduce = ""
    else:
        reproduce = (
            f"\nThe time budget resolved to {steps} classification steps; to repeat this exact "
            f"schedule\n(CPU, one thread) regardless of machine speed, add `--steps {steps}`.\n"
        )
    return f"""# tiny-lid: stand-in language-ID model for tests

**Not for real use.** This is a {n_params:,}-parameter `Wav2Vec2ForSequenceClassification`
trained only on `espeak-ng` synthetic speech, so tests can exercise real language
identification (right language, language switches) without downloading
`facebook/mms-lid-256`. It will not recognise real human speech reliably.

Same interface as the real checkpoint: 16 kHz mono input, `Wav2Vec2FeatureExtractor` with
`do_normalize=true`, conv front end with strides 5,2,2,2,2,2,2 (50 frames/s), stable layer
norm, mean pooling, ISO 639-3 labels in `id2label`.

Languages ({len(labels)}): {", ".join(labels)}

Held-out accuracy (fresh random word sequences, different seed): 3 s windows
{acc3["overall"]:.1%}, 1.5 s windows {acc15["overall"]:.1%}; per language in `metrics.json`.

## How it was made

    {command}
{reproduce}
Speech: random sequences of frequent words from `wordfreq`, synthesized by `espeak-ng` with
random voice variants, speed and pitch, resampled to 16 kHz. Training, stage 1: the conv front
end regresses each frame's log-mel spectral shape through a throw-away head (a warm start that
raw-waveform training otherwise lacks); stage 2: language classification on random 1-3 s crops
with gain/noise augmentation, AdamW, cosine schedule. See `tools/train_test_model.py`.
"""


if __name__ == "__main__":
    raise SystemExit(main())
