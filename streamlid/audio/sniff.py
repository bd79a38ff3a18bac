"""What a stream's first bytes say it is: an audio container, or (none) raw PCM.

Standard input is raw 16 kHz mono s16le, but `cat talk.wav | streamlid listen -` is what people
type; read as PCM, a WAV's header is a click and a 44.1 kHz stereo file is noise. The magic
numbers below cannot begin raw PCM by chance in practice (four exact ASCII bytes); a bare MPEG
frame can (0xFF 0xFF is a sample of -1), so it counts only when a second frame header follows
the first where its length says.
"""

from __future__ import annotations

# Enough for every magic number below and two MPEG frames (the longest is 1,441 bytes).
SNIFF_BYTES = 4096
MAGIC_BYTES = 8  # the longest reach of a magic number below (ftyp at offset 4)

# (offset, magic, name) for containers with a fixed signature.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV"),
    (0, b"RF64", "WAV"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "OGG"),
    (0, b"ID3", "MP3"),
    (0, b"FORM", "AIFF"),
    (0, b"caff", "CAF"),
    (4, b"ftyp", "MP4/M4A"),
    (0, b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (0, b"#!AMR", "AMR"),
)
# kbit/s by [MPEG-1?][layer I, II, III][index]; index 0 ("free") and 15 are not allowed here.
_KBPS = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES_HZ = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def container_of(head: bytes) -> str | None:
    """The container `head` (a stream's first bytes, up to SNIFF_BYTES) begins, or None."""
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    first = _mpeg_frame_bytes(head)
    if first and _mpeg_frame_bytes(head[first:]):
        return "MP3"
    return None


def bytes_to_decide(head: bytes) -> int:
    """How many first bytes `container_of` needs to decide about a stream that begins `head`:
    a live producer of raw PCM is not kept waiting for SNIFF_BYTES."""
    first = _mpeg_frame_bytes(head)
    return min(SNIFF_BYTES, first + 4) if first else MAGIC_BYTES


def _mpeg_frame_bytes(head: bytes) -> int | None:
    """The length of the MPEG audio frame whose header begins `head`, or None if none does."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version = (head[1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = 4 - ((head[1] >> 1) & 3)  # 4 is reserved
    index, rate_index, padding = head[2] >> 4, (head[2] >> 2) & 3, (head[2] >> 1) & 1
    if version == 1 or layer == 4 or index in (0, 15) or rate_index == 3:
        return None
    kbps = _KBPS[(version == 3, layer)][index]
    rate_hz = _RATES_HZ[version][rate_index]
    if layer == 1:
        return (12000 * kbps // rate_hz + padding) * 4
    per_frame = 144000 if version == 3 or layer == 2 else 72000
    return per_frame * kbps // rate_hz + padding
