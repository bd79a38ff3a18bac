"""Servers on loopback (127.0.0.1 only) that act like radio feeds, and a /proc scan for ffmpeg.

`LoopbackFeed` serves MP3 bytes over HTTP the way a stream server does: no length, paced at the
bit rate, looping; it can send a burst first, go silent after the headers, be killed (every
connection cut, connections refused) and restarted on the same port. It also serves any bytes as
a file, the way `python -m http.server` does (with their length, ignoring range requests), cut
short of that length, or chunked; or the way nginx does (answering range requests), its first
response cut short. Every test that starts one stops it (it is a context
manager).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import socketserver
import subprocess
import tempfile
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
    then nothing), "file" (the bytes once, with a length, as fast as the socket takes them),
    "missing" (404 Not Found), "cut" (the length of them all, then only the first half: a
    dropped download), "chunked" (the bytes once in chunked encoding, ended by its last chunk:
    no length), "cut-ranges" (the length of them all, then only the first half, from a server
    that answers a range request `bytes=N-` with 206 and the rest: a dropped download that can
    be resumed; `ranges` lists each request's N, None for a request without one),
    "cut-wrong-ranges" (the same cut, from a server that advertises ranges but answers a
    request for the rest with 200 and the whole file again),
    "live-length" (live, but with a length it never reaches, 2147483647, and Accept-Ranges,
    as some stream servers send; range requests are ignored, and each connection is cut after
    `cut_after_s` of audio).
    `burst_s`: seconds of audio sent at once on connect (like Icecast's burst-on-connect);
    `pause`: (after_s, for_s): a live feed sends nothing for for_s once after_s of audio, then
    goes on where it was, at real time (a hiccup upstream, shorter than a stall)."""

    def __init__(
        self,
        data: bytes,
        *,
        mode: str = "live",
        burst_s: float = 0.0,
        pause: tuple[float, float] | None = None,
        cut_after_s: float | None = None,
    ) -> None:
        self.data = data
        self.mode = mode
        self.burst_s = burst_s
        self.pause = pause
        self.cut_after_s = cut_after_s
        self.port = 0
        self.connections = 0
        self.ranges: list[int | None] = []
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
            request = sock.recv(65536).decode("latin-1")
            if self.mode == "missing":
                sock.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            if self.mode == "chunked":
                self._send_chunked(sock)
                return
            if self.mode in ("cut-ranges", "cut-wrong-ranges"):
                self._send_range(sock, request)
                return
            sized = self.mode in ("file", "cut")
            length = f"Content-Length: {len(self.data)}\r\n" if sized else ""
            if self.mode == "live-length":
                length = "Content-Length: 2147483647\r\nAccept-Ranges: bytes\r\n"
            sock.sendall((f"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n{length}\r\n").encode())
            if self.mode == "silent":
                while self._alive.wait(0.1) and self._alive.is_set():
                    time.sleep(0.1)
                return
            if sized:
                sock.sendall(self.data if self.mode == "file" else self.data[: len(self.data) // 2])
                return
            self._send_live(sock)
        except OSError:
            return
        finally:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _send_range(self, sock: socket.socket, request: str) -> None:
        """Like nginx for a static file: a range `bytes=N-` gets 206 and bytes N on. Every
        response from before half the length is cut there: the connection drops at that byte."""
        found = re.search(r"^Range: *bytes=(\d+)-\s*$", request, re.IGNORECASE | re.MULTILINE)
        start = int(found.group(1)) if found else None
        length = len(self.data)
        with self._lock:
            self.ranges.append(start)
        if start is None or (start and self.mode == "cut-wrong-ranges"):
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n"
            start = 0
        else:
            head = (
                f"HTTP/1.1 206 Partial Content\r\nContent-Length: {length - start}\r\n"
                f"Content-Range: bytes {start}-{length - 1}/{length}\r\n"
            )
        sock.sendall(
            f"{head}Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        sock.sendall(self.data[start : length // 2 if start < length // 2 else length])

    def _send_chunked(self, sock: socket.socket) -> None:
        sock.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for at in range(0, len(self.data), 4096):
            piece = self.data[at : at + 4096]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")

    def _send_live(self, sock: socket.socket) -> None:
        position = 0
        burst = int(self.burst_s * MP3_BYTES_PER_S)
        started = time.monotonic()
        sent_s = 0.0
        pause = self.pause
        while self._alive.is_set():
            if self.cut_after_s is not None and sent_s >= self.cut_after_s:
                return
            if pause is not None and sent_s >= pause[0]:
                time.sleep(pause[1])
                started += pause[1]  # then on at real time: the paused audio never comes
                pause = None
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


ICECAST_XML = """<icecast>
  <limits><clients>20</clients><sources>4</sources>
    <burst-on-connect>1</burst-on-connect><burst-size>65536</burst-size></limits>
  <authentication><source-password>{password}</source-password>
    <admin-user>admin</admin-user><admin-password>{password}-admin</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>0</fileserve>
  <paths><logdir>{folder}</logdir><pidfile>{folder}/icecast.pid</pidfile>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog>
    <loglevel>2</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Icecast:
    """A real Icecast server on 127.0.0.1, in a temp folder, and an ffmpeg source feeding one
    mount with `audio` (looped, at real time). Both are stopped on exit."""

    def __init__(self, audio: Path, mount: str = "/live.mp3") -> None:
        # Its own folder under /tmp: icecast drops root for nobody, who must reach its logs
        # (pytest's tmp_path lies under a folder only root may enter).
        self.folder = Path(tempfile.mkdtemp(prefix="streamlid-icecast-"))
        self.audio = audio
        self.mount = mount
        self.port = free_port()
        self.password = "pw-" + os.urandom(4).hex()
        self._server: subprocess.Popen | None = None
        self._source: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.mount}"

    def __enter__(self) -> Icecast:
        self.folder.chmod(0o777)  # icecast drops root for nobody and writes its logs here
        owner = (
            "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
            if os.geteuid() == 0
            else ""
        )
        config = self.folder / "icecast.xml"
        config.write_text(
            ICECAST_XML.format(
                port=self.port, password=self.password, folder=self.folder, owner=owner
            )
        )
        self._server = subprocess.Popen(
            ["icecast2", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_until(self._listening, 10.0):
            self.__exit__()
            raise RuntimeError("icecast2 did not start listening")
        self.start_source()
        return self

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def mounted(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                return response.status == 200 and len(response.read(1024)) > 0
        except OSError:
            return False

    def start_source(self) -> None:
        self._source = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
                str(self.audio),
                "-c:a",
                "libmp3lame",
                "-b:a",
                "32k",
                "-ar",
                "16000",
                "-content_type",
                "audio/mpeg",
                "-f",
                "mp3",
                f"icecast://source:{self.password}@127.0.0.1:{self.port}{self.mount}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_until(self.mounted, 15.0, poll_s=0.2):
            raise RuntimeError("the ffmpeg source did not reach icecast2")

    def stop_source(self) -> None:
        if self._source is not None:
            self._source.kill()
            self._source.wait(10)
            self._source = None

    def __exit__(self, *exc: object) -> None:
        self.stop_source()
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait(10)
            self._server = None
        shutil.rmtree(self.folder, ignore_errors=True)
