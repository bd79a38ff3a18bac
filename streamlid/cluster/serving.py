"""The model as a Ray Serve deployment: one replica per GPU (or per CPU group), autoscaling
between a minimum and a maximum, windows from every feed batched by `@serve.batch`.

What a replica serves is a `ModelSpec`: an import path to a factory and its keyword arguments.
The default builds streamlid's own Classifier (the same loader, safetensors only, no remote
code); a benchmark passes the stand-in model (standin.py) instead. A window is one request, so
Serve batches across every ingest actor; the answer is the same probability vector the local
classifier gives for that window (Classifier.classify never pads windows of other lengths
together, so the batch does not change it).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from ..config import ClusterSettings, Config
from ..errors import ClusterError

log = logging.getLogger(__name__)

APP_NAME = "streamlid"  # the Serve application; its one deployment is DEPLOYMENT_NAME
DEPLOYMENT_NAME = "LanguageModel"
CLASSIFIER_FACTORY = "streamlid.cluster.serving:load_classifier"
REQUESTS_PER_BATCH = 2  # a replica takes up to this many batches' worth of requests in hand
# A dead replica is noticed (and replaced) within about this long; the default is 10 s.
HEALTH_CHECK_S = 2.0
HEALTH_TIMEOUT_S = 10.0  # a forward pass on a busy CPU may hold a replica this long


@dataclass(frozen=True)
class ModelSpec:
    """What each replica builds: `factory` ("module:callable") called with `kwargs`. The result
    has `labels`, `classify(windows) -> probabilities` and optionally `info` (ModelInfo)."""

    factory: str = CLASSIFIER_FACTORY
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)(**self.kwargs)


def classifier_spec(config: Config) -> ModelSpec:
    """The configured checkpoint, loaded by each replica as a local run loads it (a folder
    here by its absolute path: a replica's working directory is not ours)."""
    return ModelSpec(
        kwargs={
            "model": local_or_as_is(config.model),
            "device": config.device,
            "dtype": config.dtype,
            "languages": tuple(config.languages),
        }
    )


def local_or_as_is(spec: str) -> str:
    """A path that exists here, made absolute; anything else (a hub id, a URL) unchanged."""
    path = Path(spec)
    return str(path.resolve()) if path.exists() else spec


def load_classifier(model: str, device: str, dtype: str, languages: tuple[str, ...]) -> Any:
    from ..classifier import Classifier

    return Classifier(model, device=device, dtype=dtype, languages=languages, announce=log.warning)


class LanguageModel:
    """One replica: the model, loaded once, answering one window per request."""

    def __init__(self, spec: ModelSpec, batch_max_n: int, batch_wait_s: float) -> None:
        self._model = spec.build()
        self._labels = tuple(self._model.labels)
        info = getattr(self._model, "info", None)
        self._info = (
            (info.model, info.device, info.dtype) if info is not None else (spec.factory, "", "")
        )
        self.classify_window.set_max_batch_size(batch_max_n)
        self.classify_window.set_batch_wait_timeout_s(batch_wait_s)

    def labels(self) -> tuple[str, ...]:
        return self._labels

    def info(self) -> tuple[str, str, str]:
        """(model, device, dtype), as a local run's events carry them."""
        return self._info

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def classify_window(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        # In a thread: the replica's event loop keeps taking requests for the next batch.
        probs = await asyncio.to_thread(self._model.classify, windows)
        return list(probs)


def replica_options(settings: ClusterSettings, gpus_n: float) -> dict[str, Any]:
    """Serve options: a whole GPU per replica where the cluster has GPUs, else `replica_cpus`;
    a fixed count, or autoscaling between MIN and MAX by requests in hand."""
    actor = {"num_gpus": 1} if gpus_n >= 1 else {"num_cpus": settings.replica_cpus}
    options: dict[str, Any] = {
        "ray_actor_options": actor,
        "max_ongoing_requests": settings.batch_max_n * REQUESTS_PER_BATCH,
        "health_check_period_s": HEALTH_CHECK_S,
        "health_check_timeout_s": HEALTH_TIMEOUT_S,
    }
    if settings.replicas_min_n == settings.replicas_max_n:
        options["num_replicas"] = settings.replicas_min_n
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.replicas_min_n,
            "max_replicas": settings.replicas_max_n,
            "target_ongoing_requests": settings.batch_max_n,
        }
    return options


def deploy_model(spec: ModelSpec, settings: ClusterSettings) -> Any:
    """Deploys (or redeploys) the model on the connected cluster; its DeploymentHandle once
    every replica is up. No HTTP proxy: only handles reach it."""
    import ray

    gpus_n = float(ray.cluster_resources().get("GPU", 0.0))
    deployment = serve.deployment(LanguageModel, name=DEPLOYMENT_NAME).options(
        **replica_options(settings, gpus_n)
    )
    serve.start(proxy_location="Disabled")
    try:
        return serve.run(
            deployment.bind(spec, settings.batch_max_n, settings.batch_wait_s),
            name=APP_NAME,
            route_prefix=None,
        )
    except Exception as exc:  # a replica that cannot load the model fails the deploy
        raise ClusterError(
            f"The model could not be deployed on the cluster ({_first_line(exc)}); check the "
            "model path on the worker nodes and the replicas' resources (--replica-cpus)."
        ) from None


def replica_counts() -> tuple[int, int]:
    """(running, all) replicas of the deployed model, from Serve's status."""
    app = serve.status().applications.get(APP_NAME)
    deployment = None if app is None else app.deployments.get(DEPLOYMENT_NAME)
    if deployment is None:
        return 0, 0
    states = deployment.replica_states
    return int(states.get("RUNNING", 0)), int(sum(states.values()))


def ask_replica_counts() -> Any:
    """A Ray reference to `replica_counts()`, counted by a task inside the cluster. The caller
    polls it (`ray.wait(..., timeout=0)`): Serve's controller dies with the cluster, and
    `serve.status()` on the driver would then wait for it without end."""
    return _replica_counts_task().remote()


@functools.cache
def _replica_counts_task() -> Any:
    import ray

    return ray.remote(num_cpus=0)(replica_counts)


def model_handle() -> Any:
    """The handle of an already deployed model (an ingest actor's way to it)."""
    return serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=APP_NAME)


def model_facts() -> tuple[tuple[str, str, str], tuple[str, ...]]:
    """(model, device, dtype) and the labels of the deployed model, asked from inside the
    cluster by a Ray task, as the ingest actors ask it. The driver itself sends Serve no
    request: through Ray Client, Serve's router there would ask each replica its queue length
    across the client proxy, give up after 0.1 s, and Ray Client (2.60) prints a traceback when
    the answer then comes for a question no longer asked."""
    import ray

    return ray.get(ray.remote(num_cpus=0)(_ask_model).remote())


def _ask_model() -> tuple[tuple[str, str, str], tuple[str, ...]]:
    handle = model_handle()
    info = tuple(handle.info.remote().result())
    return info, tuple(handle.labels.remote().result())  # type: ignore[return-value]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
