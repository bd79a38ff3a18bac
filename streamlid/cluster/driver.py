"""The driver of a `--cluster` run: starts or joins Ray, deploys the model, shards the feeds
over ingest actors, and gathers their events into the same bus and sinks as a local run.

`ClusterRun` stands where the local `Engine` stands for `run.supervise()` (start, stop, wait,
summary, errors), so signals, `q`, the exit codes, the live view, JSONL, CSV, metrics and
alerts work as they do locally. Its threads: the gatherer (one thread, pulling every actor's
outbox) and the event bus, both owned by a `Supervisor`.

When an ingest actor dies, its feeds get a "disconnected" FeedState; Ray restarts the actor, the
gatherer starts it again with where each feed had got to, and the feeds get "recovered". Later
events of a restarted feed are shifted onto the stream time the driver had reached (a live feed
starts again at zero in the new actor; a file resumes where it was), and its counters continue
from the last ones seen, so the summary adds up across the restart.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import ray

from ..bus import EventBus, Sink
from ..config import ClusterSettings, Config
from ..errors import ClusterError
from ..events import (
    Event,
    Notice,
    Summary,
)
from ..run import INTERRUPTED, OUTPUT_CLOSED, Supervisor, run_summary, settle_outputs
from ..streams import StreamsReducer
from ..threads import RunToEnd, ThreadOwner
from .connection import NAMESPACE, connect, first_line
from .gather import SHARD_RESTARTS_N, Gatherer, ShardBooks
from .ingest import FeedSpec, IngestShard
from .serving import APP_NAME, ModelSpec, deploy_model, model_facts

log = logging.getLogger(__name__)

SHARD_PREFIX = "streamlid-ingest-"  # named actors: `cluster status` finds them by name
START_TIMEOUT_S = 120.0  # actors open their feeds (and reach the model) within this
LOAD_TIMEOUT_S = 5.0  # the actors' last counters, for the summary


def shard_feeds(feeds: Sequence[FeedSpec], shards_n: int) -> list[list[FeedSpec]]:
    """Feeds dealt round-robin over at most `shards_n` shards (none empty)."""
    shards: list[list[FeedSpec]] = [[] for _ in range(min(shards_n, len(feeds)))]
    for i, feed in enumerate(feeds):
        shards[i % len(shards)].append(feed)
    return shards


class ClusterSession:
    """The cluster side of a run: connected, model deployed. `close()` takes the model down
    and, where this process started the cluster, the cluster too."""

    def __init__(self, settings: ClusterSettings, spec: ModelSpec, console: Any = None) -> None:
        self.settings = settings
        cpus_n = settings.ingest_actors_n + settings.replicas_max_n * settings.replica_cpus + 1
        self.owns_cluster = connect(settings.address, cpus_n, console)
        try:
            deploy_model(spec, settings)
            self.model_info, self.labels = model_facts()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        from ray import serve

        # A cluster this process started ends with it, the model included: asking Serve to
        # take the model down first would wait for ever where the cluster's own processes
        # were stopped with this one (SIGTERM to the process group: systemd, docker stop).
        if not self.owns_cluster:
            try:
                serve.delete(APP_NAME)
            except Exception as exc:  # the cluster may be gone already
                log.warning("could not take the model down: %s", exc)
        # Serve's clients in this process say they lost the cluster as it goes: expected now.
        logging.getLogger("ray.serve").setLevel(logging.ERROR)
        ray.shutdown()  # a cluster this process started ends with it


class ClusterRun(RunToEnd):
    """Where the local Engine stands for `supervise()`: the same lifecycle and summary, with
    the pipeline on the cluster."""

    def __init__(
        self,
        config: Config,
        session: ClusterSession,
        feeds: Sequence[FeedSpec],
        sinks: Sequence[Sink],
        figures: StreamsReducer | None = None,
    ) -> None:
        if not feeds:
            raise ValueError("a cluster run needs at least one feed")
        super().__init__()
        self.config = config
        self._session = session
        self.figures = figures if figures is not None else StreamsReducer()
        # Alerts are raised in the actors (each has its feeds' AlertWatch); here they are
        # only delivered.
        self._bus = EventBus([self.figures, *sinks], on_failure=self._output_failed)
        self.errors: list[str] = []
        self.output_errors: list[str] = []
        self.summary: Summary | None = None
        self._stop_reason: str | None = None
        self._lock = threading.Lock()
        self._started_at = 0.0
        self._drains: list = []
        actor_class = ray.remote(IngestShard)
        self.shards: list[ShardBooks] = []
        for n, shard_feeds_ in enumerate(shard_feeds(feeds, session.settings.ingest_actors_n)):
            name = f"{SHARD_PREFIX}{n}"
            _kill_leftover(name)
            actor = actor_class.options(
                name=name,
                namespace=NAMESPACE,
                max_restarts=SHARD_RESTARTS_N,
                max_task_retries=0,
                max_concurrency=4,  # take, stop and status calls side by side
                num_cpus=1,
            ).remote(config, shard_feeds_, n)
            self.shards.append(ShardBooks(n, actor, shard_feeds_))
        self._gatherer = Gatherer(self.shards, self.publish, self._fail)
        self._supervisor = Supervisor()
        self._supervisor.add("cluster gatherer", self._gatherer)
        self._supervisor.add("event thread", self._bus)

    # -- the Engine's interface, as supervise() and listen() use it ---------------------------

    def attach(self, name: str, owner: ThreadOwner, *, drain: bool = False) -> None:
        self._supervisor.add(name, owner)
        if drain:
            self._drains.append(owner)

    def start(self) -> None:
        """Starts the actors' engines (each opens its feeds), then the threads here."""
        from ..errors import AudioSourceError

        self._started_at = time.monotonic()
        refs = [shard.actor.start.remote({}) for shard in self.shards]
        try:
            results = ray.get(refs, timeout=START_TIMEOUT_S)
        except Exception as exc:
            self._kill_actors()
            raise ClusterError(
                f"The ingest actors did not start ({first_line(exc)}); check the cluster's "
                "free CPUs (one per actor) and the workers' logs."
            ) from None
        errors = [error for _, error in results if error is not None]
        if errors:
            self._kill_actors()
            raise AudioSourceError(errors[0])
        for shard, (names, _) in zip(self.shards, results, strict=True):
            shard.names = names
        self._supervisor.start()

    def stop(self, reason: str = INTERRUPTED) -> None:
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
        self._gatherer.stop()

    def _join_main(self, timeout_s: float | None) -> bool:
        return self._gatherer.join(timeout_s)

    def reset_smoothing(self) -> None:
        for shard in self.shards:
            shard.actor.reset_smoothing.remote()

    def publish(self, event: Event) -> None:
        self._bus.publish(event)

    # -- internals ------------------------------------------------------------------------------

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.publish(Notice("", 0.0, "error", message))

    def _output_failed(self, message: str, reader_left: bool) -> None:
        if reader_left:
            self.stop(OUTPUT_CLOSED)
        else:
            self.output_errors.append(message)

    def _kill_actors(self) -> None:
        for shard in self.shards:
            try:
                ray.kill(shard.actor, no_restart=True)
            except Exception as exc:
                log.warning("could not end ingest actor %d: %s", shard.shard_n, exc)

    def _loads(self) -> list[dict[str, Any]]:
        """Each actor's last counters (answered, timed out, failed, retried windows)."""
        refs = [shard.actor.load.remote() for shard in self.shards]
        loads = []
        for shard, ref in zip(self.shards, refs, strict=True):
            try:
                loads.append(ray.get(ref, timeout=LOAD_TIMEOUT_S))
            except Exception as exc:
                log.warning("ingest actor %d gave no counters: %s", shard.shard_n, exc)
        return loads

    def _finish(self) -> None:
        try:
            self._supervisor.join(through=self._gatherer)
            loads = self._loads()
            self._kill_actors()
            reason = settle_outputs(self._bus, self._drains, self._stop_reason, self.errors)
            cluster = {
                "ingest_actors": len(self.shards),
                "actor_restarts": sum(s.restarts_n for s in self.shards),
                **{
                    f"windows_{key}": sum(load[key] for load in loads)
                    for key in ("answered", "retried", "timed_out", "failed")
                },
            }
            self.summary = run_summary(
                self.figures,
                self.config.top,
                self._started_at,
                reason,
                self._session.model_info,
                extra={"cluster": cluster},
            )
            self._bus.publish(self.summary)
        finally:
            self._supervisor.end()


def _kill_leftover(name: str) -> None:
    """An actor of that name left by an earlier run that was killed: ended first."""
    with contextlib.suppress(ValueError):  # none: the usual case
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)


def feed_specs(config: Config, named: Sequence[tuple[str, Any]]) -> list[FeedSpec]:
    """FeedSpecs from listen's (spec, its [[streams]] table or None) pairs: a table's name and
    alert settings travel with its feed."""
    from ..config import alert_settings
    from .serving import local_or_as_is

    return [
        FeedSpec(local_or_as_is(spec))
        if stream is None
        else FeedSpec(
            local_or_as_is(spec), stream.name, alert_settings(config, stream), stream.track
        )
        for spec, stream in named
    ]


def open_session(config: Config, console: Any = None) -> ClusterSession:
    """Connects and deploys the configured model, with a spinner (model loads take a while)."""
    from rich.text import Text

    from ..config import cluster_settings
    from .serving import classifier_spec

    settings = cluster_settings(config)
    if console is None:
        return ClusterSession(settings, classifier_spec(config))
    with console.status(Text(f"Deploying model {config.model} on the Ray cluster…")):
        session = ClusterSession(settings, classifier_spec(config), console)
    console.print(
        f"Model {session.model_info[0]} deployed ({len(session.labels)} languages, "
        f"{session.model_info[1]}/{session.model_info[2]}, replicas "
        f"{settings.replicas_min_n}-{settings.replicas_max_n}).",
        markup=False,
        soft_wrap=True,
    )
    return session
