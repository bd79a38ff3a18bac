"""`streamlid cluster status`: what a running `listen --cluster` has on the cluster: the model's
replicas (from Serve's status) and, per ingest actor, its feeds, queued windows, answers,
failures and round-trip latency (from the actors themselves, found by name)."""

from __future__ import annotations

from typing import Any

from ..errors import ClusterError

LOAD_TIMEOUT_S = 5.0


def gather(address: str) -> dict[str, Any]:
    """{"replicas": {state: n}, "app": status, "actors": [load dicts]} of the running run."""
    import ray
    from ray import serve

    from .connection import NAMESPACE, join
    from .driver import SHARD_PREFIX
    from .serving import APP_NAME, DEPLOYMENT_NAME

    join(address)
    try:
        app = serve.status().applications.get(APP_NAME)
        if app is None:
            raise ClusterError(
                f"No streamlid model is deployed on the cluster at {address!r}; start a run "
                "with `streamlid listen --cluster ...` first."
            )
        deployment = app.deployments.get(DEPLOYMENT_NAME)
        replicas = dict(deployment.replica_states) if deployment is not None else {}
        names = sorted(
            actor["name"]
            for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor["namespace"] == NAMESPACE and actor["name"].startswith(SHARD_PREFIX)
        )
        actors = []
        for name in names:
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
                actors.append(ray.get(handle.load.remote(), timeout=LOAD_TIMEOUT_S))
            except Exception as exc:  # dead or restarting: say so in its row
                actors.append({"shard": name.removeprefix(SHARD_PREFIX), "error": str(exc)})
        return {"app": str(app.status.value), "replicas": replicas, "actors": actors}
    finally:
        ray.shutdown()


def render(status: dict[str, Any]) -> Any:
    """A small rich table (and a title line with the replicas)."""
    from rich.table import Table

    replicas = ", ".join(f"{n} {state.lower()}" for state, n in status["replicas"].items())
    table = Table(title=f"Model: {status['app'].lower()}, replicas: {replicas or 'none'}")
    for column in ("actor", "node", "feeds"):
        table.add_column(column)
    for column in ("queued", "answered", "retried", "lost", "p50", "p95"):
        table.add_column(column, justify="right")
    for load in status["actors"]:
        if "error" in load:
            table.add_row(str(load["shard"]), "-", f"unavailable: {load['error'][:60]}")
            continue
        table.add_row(
            str(load["shard"]),
            str(load["node"]),
            f"{len(load['feeds'])}: " + ", ".join(load["feeds"]),
            str(load["queued_windows"]),
            str(load["answered"]),
            str(load["retried"]),
            str(load["timed_out"] + load["failed"]),
            _ms(load["latency_p50_s"]),
            _ms(load["latency_p95_s"]),
        )
    return table


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def cluster_status(address: str, *, as_json: bool = False) -> int:
    from . import require_ray

    require_ray(address)
    status = gather(address)
    if as_json:
        import json

        print(json.dumps(status, indent=2))
    else:
        from rich.console import Console

        Console().print(render(status))
    return 0
