"""A PulseAudio null sink whose monitor is the default capture device: a microphone that
records exactly what `paplay` plays into it (see shared/audio-loopback.md)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

SINK = "streamlid_vmic"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=20, check=check)


class VirtualMic:
    def __init__(self) -> None:
        self.started_daemon = False
        self.module_id: str | None = None

    @staticmethod
    def unavailable_reason() -> str | None:
        for tool in ("pulseaudio", "pactl", "paplay"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (apt install pulseaudio pulseaudio-utils)"
        return None

    def start(self) -> None:
        if _run("pulseaudio", "--check", check=False).returncode != 0:
            _run(
                "pulseaudio",
                "--daemonize=yes",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-native-protocol-unix",
                "--log-target=file:/tmp/streamlid-pulse.log",
            )
            self.started_daemon = True
            for _ in range(50):
                if _run("pactl", "info", check=False).returncode == 0:
                    break
                time.sleep(0.1)
        self.plug()

    def plug(self) -> None:
        """Creates the sink (again) and makes its monitor the default input."""
        result = _run("pactl", "load-module", "module-null-sink", f"sink_name={SINK}")
        self.module_id = result.stdout.strip()
        _run("pactl", "set-default-sink", SINK)
        _run("pactl", "set-default-source", f"{SINK}.monitor")

    def unplug(self) -> None:
        """Removes the sink: to PortAudio the capture device vanishes."""
        if self.module_id:
            _run("pactl", "unload-module", self.module_id, check=False)
            self.module_id = None

    def other_sources(self) -> list[str]:
        """Capture sources other than ours (a desktop's real ones, say)."""
        listing = _run("pactl", "list", "short", "sources").stdout.splitlines()
        names = [line.split("\t")[1] for line in listing if "\t" in line]
        return [name for name in names if not name.startswith(SINK)]

    def play(self, wav: Path, wait: bool = True) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(["paplay", f"--device={SINK}", str(wav)])
        if wait:
            process.wait(timeout=120)
        return process

    def stop(self) -> None:
        self.unplug()
        if self.started_daemon:
            _run("pulseaudio", "--kill", check=False)
