"""streamlid on a Ray cluster (`listen --cluster`): the model as a Ray Serve deployment, the
feeds sharded over ingest actors, every event gathered back to the driver's usual outputs.

Optional: `pip install streamlid[cluster]`. Nothing outside this package imports Ray, and this
package is imported only when `--cluster` (or `streamlid cluster`) is asked for.

    serving.py  the model deployment (ModelSpec says what it serves) and deploy_model()
    remote.py   RemoteModel: the worker's `Model` seam, through a Serve handle
    ingest.py   IngestShard: an actor running the normal per-feed Engine for its feeds
    driver.py   ClusterRun: starts or joins Ray, shards the feeds, its events into the sinks
    gather.py   the gathering thread, a restarted actor's books, the replicas watch
    status.py   `streamlid cluster status`
    standin.py  a model of fixed service time, for benchmarks and tests
"""

from __future__ import annotations

import os

from ..errors import ClusterError

INSTALL_HINT = "install it with `pip install streamlid[cluster]`"
LOOPBACK_HOSTS = ("127.", "localhost", "::1")
# Ray rewrites a loopback address into this machine's outward one, unless it believes
# multi-node clusters are off (its switch for Windows and macOS); read when Ray is imported.
RAY_LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def is_loopback(address: str) -> bool:
    """`auto` without RAY_ADDRESS (a local cluster), or an address on 127.0.0.0/8."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "127.0.0.1")
    host = address.removeprefix("ray://").rpartition(":")[0] or address
    return host.strip("[]").startswith(LOOPBACK_HOSTS)


def require_ray(address: str = "auto") -> None:
    """Raises ClusterError (one line) when Ray with Serve cannot be imported. Before Ray is
    imported: a cluster on loopback stays on loopback (this process talks to 127.0.0.1, and a
    local cluster it starts binds there)."""
    if is_loopback(address):
        os.environ.setdefault(RAY_LOOPBACK_SWITCH, "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError:
        raise ClusterError(
            f"--cluster needs Ray with Serve, which is not installed; {INSTALL_HINT}."
        ) from None
