"""Gathering a cluster run's events: one thread pulls every ingest actor's outbox, translates
a restarted actor's events onto the run's stream times and counters (ShardBooks), restarts
actors that died, and says when the model loses a replica (ReplicaWatch)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import ray

from ..events import (
    Event,
    FeedState,
    Notice,
    Prediction,
    SpeechChange,
    Status,
    StreamStarted,
)
from ..threads import FORCED_EXIT_AFTER_S, join_thread
from .ingest import FeedSpec
from .serving import ask_replica_counts

log = logging.getLogger(__name__)

POLL_S = 0.2
RESTART_POLL_S = 0.5  # a restarting actor is asked to start again this often
RESTART_TIMEOUT_S = 120.0  # ... for at most this long
REPLICA_POLL_S = 1.0  # how often the model's replicas are counted
CONTROLLER_SILENT_S = 30.0  # a count unanswered this long is said (once) in a warning
SHARD_RESTARTS_N = 3  # an ingest actor that dies is restarted this many times
# After a stop, the actors get this long to hand over their last events: less than the run
# waits for its finishing (by a poll and some), so the summary is still written when they
# cannot (the cluster's processes were stopped with this one: SIGTERM to the process group).
STOP_GRACE_S = FORCED_EXIT_AFTER_S - 1.0
TIME_FIELDS = ("t_s", "t_start_s", "t_end_s", "since_s")
ACTOR_DIED = "ingest actor died"


@dataclasses.dataclass
class _FeedBooks:
    """What the driver knows of one feed: how far it got, and its counters so far."""

    reached_s: float = 0.0  # stream time of the newest event
    answered_to_s: float = 0.0  # end of the newest window answered
    offset_s: float = 0.0  # added to the current actor's stream times
    skipped_base: int = 0  # counters of earlier actors, added to the current one's
    windows_base: int = 0
    overflow_base_s: float = 0.0
    last_status: Status | None = None
    started: bool = False


class ShardBooks:
    """Translates one shard's events onto the run's stream times and counters."""

    def __init__(self, shard_n: int, actor: Any, feeds: Sequence[FeedSpec]) -> None:
        self.shard_n = shard_n
        self.actor = actor
        self.feeds = list(feeds)
        self.names: list[str] = []
        self.books: dict[str, _FeedBooks] = {}
        self.done = False
        self.restarts_n = 0
        self.down_since: float | None = None

    def translate(self, event: Event) -> Event | None:
        stream = getattr(event, "stream", "")
        books = self.books.setdefault(stream, _FeedBooks()) if stream else None
        if books is None:
            return event
        if isinstance(event, StreamStarted):
            if books.started:
                return None  # the same stream, restarted: recovered says so
            books.started = True
            return event
        if books.offset_s:
            event = dataclasses.replace(
                event,
                **{
                    name: round(getattr(event, name) + books.offset_s, 3)
                    for name in TIME_FIELDS
                    if hasattr(event, name)
                },
            )
        if isinstance(event, Status):
            event = dataclasses.replace(
                event,
                skipped_windows=event.skipped_windows + books.skipped_base,
                windows=event.windows + books.windows_base,
                overflow_s=round(event.overflow_s + books.overflow_base_s, 3),
            )
            books.last_status = event
        for name in TIME_FIELDS:
            value = getattr(event, name, None)
            if isinstance(value, float) and name != "since_s":
                books.reached_s = max(books.reached_s, value)
        if isinstance(event, Prediction):
            books.answered_to_s = max(books.answered_to_s, event.t_end_s)
        return event

    def unanswered_s(self, name: str) -> float:
        """Audio read but not answered yet (what an actor that died took with it)."""
        books = self.books.get(name)
        return 0.0 if books is None else max(0.0, books.reached_s - books.answered_to_s)

    def died(self) -> list[Event]:
        """The actor died: its feeds are down from where they had got to; later events carry
        on from there."""
        self.down_since = time.monotonic()
        events: list[Event] = []
        for name in self.names:
            books = self.books.setdefault(name, _FeedBooks())
            at = round(books.reached_s, 3)
            books.offset_s = books.reached_s
            if books.last_status is not None:
                books.skipped_base = books.last_status.skipped_windows
                books.windows_base = books.last_status.windows
                books.overflow_base_s = books.last_status.overflow_s
            # The audio it had read but not answered went with it: in the books as lost
            # (overflow_s, the summary's "audio dropped"), so every second is accounted for.
            books.overflow_base_s += self.unanswered_s(name)
            events += [
                SpeechChange(name, at, False),  # nothing is heard while it is down
                FeedState(name, at, "disconnected", ACTOR_DIED, 0, 0.0),
            ]
        return events

    def resume_s(self) -> dict[str, float]:
        return {name: books.reached_s for name, books in self.books.items()}

    def recovered(self) -> list[Event]:
        outage_s = 0.0 if self.down_since is None else time.monotonic() - self.down_since
        self.down_since = None
        return [
            FeedState(
                name,
                round(self.books[name].reached_s, 3),
                "recovered",
                "ingest actor restarted",
                self.restarts_n,
                round(outage_s, 3),
            )
            for name in self.names
        ]


class ReplicaWatch:
    """Says when the model loses a replica and when Serve has replaced it (Notices for every
    stream): the windows it held were retried or counted as skipped by the RemoteModels.

    The count is asked of the cluster and collected when it has come, never waited for: the
    gatherer calls `poll` between its pulls, and a Serve controller that died with the cluster
    must not hold up the feeds' events or a stop."""

    def __init__(self, publish) -> None:
        self._publish = publish
        self._running_n: int | None = None
        self._next_at = 0.0
        self._asked: Any = None  # the count in flight
        self._asked_at = 0.0
        self._silence_said = False

    def poll(self) -> None:
        now = time.monotonic()
        if self._asked is not None:
            ready, _ = ray.wait([self._asked], timeout=0)
            if not ready:
                self._say_silence(now)
                return
            self._collect(self._asked)
            self._asked = None
        if now >= self._next_at:
            self._next_at = now + REPLICA_POLL_S
            self._asked, self._asked_at = ask_replica_counts(), now

    def _say_silence(self, now: float) -> None:
        if self._silence_said or now - self._asked_at < CONTROLLER_SILENT_S:
            return
        self._silence_said = True
        message = (
            f"the cluster's Serve controller has not answered for {CONTROLLER_SILENT_S:.0f} s: "
            "lost model replicas are not reported until it does"
        )
        self._publish(Notice("", 0.0, "warning", message))

    def _collect(self, asked: Any) -> None:
        try:
            running_n, _ = ray.get(asked)
        except Exception as exc:  # the controller busy or restarting: ask again later
            log.warning("could not read the model's replicas: %s", exc)
            return
        if self._silence_said:
            self._silence_said = False
            self._publish(Notice("", 0.0, "info", "the cluster's Serve controller answers again"))
        before = self._running_n
        self._running_n = running_n
        if before is None or running_n == before:
            return
        if running_n < before:
            message = (
                f"model replica lost: {running_n} of {before} running; Serve is replacing it "
                "(its windows are retried or counted as skipped)"
            )
            self._publish(Notice("", 0.0, "warning", message))
        else:
            self._publish(Notice("", 0.0, "info", f"model replicas running: {running_n}"))


class Gatherer:
    """One thread: pulls every shard's events (one `take` in flight per shard), hands them to
    the bus, restarts shards whose actor died, and ends once every shard is done."""

    def __init__(self, shards: Sequence[ShardBooks], publish, on_error) -> None:
        self._shards = list(shards)
        self._publish = publish
        self._on_error = on_error
        self._replicas = ReplicaWatch(publish)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="cluster-gatherer")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float | None) -> bool:
        return join_thread(self._thread, timeout_s)

    def _main(self) -> None:
        try:
            self._gather()
        except Exception as exc:
            self._on_error(f"gathering the cluster's events failed: {type(exc).__name__}: {exc}")

    def _gather(self) -> None:
        from ray.exceptions import RayActorError

        pending: dict[Any, tuple[ShardBooks, str]] = {
            shard.actor.take.remote(): (shard, "take") for shard in self._shards
        }
        deferred: list[tuple[float, ShardBooks]] = []  # (when, shard): a start to send again
        stop_deadline: float | None = None
        while pending or deferred:
            if self._stop.is_set() and stop_deadline is None:
                stop_deadline = time.monotonic() + STOP_GRACE_S
                for shard in self._shards:
                    shard.actor.stop.remote()
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                log.warning("ingest actors did not finish within %.0f s", STOP_GRACE_S)
                return
            if stop_deadline is None:  # stopping, lost replicas no longer matter
                self._replicas.poll()
            now = time.monotonic()
            for due in [d for d in deferred if d[0] <= now]:
                deferred.remove(due)
                shard = due[1]
                pending[shard.actor.start.remote(shard.resume_s())] = (shard, "start")
            if not pending:
                time.sleep(POLL_S)
                continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                shard, kind = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except RayActorError:
                    if self._restart(shard):
                        deferred.append((time.monotonic() + RESTART_POLL_S, shard))
                    continue
                if kind == "start":
                    _, error = result
                    if error is not None:
                        self._on_error(error)
                        shard.done = True
                        continue
                    for event in shard.recovered():
                        self._publish(event)
                    if self._stop.is_set():
                        shard.actor.stop.remote()
                else:
                    events, done = result
                    for event in events:
                        translated = shard.translate(event)
                        if translated is not None:
                            self._publish(translated)
                    if done:
                        shard.done = True
                        continue
                pending[shard.actor.take.remote()] = (shard, "take")

    def _restart(self, shard: ShardBooks) -> bool:
        """A call to the shard's actor failed: it died, or Ray is still restarting it. True:
        send it `start` again shortly. Ray restarts it up to SHARD_RESTARTS_N times; past that,
        or after RESTART_TIMEOUT_S without it, its feeds stay down (said once)."""
        if shard.down_since is None:  # a new death
            for event in shard.died():
                self._publish(event)
            shard.restarts_n += 1
            for name in shard.names:
                at = round(shard.books[name].reached_s, 3)
                message = (
                    f"{name}: {ACTOR_DIED} with {shard.unanswered_s(name):.1f} s of audio read "
                    f"but not answered (lost); restarting it (attempt {shard.restarts_n})"
                )
                self._publish(Notice(name, at, "warning", message))
            if shard.restarts_n <= SHARD_RESTARTS_N:
                return True
        elif time.monotonic() - shard.down_since < RESTART_TIMEOUT_S:
            return True  # still restarting
        message = (
            f"ingest actor {shard.shard_n} could not be restarted; its feeds "
            f"({', '.join(shard.names)}) stay down"
        )
        self._publish(Notice("", 0.0, "error", message))
        shard.done = True
        return False
