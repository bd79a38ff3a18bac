"""RingBuffer: order, absolute indices, overflow accounting, blocking writes, close/drain.

Every test writes samples whose value is their absolute index, so a chunk proves its own
position: chunk.samples must equal arange(chunk.start_index, ...).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlid.audio.ring import RingBuffer


def ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


def assert_self_indexed(chunk) -> None:
    expected = ramp(chunk.start_index, len(chunk.samples))
    np.testing.assert_array_equal(chunk.samples, expected)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 64),
    ops=st.lists(
        st.tuples(st.sampled_from(["write", "read"]), st.integers(0, 100)),
        min_size=1,
        max_size=60,
    ),
)
def test_any_interleaving_keeps_order_indices_and_counts_every_lost_sample(capacity, ops):
    ring = RingBuffer(capacity)
    written = 0
    read_end = 0  # absolute index just after the last sample read
    lost_total = 0
    for op, n in ops:
        if op == "write":
            assert ring.write(ramp(written, n)) == n  # non-blocking writes take everything
            written += n
        else:
            chunk = ring.read(max(1, n), timeout_s=0.0)
            assert chunk is not None  # not closed
            assert_self_indexed(chunk)
            # A gap between chunks is exactly the loss reported with the later chunk.
            assert chunk.start_index == read_end + chunk.lost_before
            lost_total += chunk.lost_before
            read_end = chunk.start_index + len(chunk.samples)
            assert written - read_end <= capacity
    ring.close()
    while (chunk := ring.read(1000, timeout_s=0.0)) is not None:
        assert_self_indexed(chunk)
        assert chunk.start_index == read_end + chunk.lost_before
        lost_total += chunk.lost_before
        read_end = chunk.start_index + len(chunk.samples)
    assert read_end == written  # the newest audio always survives
    assert lost_total == ring.overflow_samples
    assert ring.write_index == written


def test_wrap_around_many_times_without_overflow():
    ring = RingBuffer(10)
    received = []
    for start in range(0, 1000, 7):
        ring.write(ramp(start, 7))
        chunk = ring.read(100, timeout_s=0.0)
        assert chunk.lost_before == 0
        received.append(chunk)
    assert ring.overflow_samples == 0
    np.testing.assert_array_equal(np.concatenate([c.samples for c in received]), ramp(0, 1001))
    assert [c.start_index for c in received] == list(range(0, 1000, 7))


def test_overflow_drops_oldest_and_reports_it_once():
    ring = RingBuffer(1000)
    for block in range(5):
        ring.write(ramp(500 * block, 500))  # 2500 written, only 1000 fit
    assert ring.overflow_samples == 1500
    chunk = ring.read(10_000, timeout_s=0.0)
    assert chunk.lost_before == 1500
    assert chunk.start_index == 1500
    np.testing.assert_array_equal(chunk.samples, ramp(1500, 1000))
    ring.write(ramp(2500, 10))
    after = ring.read(10_000, timeout_s=0.0)
    assert after.lost_before == 0  # reported with the first chunk after the gap, not again
    assert after.start_index == 2500


def test_write_larger_than_the_ring_keeps_its_newest_audio():
    ring = RingBuffer(100)
    ring.write(ramp(0, 30))
    ring.write(ramp(30, 250))
    chunk = ring.read(1000, timeout_s=0.0)
    assert chunk.start_index == 180
    assert chunk.lost_before == 180
    assert ring.overflow_samples == 180
    np.testing.assert_array_equal(chunk.samples, ramp(180, 100))


def test_loss_reported_even_when_nothing_is_left_to_read():
    ring = RingBuffer(10)
    ring.write(ramp(0, 25))
    assert ring.read(10, timeout_s=0.0).lost_before == 15
    ring.close()
    assert ring.read(10, timeout_s=0.0) is None


def test_blocking_write_waits_for_the_reader_and_loses_nothing():
    ring = RingBuffer(256)
    total = 20_000

    def produce():
        for start in range(0, total, 300):
            n = min(300, total - start)
            assert ring.write(ramp(start, n), block=True) == n
        ring.close()

    producer = threading.Thread(target=produce, name="test-producer")
    producer.start()
    chunks = []
    sizes = [1, 7, 64, 256, 1000]
    i = 0
    while (chunk := ring.read(sizes[i % len(sizes)], timeout_s=1.0)) is not None:
        chunks.append(chunk)
        i += 1
    producer.join(10)
    assert not producer.is_alive()
    assert ring.overflow_samples == 0
    assert all(c.lost_before == 0 for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), ramp(0, total))


@pytest.mark.parametrize("how", ["stop", "close"])
def test_blocked_writer_gives_up_on_stop_or_close(how):
    ring = RingBuffer(100)
    stop = threading.Event()
    ring.write(ramp(0, 100), block=True, stop=stop)  # full
    result = {}

    def produce():
        result["taken"] = ring.write(ramp(100, 50), block=True, stop=stop)

    producer = threading.Thread(target=produce, name="test-producer")
    producer.start()
    producer.join(0.3)
    assert producer.is_alive(), "a blocking write into a full ring must wait"
    if how == "stop":
        stop.set()
    else:
        ring.close()
    producer.join(5.0)
    assert not producer.is_alive()
    assert result["taken"] == 0
    assert ring.overflow_samples == 0


def test_close_then_drain_returns_what_is_left_then_none():
    ring = RingBuffer(100)
    ring.write(ramp(0, 60))
    ring.close()
    assert ring.closed
    first = ring.read(40, timeout_s=0.0)
    second = ring.read(40, timeout_s=0.0)
    np.testing.assert_array_equal(np.concatenate([first.samples, second.samples]), ramp(0, 60))
    assert ring.read(40, timeout_s=0.0) is None
    assert ring.read(40, timeout_s=0.0) is None


def test_read_on_an_open_empty_ring_times_out_with_an_empty_chunk_not_none():
    ring = RingBuffer(100)
    chunk = ring.read(10, timeout_s=0.01)
    assert chunk is not None
    assert len(chunk.samples) == 0
    assert chunk.start_index == 0


def test_close_wakes_a_waiting_reader():
    ring = RingBuffer(100)
    result = {}

    def consume():
        result["chunk"] = ring.read(10, timeout_s=30.0)

    reader = threading.Thread(target=consume, name="test-reader")
    reader.start()
    ring.close()
    reader.join(5.0)
    assert not reader.is_alive()
    assert result["chunk"] is None


def test_multichannel_frames_are_mixed_down_to_mono():
    ring = RingBuffer(100)
    left = ramp(0, 10)
    frames = np.stack([left, 3 * left], axis=1)
    assert ring.write(frames) == 10
    chunk = ring.read(100, timeout_s=0.0)
    np.testing.assert_allclose(chunk.samples, 2 * left)
    assert ring.write_index == 10


def _mixed(ring: RingBuffer, blocks: list[np.ndarray]) -> np.ndarray:
    for frames in blocks:
        ring.write(frames)
    return ring.read(ring.capacity_samples, timeout_s=0.0).samples


def test_ordinary_stereo_is_the_mean_of_its_channels():
    """Uncorrelated channels, one quieter, and an inverted one too quiet to cancel: the mean,
    untouched, and nothing to say."""
    rng = np.random.default_rng(1)
    left, right = rng.normal(0, 0.1, (2, 4000)).astype(np.float32)
    blocks = [np.stack([left, 0.5 * right], axis=1), np.stack([left, -0.3 * left], axis=1)]
    ring = RingBuffer(8000)
    expected = np.concatenate([(left + 0.5 * right) / 2, 0.35 * left])
    np.testing.assert_allclose(
        _mixed(ring, [b[i : i + 800] for b in blocks for i in range(0, 4000, 800)]),
        expected,
        atol=1e-6,
    )
    assert not ring.channels_inverted


def test_a_channel_wired_in_reverse_polarity_is_heard_and_switched_in_without_a_click():
    """A tone whose right channel becomes the left one inverted, mid-stream (and on a block
    that is not the first): after the switch the mixdown is the tone itself, not silence,
    and no step between two samples is larger than the tone's own."""
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    right = tone.copy()
    right[5000:] *= -1  # at a zero crossing: the rewiring itself makes no step
    frames = np.stack([tone, right], axis=1)
    ring = RingBuffer(16000)
    mono = _mixed(ring, [frames[i : i + 512] for i in range(0, 16000, 512)])
    np.testing.assert_allclose(mono[:5000], tone[:5000], atol=1e-6)
    np.testing.assert_allclose(mono[6000:], tone[6000:], atol=1e-6)  # a block to fade in
    assert np.abs(np.diff(mono)).max() <= np.abs(np.diff(tone)).max() + 0.01
    assert ring.channels_inverted


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        RingBuffer(0)
