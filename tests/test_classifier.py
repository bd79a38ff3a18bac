"""Classifier: loads checkpoints through streamlid's own loader and turns windows into
probabilities. The models are random (tiny sizes, real mms-lid-256 shape and preprocessing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from modelfactory import MMS_SHAPE, TEST_LABELS, build_checkpoint

from streamlid.classifier import Classifier
from streamlid.errors import ConfigError, ModelLoadError

SAMPLE_RATE_HZ = 16000


def quiet(message: str) -> None:
    pass


def load(folder: Path | str, **kwargs) -> Classifier:
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("dtype", "float32")
    return Classifier(str(folder), announce=quiet, **kwargs)


@pytest.fixture(scope="module")
def windows() -> list[np.ndarray]:
    """Different audio of different lengths (the feature extractor normalises each)."""
    rng = np.random.default_rng(7)
    t = np.arange(3 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    tone = (0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    return [
        rng.normal(0, 0.1, 3 * SAMPLE_RATE_HZ).astype(np.float32),
        tone,
        rng.normal(0, 0.3, 3 * SAMPLE_RATE_HZ).astype(np.float32) * np.linspace(0, 1, len(t)),
        rng.normal(0, 0.05, SAMPLE_RATE_HZ).astype(np.float32),  # an early (1 s) window
        tone[: 2 * SAMPLE_RATE_HZ],
    ]


def test_loads_the_tiny_checkpoint_with_its_labels(classifier):
    assert classifier.labels == TEST_LABELS
    assert classifier.info.labels == TEST_LABELS
    assert classifier.device == "cpu"
    assert classifier.dtype == "float32"


def test_labels_come_from_id2label_in_id_order(tmp_path):
    labels = ("spa", "haw", "eng")
    folder = build_checkpoint(tmp_path / "m", labels=labels)
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "spa", "1": "haw", "2": "eng"}
    assert load(folder).labels == labels


def test_default_device_and_dtype_resolve_to_something_concrete(tiny_model_dir):
    loaded = Classifier(str(tiny_model_dir), announce=quiet)
    assert loaded.device == "cpu"  # the tests run without a GPU
    assert loaded.dtype in ("float32", "bfloat16")
    probs = loaded.classify([np.zeros(SAMPLE_RATE_HZ, np.float32)])
    assert probs.shape == (1, len(TEST_LABELS))


def test_probabilities_have_one_row_per_window_and_sum_to_one(classifier, windows):
    probs = classifier.classify(windows)
    assert probs.shape == (len(windows), len(TEST_LABELS))
    assert probs.dtype == np.float32
    assert np.all(probs >= 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_no_windows_gives_an_empty_result(classifier):
    assert classifier.classify([]).shape == (0, len(TEST_LABELS))


def test_different_audio_gives_different_answers(classifier, windows):
    """Guards the tests below: equal results must not come from a model that ignores input."""
    probs = classifier.classify(windows[:3])
    assert not np.allclose(probs[0], probs[1], atol=1e-6)


def test_result_does_not_depend_on_batch_composition(classifier, windows):
    alone = np.stack([classifier.classify([w])[0] for w in windows])
    together = classifier.classify(windows)
    reversed_ = classifier.classify(windows[::-1])[::-1]
    repeated = classifier.classify([windows[1]] * 3 + [windows[3]])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(reversed_, alone, atol=1e-5)
    np.testing.assert_allclose(repeated[:3], np.stack([alone[1]] * 3), atol=1e-5)
    np.testing.assert_allclose(repeated[3], alone[3], atol=1e-5)


def test_loudness_does_not_matter(classifier, windows):
    """The feature extractor normalises each window (do_normalize), as the real model does."""
    base = classifier.classify([windows[1]])[0]
    louder = classifier.classify([windows[1] * 3.0])[0]
    np.testing.assert_allclose(base, louder, atol=1e-4)


def test_language_subset_renormalises_over_the_subset(tiny_model_dir, classifier, windows):
    subset = ("deu", "eng", "yue")
    restricted = load(tiny_model_dir, languages=subset)
    assert restricted.labels == subset  # in the order asked for
    full = classifier.classify(windows)
    columns = [TEST_LABELS.index(code) for code in subset]
    expected = full[:, columns] / full[:, columns].sum(axis=1, keepdims=True)
    got = restricted.classify(windows)
    assert got.shape == (len(windows), len(subset))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_two_letter_codes_map_to_iso_639_3(tiny_model_dir):
    assert load(tiny_model_dir, languages=["en", "fr", "de"]).labels == ("eng", "fra", "deu")


def test_codes_are_matched_case_and_space_insensitively(tiny_model_dir):
    assert load(tiny_model_dir, languages=[" ENG", "Cmn "]).labels == ("eng", "cmn")


def test_unknown_language_code_lists_close_matches(tiny_model_dir):
    with pytest.raises(ConfigError) as caught:
        load(tiny_model_dir, languages=["eng", "enq"])
    message = str(caught.value)
    assert "'enq'" in message
    assert "eng" in message.split("close matches")[1]


def test_a_single_language_is_not_a_choice(tiny_model_dir):
    with pytest.raises(ConfigError, match="at least two"):
        load(tiny_model_dir, languages=["eng"])


def test_folder_without_safetensors_is_refused(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(tiny_model_dir / name, folder / name)
    torch.save(load_file(tiny_model_dir / "model.safetensors"), folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="safetensors"):
        load(folder)


def test_a_model_that_is_not_an_audio_classifier_is_refused(bert_model_dir):
    with pytest.raises(ModelLoadError, match="not an audio classifier"):
        load(bert_model_dir)


def test_checkpoint_without_preprocessor_config_is_refused(tmp_path, tiny_model_dir):
    folder = tmp_path / "no-preprocessor"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"preprocessor_config\.json"):
        load(folder)


def test_checkpoint_for_another_sampling_rate_is_refused(tmp_path, tiny_model_dir):
    folder = tmp_path / "8k"
    shutil.copytree(tiny_model_dir, folder)
    pre = json.loads((MMS_SHAPE / "preprocessor_config.json").read_text())
    pre["sampling_rate"] = 8000
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    with pytest.raises(ModelLoadError, match="8000 Hz"):
        load(folder)


@pytest.mark.parametrize("name", ["does-not-exist", "./nope", "a/b/c"])
def test_missing_folder_is_a_clear_load_error(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load(tmp_path / name if name == "does-not-exist" else name)


def test_the_weights_file_given_as_the_model_names_its_folder(tiny_model_dir):
    # A stranger passes the weights file itself; it exists, so "does not exist" would lie.
    weights = tiny_model_dir / "model.safetensors"
    with pytest.raises(ModelLoadError) as caught:
        load(weights)
    message = str(caught.value)
    assert "does not exist" not in message
    assert "is a file, not a folder" in message
    assert repr(str(tiny_model_dir)) in message


def test_hub_id_not_in_cache_while_offline_is_a_load_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as caught:
        load("streamlid-tests/no-such-model")
    message = str(caught.value)
    assert "streamlid-tests/no-such-model" in message
    assert "HF_HUB_OFFLINE" in message
    assert "--model FOLDER" in message  # what to do about it


def test_hub_id_not_in_cache_while_offline_is_a_clear_error(run_cli, cli_env, espeak, tmp_path):
    """In a fresh process with HF_HUB_OFFLINE=1 and an empty HF_HOME: no network, one line."""
    env = {**cli_env, "HF_HOME": str(tmp_path / "empty-hf-home")}
    result = run_cli(espeak.wav("en"), "--model", "facebook/mms-lid-256", "--ui", "none", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "facebook/mms-lid-256" in lines[0]
    assert "HF_HUB_OFFLINE" in lines[0]


# -- the real architecture ---------------------------------------------------------------------


def _full_size_labels() -> tuple[str, ...]:
    """256 ISO 639-3 codes: the test labels, then codes from the local-use range qaa-qtz."""
    local_use = [f"q{a}{b}" for a in "abcdefghijklmnopqrst" for b in "abcdefghijklmnopqrstuvwxyz"]
    shape = json.loads((MMS_SHAPE / "config.json").read_text())
    return (TEST_LABELS + tuple(local_use))[: shape["num_labels"]]


@pytest.mark.slow
def test_full_size_model_with_random_weights_classifies_a_window_on_cpu(tmp_path, espeak):
    """The real mms-lid-256 architecture (48 layers, hidden 1280, ~1 B parameters) built from
    its config, saved, loaded through the product's loader and run on one 3 s window."""
    shape = json.loads((MMS_SHAPE / "config.json").read_text())
    labels = _full_size_labels()
    folder = build_checkpoint(tmp_path / "mms-lid-256-random", labels=labels, sizes={})
    saved = json.loads((folder / "config.json").read_text())
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        assert saved[key] == shape[key]

    full = load(folder)
    model_config = full._model.config  # what was really built, not just what was asked for
    assert model_config.num_hidden_layers == 48
    assert model_config.hidden_size == 1280
    n_parameters = sum(p.numel() for p in full._model.parameters())
    assert 0.9e9 < n_parameters < 1.05e9
    assert full.labels == labels

    window = espeak.samples("en")[: 3 * SAMPLE_RATE_HZ]
    assert len(window) == 3 * SAMPLE_RATE_HZ
    probs = full.classify([window])
    assert probs.shape == (1, 256)
    assert np.isfinite(probs).all()
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)


class FakeHub:
    """The Hub client's download call, answering as the Hub would; no network is used."""

    def __init__(self, monkeypatch, *, error: Exception | None = None, files=None) -> None:
        import huggingface_hub

        self.error = error
        self.files = files or {"config.json": 2_000, "model.safetensors": 3_860_000_000}
        self.downloads: list[dict] = []
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)

    def snapshot_download(self, repo_id, **kwargs):
        from huggingface_hub.errors import LocalEntryNotFoundError

        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not in the cache")
        self.downloads.append(kwargs)
        return "/tmp/downloaded"


def fake_hub(monkeypatch, *, error: Exception | None = None, files=None) -> FakeHub:
    from types import SimpleNamespace

    import huggingface_hub

    hub = FakeHub(monkeypatch, error=error, files=files)

    def model_info(api, repo_id, **kwargs):
        if hub.error is not None:
            raise hub.error
        siblings = [SimpleNamespace(rfilename=n, size=b) for n, b in hub.files.items()]
        return SimpleNamespace(siblings=siblings, sha="0" * 40)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    return hub


def _hub_errors() -> dict[str, tuple[Exception, str]]:
    from huggingface_hub.errors import HFValidationError, OfflineModeIsEnabled

    return {
        "offline": (OfflineModeIsEnabled("no connection"), "cannot be reached"),
        "no-route": (ConnectionError("Name or service not known"), "cannot be reached"),
        "missing": (HFValidationError("Repo id must use alphanumeric chars"), "was not found"),
        "other": (RuntimeError("disk full\nmore detail"), "could not be downloaded"),
    }


@pytest.mark.parametrize("case", ["offline", "no-route", "missing", "other"])
def test_download_failures_say_what_went_wrong_and_never_claim_a_download(monkeypatch, case):
    from streamlid.modelfiles import resolve_model_folder

    error, says = _hub_errors()[case]
    hub = fake_hub(monkeypatch, error=error)
    announced: list[str] = []
    with pytest.raises(ModelLoadError, match=says) as caught:
        resolve_model_folder("someone/some-lid", announce=announced.append)
    assert "\n" not in str(caught.value)
    assert announced == []  # "Downloading…" only once a download really starts
    assert hub.downloads == []


def test_a_download_is_announced_with_its_size_and_fetches_only_what_loading_reads(monkeypatch):
    from streamlid.modelfiles import resolve_model_folder

    files = {
        "config.json": 2_000,
        "preprocessor_config.json": 200,
        "model.safetensors": 3_860_000_000,
        "pytorch_model.bin": 3_860_000_000,
        "weights.txt": 100,
        "modeling_evil.py": 100,
    }
    hub = fake_hub(monkeypatch, files=files)
    announced: list[str] = []
    assert str(resolve_model_folder("someone/some-lid", announce=announced.append)) == (
        "/tmp/downloaded"
    )
    (line,) = announced
    assert line.startswith("Downloading someone/some-lid (3.9 GB)")
    (download,) = hub.downloads
    import fnmatch

    fetched = [
        name for name in files if any(fnmatch.fnmatch(name, p) for p in download["allow_patterns"])
    ]
    assert sorted(fetched) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    for shard in ("model-00001-of-00002.safetensors", "model.safetensors.index.json"):
        assert any(fnmatch.fnmatch(shard, p) for p in download["allow_patterns"])


def test_a_hub_model_without_safetensors_is_refused_before_any_download(monkeypatch):
    from streamlid.modelfiles import resolve_model_folder

    hub = fake_hub(monkeypatch, files={"config.json": 2_000, "pytorch_model.bin": 10**9})
    announced: list[str] = []
    with pytest.raises(ModelLoadError, match=r"no \.safetensors weights"):
        resolve_model_folder("someone/some-lid", announce=announced.append)
    assert announced == [] and hub.downloads == []


@pytest.mark.parametrize("offline_env", [True, False])
def test_streamlid_download_never_advises_running_streamlid_download(monkeypatch, offline_env):
    from huggingface_hub.errors import OfflineModeIsEnabled

    from streamlid.modelfiles import resolve_model_folder

    fake_hub(monkeypatch, error=OfflineModeIsEnabled("no connection"))
    if offline_env:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as caught:
        resolve_model_folder("someone/some-lid", announce=lambda m: None, downloading=True)
    message = str(caught.value)
    assert "streamlid download" not in message
    assert "someone/some-lid" in message
    assert ("HF_HUB_OFFLINE" if offline_env else "network") in message


def test_lean_loading_renames_legacy_weight_norm_keys(tiny_model_dir, tmp_path, windows):
    """Checkpoints saved by older transformers (the real mms-lid-256 among them) name the
    positional convolution's weight norm weight_g / weight_v; the pread loader must map them as
    from_pretrained does, or the model would run with random weights there."""
    from safetensors.torch import load_file, save_file

    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_model_dir, legacy)
    tensors = load_file(str(legacy / "model.safetensors"))
    renamed = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in tensors.items()
    }
    assert renamed.keys() != tensors.keys()
    save_file(renamed, str(legacy / "model.safetensors"), metadata={"format": "pt"})
    np.testing.assert_allclose(
        load(legacy).classify(windows), load(tiny_model_dir).classify(windows), atol=1e-6
    )


def unpadded_probabilities(folder: Path, window: np.ndarray) -> np.ndarray:
    """The model's answer for `window` at its own length, straight through transformers."""
    import torch
    from transformers import AutoFeatureExtractor, Wav2Vec2ForSequenceClassification

    extractor = AutoFeatureExtractor.from_pretrained(folder)
    model = Wav2Vec2ForSequenceClassification.from_pretrained(folder).eval()
    features = extractor([window], sampling_rate=SAMPLE_RATE_HZ, return_tensors="pt")
    with torch.inference_mode():
        return torch.softmax(model(**features).logits, dim=-1)[0].numpy()


def test_windows_of_any_length_reach_the_model_in_a_few_lengths(classifier):
    """Each input length the model sees costs the CPU backend cached kernels that are never
    freed, so a live run (windows of every length at speech starts and ends) must not show it
    an unbounded number of lengths."""
    seen = {classifier.input_length(n) for n in range(SAMPLE_RATE_HZ // 4, 3 * SAMPLE_RATE_HZ + 1)}
    assert len(seen) <= 12
    for n in (4001, 21937, 47999, 48000):
        assert n <= classifier.input_length(n) < n + SAMPLE_RATE_HZ // 4


def test_padding_to_an_input_length_does_not_change_the_answer(tiny_model_dir, classifier):
    rng = np.random.default_rng(3)
    for n in (21937, 30001):
        window = rng.normal(0, 0.1, n).astype(np.float32)
        assert classifier.input_length(n) != n  # the window really is padded
        np.testing.assert_allclose(
            classifier.classify([window])[0],
            unpadded_probabilities(tiny_model_dir, window),
            atol=1e-5,
        )


def test_a_model_without_attention_mask_is_never_padded(tmp_path, tiny_model_dir):
    """Without a mask the model would hear the padding, so such a model gets exact lengths."""
    folder = tmp_path / "no-mask"
    shutil.copytree(tiny_model_dir, folder)
    preprocessor = folder / "preprocessor_config.json"
    settings = json.loads(preprocessor.read_text())
    settings["return_attention_mask"] = False
    preprocessor.write_text(json.dumps(settings))
    assert load(folder).input_length(21937) == 21937


def test_a_forward_pass_holds_a_power_of_two_of_windows(classifier, windows):
    """The model's kernel library caches kernels for every input shape it meets, for good: a
    batch of 7 equal windows runs as 4, 2 and 1, and the answers are those of each alone."""
    shapes = []
    hook = classifier._model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_values"].shape)),
        with_kwargs=True,
    )
    try:
        batch = [windows[i % 3] for i in range(7)] + [windows[3]] * 3
        together = classifier.classify(batch)
    finally:
        hook.remove()
    full, early = 3 * SAMPLE_RATE_HZ, SAMPLE_RATE_HZ
    assert sorted(shapes) == sorted([(4, full), (2, full), (1, full), (2, early), (1, early)])
    alone = np.stack([classifier.classify([w])[0] for w in batch])
    np.testing.assert_allclose(together, alone, atol=1e-5)


TINY_LID = Path(__file__).parent / "assets" / "tiny-lid"  # trained: it knows the language


def test_bf16_on_this_cpu_names_the_language_float32_names(espeak):
    """On an Intel Xeon with AMX, the CPU's bf16 kernel for the stand-in's positional
    convolution (96 channels in 8 groups, kernel 16) returned values unrelated to its input,
    and French speech came out German at 0.5-0.7 where float32 said French at 0.8-0.95. Run on
    whatever CPU the tests have; on one with right kernels it holds anyway."""
    speech = np.concatenate([espeak.samples(voice) for voice in ("fr", "en")])
    windows = [speech[i : i + 3 * SAMPLE_RATE_HZ] for i in range(0, len(speech) - 48000, 16000)]
    want = load(TINY_LID, dtype="float32").classify(windows)
    got = load(TINY_LID, dtype="bfloat16").classify(windows)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    assert np.abs(got - want).max() < 0.1


def test_a_convolution_whose_half_kernel_is_wrong_runs_in_float32():
    """The check itself, on any CPU: a Conv1d whose bf16 answer is made wrong is found and
    from then on answers as float32 does; a right one is left alone."""
    import torch

    from streamlid.kernel_check import guard_half_convolutions

    class WrongInHalf(torch.nn.Conv1d):  # what the AMX kernel did: an answer unrelated to x
        def forward(self, x):
            return torch.rand_like(super().forward(x))

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(1, 8, 10, stride=5),
        WrongInHalf(8, 8, 16, padding=8, groups=4),
    ).to(torch.bfloat16)
    assert guard_half_convolutions(model) == ["1"]
    x = torch.randn(1, 1, 4000)
    with torch.inference_mode():
        got = model(x.bfloat16()).float()
        want = torch.nn.functional.conv1d(
            torch.nn.functional.conv1d(x, model[0].weight.float(), model[0].bias.float(), 5),
            model[1].weight.float(),
            model[1].bias.float(),
            padding=8,
            groups=4,
        )
    assert float((got - want).norm() / want.norm()) < 0.02
