"""Microphone capture through sounddevice (PortAudio), with reconnection.

The PortAudio callback only copies into the ring. Everything else (choosing the device, falling
back to its native rate, noticing that it vanished, reopening it) happens in the source's own
supervisor thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import native_stderr
from ..errors import AudioSourceError
from . import SAMPLE_RATE_HZ
from .ring import RingBuffer
from .source import Source

TARGET_RATE_HZ = SAMPLE_RATE_HZ  # opening at the model rate spares a resampling
CALLBACK_BLOCK_S = 0.02  # PortAudio block: 20 ms keeps latency low and callbacks cheap
# No callback for this long: the device may be wedged (PortAudio's ALSA host API can spin
# with the stream still "active" after its device vanished) or merely idle (a PulseAudio
# monitor delivers nothing while nothing plays). Either way no audio is flowing, so reopening
# the stream loses nothing: if that fails, the device is gone. Idle devices that reopen fine
# are checked less and less often.
QUIET_DEVICE_S = 3.0
QUIET_DEVICE_MAX_S = 60.0
CLOSE_TIMEOUT_S = 1.0  # a wedged PortAudio stream may never return from abort()
# A reopen (PortAudio's probes of the device) that takes longer: the audio server does not
# answer (PulseAudio or PipeWire hung, or stopped). The probe may never return, so this is
# said from a timer, not after it.
SLOW_REOPEN_S = 5.0
RETRY_EVERY_S = 1.0
RETRYING_SAID_EVERY_N = 10  # a "retrying" feed state every this many failed reopens
# PortAudio's codes for a format the device refuses (paInvalidChannelCount,
# paInvalidSampleRate, paSampleFormatNotSupported); any other error: the device does not open.
FORMAT_REFUSED_CODES = (-9998, -9997, -9994)
NO_INPUT_DEVICES = (  # `listen mic` and `devices` alike
    "No audio input devices found; check that a microphone is connected and that PulseAudio "
    "or PipeWire is running (`pactl info`), or listen to a file, a URL or - (stdin) instead."
)
_portaudio_lock = threading.Lock()  # PortAudio's device list is global; refresh it alone
_open_streams = 0


def import_sounddevice() -> Any:
    try:
        # Importing starts PortAudio, which probes every ALSA and JACK device it can name and
        # prints its failures ("ALSA lib pcm.c: unknown PCM cards.pcm.rear", on many a laptop).
        with native_stderr.held() as said:
            import sounddevice
        native_stderr.pass_on(said)
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise AudioSourceError(
            f"PortAudio is not available ({exc}); install it (e.g. `apt install libportaudio2`) "
            "or use a file or - (stdin) as the source."
        ) from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    default_rate_hz: float
    hostapi: str
    is_default: bool


def list_input_devices() -> list[InputDevice]:
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AudioSourceError(f"Cannot list audio devices ({exc}).") from None
    result = []
    for info in devices:
        if info["max_input_channels"] > 0:
            result.append(
                InputDevice(
                    index=int(info["index"]),
                    name=str(info["name"]),
                    channels=int(info["max_input_channels"]),
                    default_rate_hz=float(info["default_samplerate"]),
                    hostapi=str(hostapis[info["hostapi"]]["name"]),
                    is_default=int(info["index"]) == default_in,
                )
            )
    return result


def resolve_device(spec: str | None) -> InputDevice:
    """The input device named by `spec`: None for the default, an index, or part of a name."""
    devices = list_input_devices()
    if not devices:
        raise AudioSourceError(NO_INPUT_DEVICES)
    if spec is None or spec == "":
        for device in devices:
            if device.is_default:
                return device
        return devices[0]
    if spec.strip().isdigit():
        index = int(spec)
        for device in devices:
            if device.index == index:
                return device
        raise AudioSourceError(
            f"No input device with index {index}; run `streamlid devices` to list them."
        )
    matches = [d for d in devices if spec.lower() in d.name.lower()]
    exact = [d for d in matches if d.name.lower() == spec.lower()]
    if len(exact) == 1:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AudioSourceError(
            f"No input device matches {spec!r}; run `streamlid devices` to list them."
        )
    names = ", ".join(f"{d.index}: {d.name}" for d in matches[:5])
    raise AudioSourceError(
        f"{spec!r} matches several input devices ({names}); "
        f"give the index, e.g. mic:{matches[0].index}."
    )


def _refuses_format(error: Exception) -> bool:
    """Whether a PortAudioError(text, code, …) says the format, not the device, was refused."""
    args = getattr(error, "args", ())
    return len(args) > 1 and args[1] in FORMAT_REFUSED_CODES


class MicrophoneSource(Source):
    def __init__(self, device_spec: str | None = None) -> None:
        super().__init__()
        self._sd = import_sounddevice()
        self._spec = device_spec
        device = resolve_device(device_spec)
        self._device = device
        self.sample_rate_hz, self._channels = self._choose_format(device)
        self.name = "mic" if device_spec is None else f"mic:{device_spec}"
        self.description = device.name
        self.live = True
        self._stream: Any = None
        self._last_callback = time.monotonic()
        self.callback_overflows = 0  # PortAudio's own input overflows (driver level)
        self._said_other_rate = False  # a reconnection found the device at another rate

    def _choose_format(
        self, device: InputDevice, first_rate_hz: int = TARGET_RATE_HZ
    ) -> tuple[int, int]:
        """`first_rate_hz` (16 kHz: no resampling) mono if the device takes it, else its native
        rate."""
        with native_stderr.held() as said:  # ALSA and PortAudio print lines for each refusal
            chosen, refusal = self._probe_formats(device, first_rate_hz)
        native_stderr.pass_on(said)
        if chosen is not None:
            return chosen
        if not _refuses_format(refusal):
            # Not a format it refuses: the device does not open at all (PulseAudio with no
            # input source left, a microphone switched off), whatever the format.
            raise AudioSourceError(
                f"Input device {device.name!r} cannot be opened ({refusal}); check that the "
                "microphone is connected and switched on (PulseAudio or PipeWire: `pactl list "
                "short sources`), or choose another with mic:INDEX (`streamlid devices`)."
            )
        raise AudioSourceError(
            f"Input device {device.name!r} accepts neither 16 kHz nor its own rate "
            f"({device.default_rate_hz:.0f} Hz) as float32; choose another with mic:INDEX."
        )

    def _probe_formats(
        self, device: InputDevice, first_rate_hz: int
    ) -> tuple[tuple[int, int] | None, Exception]:
        """The first (rate, channels) the device takes, else None and its last refusal."""
        refusal: Exception = AudioSourceError("no format tried")
        for rate in dict.fromkeys((first_rate_hz, TARGET_RATE_HZ, int(device.default_rate_hz))):
            # Two channels first: a host API's own mixdown to one cannot be undone when the
            # pair cancels (a channel in reverse polarity); the ring's mixdown hears it.
            for channels in dict.fromkeys((min(2, device.channels), 1)):
                try:
                    self._sd.check_input_settings(
                        device=device.index, channels=channels, samplerate=rate, dtype="float32"
                    )
                    return (rate, channels), refusal
                except Exception as exc:
                    refusal = exc
        return None, refusal

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # Real-time thread: copy and return. No logging, no locks held while waiting.
        if status.input_overflow:
            self.callback_overflows += 1
        self._last_callback = time.monotonic()
        assert self._ring is not None
        self._ring.write(indata, block=False)

    def _open(self) -> None:
        global _open_streams
        stream = self._sd.InputStream(
            device=self._device.index,
            channels=self._channels,
            samplerate=self.sample_rate_hz,
            dtype="float32",
            blocksize=int(self.sample_rate_hz * CALLBACK_BLOCK_S),
            callback=self._callback,
        )
        self._last_callback = time.monotonic()
        stream.start()
        self._stream = stream
        with _portaudio_lock:
            _open_streams += 1

    def _close_stream(self) -> None:
        global _open_streams
        stream, self._stream = self._stream, None
        if stream is None:
            return

        def close() -> None:
            try:
                stream.abort()
                stream.close()
            except Exception:  # a vanished device may fail to close; it is gone either way
                pass

        # A daemon thread, because a wedged PortAudio stream can block abort() forever; we
        # give up on that stream rather than hang the stop path.
        closer = threading.Thread(target=close, name=f"close-{self.name}", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if not closer.is_alive():
            with _portaudio_lock:
                _open_streams -= 1

    def _lost(self) -> bool:
        """PortAudio marks the stream inactive when its device errors out or disappears."""
        stream = self._stream
        if stream is None:
            return True
        try:
            return not stream.active
        except Exception:
            return True

    def _reopen(self) -> bool:
        """One reconnection attempt, without the two lines ALSA and PortAudio print for each
        probe of a missing device (every second, for as long as it is gone)."""
        hung = threading.Timer(SLOW_REOPEN_S, self._say_hung)
        hung.name, hung.daemon = f"slow-reopen-{self.name}", True  # may outlive a hung probe
        hung.start()
        try:
            with native_stderr.held() as said:
                reopened = self._try_reopen()
        finally:
            hung.cancel()
            hung.join()  # ends at once unless it is saying the warning: no timer outlives this
        native_stderr.pass_on(said)
        return reopened

    def _say_hung(self) -> None:
        """From the timer of a reopen that has not returned: descriptor 2 is given back first,
        or the warning, said on standard error, would go into the hung probe's hold."""
        native_stderr.release()
        self._notice(
            "warning",
            f"Microphone {self._device.name!r} stopped delivering audio and the audio system "
            "does not answer (PulseAudio or PipeWire hung?); waiting for it…",
        )

    def _try_reopen(self) -> bool:
        """Refreshes PortAudio's device list, finds the device, opens it."""
        with _portaudio_lock:
            if _open_streams == 0:
                # PortAudio only sees devices that existed when it started; restart it so a
                # replugged microphone is found (only safe when no other stream is open).
                try:
                    self._sd._terminate()
                    self._sd._initialize()
                except Exception:
                    pass
        try:
            device = resolve_device(self._spec if self._spec else self._device.name)
            # The run's rate first: a device back through another path (a USB microphone
            # replugged, PulseAudio's default moved) may take it though it prefers another.
            rate, channels = self._choose_format(device, first_rate_hz=self.sample_rate_hz)
        except AudioSourceError:
            return False
        if rate != self.sample_rate_hz:
            # The front end's resampler is set for the run's rate: keep trying, and say why
            # once, or "still no microphone" would hide a microphone that is there.
            if not self._said_other_rate:
                self._said_other_rate = True
                self._notice(
                    "warning",
                    f"Microphone {device.name!r} is back, but only at {rate} Hz, not the "
                    f"{self.sample_rate_hz} Hz this run started with; restart streamlid to use "
                    "it.",
                )
            return False
        self._device, self._channels = device, channels
        try:
            self._open()
        except Exception:
            self._close_stream()
            return False
        return True

    def _run(self, ring: RingBuffer) -> None:
        try:
            self._open()
        except Exception as exc:
            raise AudioSourceError(
                f"cannot open input device {self._device.name!r}: {exc}"
            ) from None
        # Reported as a network feed's connection is (FeedState): the summary counts the
        # microphone's reconnects and outage, --alert-down-after and the metrics see it down.
        self._feed("connected", "", 0, 0.0)
        quiet_limit_s = QUIET_DEVICE_S
        while not self._stop.wait(0.1):
            quiet_s = time.monotonic() - self._last_callback
            if quiet_s < QUIET_DEVICE_S:
                quiet_limit_s = QUIET_DEVICE_S  # audio flows: back to prompt checks
            if not self._lost():
                if quiet_s < quiet_limit_s:
                    continue
                self._close_stream()
                if self._reopen():
                    quiet_limit_s = min(2 * quiet_limit_s, QUIET_DEVICE_MAX_S)
                    continue
            self._close_stream()
            self._reconnect(ring)

    def _reconnect(self, ring: RingBuffer) -> None:
        """Reopens the device every RETRY_EVERY_S until it is back. Meanwhile the time since its
        last audio is written as silence, as a network feed's outage is: stream time stays on
        the wall clock (event times after its return stay true) and the speech gate hears the
        outage, so --alert-silence-after raises its alert for a microphone that is gone."""
        silent_since = down_since = self._last_callback
        reason = f"microphone {self._device.name!r} stopped delivering audio"
        self._feed("disconnected", reason, 0, self._down_for_s(down_since))
        attempts = 0
        while not self._stop.wait(RETRY_EVERY_S):
            silent_since = self._write_silence(ring, silent_since)
            attempts += 1
            if self._reopen():
                self._feed("recovered", reason, attempts, self._down_for_s(down_since))
                return
            if attempts % RETRYING_SAID_EVERY_N == 0:  # not every second: one line per 10 s
                self._feed(
                    "retrying",
                    f"{reason}; attempt {attempts}, retrying every {RETRY_EVERY_S:g} s",
                    attempts,
                    self._down_for_s(down_since),
                )

    @staticmethod
    def _down_for_s(since: float) -> float:
        return round(max(0.0, time.monotonic() - since), 3)

    def _write_silence(self, ring: RingBuffer, since: float) -> float:
        """Silence from the monotonic time `since` up to now; returns where it ends. Waits for
        room rather than overwrite: the silence of a long outage is not audio lost."""
        n = int((time.monotonic() - since) * self.sample_rate_hz)
        if n > 0:
            ring.write(np.zeros(n, np.float32), block=True, stop=self._stop)
        return since + n / self.sample_rate_hz

    def join(self, timeout_s: float) -> bool:
        ended = super().join(timeout_s)
        if not ended:
            # Stuck in PortAudio with descriptor 2 held (a frozen PulseAudio server answers no
            # probe): give it back, or what the run says from here on, its summary included,
            # would go into the hold's temporary file and be lost at exit.
            native_stderr.release()
        return ended

    def close(self) -> None:
        self._close_stream()
