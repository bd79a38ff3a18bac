"""Servers on loopback (127.0.0.1 only) that act like radio feeds, and a /proc scan for ffmpeg.

`LoopbackFeed` serves MP3 bytes over HTTP the way a stream server does: no length, paced at the
bit rate, looping; it can send a burst first, go silent after the headers, be killed (every
connection cut, connections refused) and restarted on the same port. Every test that starts one
stops it (it is a context manager).
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
import time
from pathlib import Path

import numpy as np
from audio_helpers import encode_with_ffmpeg, write_wav

MP3_BITRATE_BPS = 32000
MP3_BYTES_PER_S = MP3_BITRATE_BPS // 8
SEND_BLOCK_S = 0.1


def make_mp3(audio: np.ndarray, folder: Path, name: str = "feed.mp3") -> Path:
    """16 kHz mono CBR MP3 without a Xing header (frames can be looped and cut anywhere)."""
    wav = folder / (name + ".wav")
    write_wav(wav, audio)
    mp3 = folder / name
    encode_with_ffmpeg(
        wav, mp3, "-c:a", "libmp3lame", "-b:a", f"{MP3_BITRATE_BPS // 1000}k", "-write_xing", "0"
    )
    return mp3


class LoopbackFeed:
    """An HTTP feed on 127.0.0.1. mode: "live" (paced, looping, no length), "silent" (headers,
    then nothing), "file" (the bytes once, with a length, as fast as the socket takes them).
    `burst_s`: seconds of audio sent at once on connect (like Icecast's burst-on-connect)."""

    def __init__(self, data: bytes, *, mode: str = "live", burst_s: float = 0.0) -> None:
        self.data = data
        self.mode = mode
        self.burst_s = burst_s
        self.port = 0
        self.connections = 0
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._alive = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.mp3"

    def start(self) -> LoopbackFeed:
        feed = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                feed._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._alive.set()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="loopback-feed", daemon=True
        )
        self._thread.start()
        return self

    def kill(self) -> None:
        """Like a crashed server: every connection cut, new ones refused."""
        self._alive.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()
        if self._thread is not None:
            self._thread.join(5.0)

    def restart(self) -> None:
        self.start()  # the same port (allow_reuse_address)

    def __enter__(self) -> LoopbackFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self.connections += 1
        try:
            sock.settimeout(5.0)
            sock.recv(65536)  # the request; its content does not matter here
            length = f"Content-Length: {len(self.data)}\r\n" if self.mode == "file" else ""
            sock.sendall((f"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n{length}\r\n").encode())
            if self.mode == "silent":
                while self._alive.wait(0.1) and self._alive.is_set():
                    time.sleep(0.1)
                return
            if self.mode == "file":
                sock.sendall(self.data)
                return
            self._send_live(sock)
        except OSError:
            return
        finally:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _send_live(self, sock: socket.socket) -> None:
        position = 0
        burst = int(self.burst_s * MP3_BYTES_PER_S)
        started = time.monotonic()
        sent_s = 0.0
        while self._alive.is_set():
            if burst:
                n, burst = burst, 0
                due_s = 0.0
            else:
                n = int(SEND_BLOCK_S * MP3_BYTES_PER_S)
                due_s = sent_s - self.burst_s
            delay = started + due_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            piece = b""
            while len(piece) < n:  # loop the recording forever
                take = self.data[position : position + n - len(piece)]
                piece += take
                position = (position + len(take)) % len(self.data)
            sock.sendall(piece)
            sent_s += n / MP3_BYTES_PER_S


def ffmpeg_processes(needle: str) -> list[int]:
    """Pids of running ffmpeg processes whose command line contains `needle` (a port, a
    path): found wherever they were re-parented, zombies included."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
        if name == b"ffmpeg" and any(needle.encode() in arg for arg in args):
            found.append(int(entry))
    return found


def wait_until(condition, timeout_s: float, poll_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())


def ffmpeg_children(ppid: int) -> list[int]:
    """Pids of ffmpeg processes whose parent is `ppid`, zombies (not reaped) included."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
        fields = stat[stat.rindex(b")") + 2 :].split()
        if name == b"ffmpeg" and int(fields[1]) == ppid:
            found.append(int(entry))
    return found
