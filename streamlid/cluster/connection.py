"""Starting or joining Ray, with one clear line when it cannot be reached.

Joining a cluster that turns this process away says nothing useful on its own: Ray's core
retries for 20 s, writing a warning a second straight to file descriptor 2 (no logging setting
reaches it), and Ray Client waits 30 s and then reports a timeout, whatever the reason. Ray
2.59 and later start clusters with token authentication by default, so the likeliest reason is
a missing token. While joining, descriptor 2 is therefore held (streamlid/native_stderr.py):
read when the join fails (the core names a refused token there), passed on when it succeeds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import ray

from .. import native_stderr
from ..errors import ClusterError

NAMESPACE = "streamlid"
PROBE_TIMEOUT_S = 5.0  # a head's port that answers nothing within this is not reachable
LOCAL_OBJECT_STORE_BYTES = 200_000_000  # windows are small; the default takes 30% of RAM
# Ray raises its own errors too (AuthenticationError: RAY_AUTH_MODE=token without a token).
JOIN_ERRORS = (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError)
REFUSED_MARKS = ("InvalidAuthToken", "Unauthenticated", "UNAUTHENTICATED")
CLIENT_LOG_RELAY = "ray.util.client.logsclient"  # Ray Client's logger for the server's log
CLIENT_CHATTER = ("SIGTERM handler is not set",)  # the server-side driver's, relayed while joining
# The local cluster we start is ours alone, on 127.0.0.1, and Ray protects it with a token by
# default; its warning saying so ends "Set RAY_AUTH_MODE=disabled to opt out", advice we don't give.
AUTH_LOG = "ray._private.authentication.authentication_token_setup"
TOKEN_ON_BY_DEFAULT = "Token authentication is enabled for this Ray cluster"
TOKEN_FIX = (
    "set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (`ray get-auth-token` "
    "on the head prints it)"
)


@contextlib.contextmanager
def _our_sigterm() -> Iterator[None]:
    """ray.init() installs its own SIGTERM handler (exit at once); ours takes the run's one
    stop path (every output flushed), so it is put back."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _DropStartingWith(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._prefix)


@contextlib.contextmanager
def _quiet(logger_name: str, prefix: str) -> Iterator[None]:
    """Drops one of Ray's log lines while a block runs."""
    logger = logging.getLogger(logger_name)
    dropper = _DropStartingWith(prefix)
    logger.addFilter(dropper)
    try:
        yield
    finally:
        logger.removeFilter(dropper)


def unreachable_message(where: str, exc: BaseException, said: str, fix: str) -> str:
    """The one line for a cluster that could not be joined. `said`: what Ray wrote on standard
    error meanwhile; `fix`: what to check otherwise."""
    refused = isinstance(exc, ray.exceptions.AuthenticationError) or any(
        mark in said or mark in str(exc) for mark in REFUSED_MARKS
    )
    if refused:
        return (
            f"The Ray cluster at {where!r} refused this process: it uses token authentication "
            f"and the token is missing or wrong; {TOKEN_FIX}."
        )
    message = f"Cannot reach the Ray cluster at {where!r} ({first_line(exc)}); {fix}"
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        # Ray Client cannot tell a refused token from a head that does not answer.
        message += f"; if the cluster uses token authentication, {TOKEN_FIX}"
    return message + "."


def first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _probe(where: str, fix: str) -> None:
    """A head's GCS port that takes no connection, said in one line at once: Ray's core
    retries it for minutes (`cluster status --address 127.0.0.1:1` ran past four). Ray Client
    addresses (ray://) give up by themselves, in 30 s."""
    host, _, port = where.rpartition(":")
    if where.startswith("ray://") or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or first_line(exc)
        raise ClusterError(
            f"Cannot reach the Ray cluster at {where!r} ({reason}); {fix}."
        ) from None


def _join(address: str | None, where: str, fix: str, console: Any) -> None:
    _probe(where, fix)
    with native_stderr.held(console) as held, _our_sigterm():
        try:
            ray.init(
                address=address,
                namespace=NAMESPACE,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            error = None
        except JOIN_ERRORS as exc:
            error = exc
    if error is not None:
        raise ClusterError(unreachable_message(where, error, "".join(held), fix)) from None
    if address is not None and address.startswith("ray://"):
        # Ray Client relays the log of its server-side driver to this process at INFO (set while
        # joining, whatever log_to_driver says): Ray's own warnings there, such as "SIGTERM
        # handler is not set because current thread is not the main thread", are not the user's.
        logging.getLogger(CLIENT_LOG_RELAY).setLevel(logging.ERROR)
    native_stderr.pass_on(held, chatter=CLIENT_CHATTER)  # a join that worked: the rest is theirs


def connect(address: str, cpus_n: float = 0.0, console: Any = None) -> bool:
    """Joins the cluster at `address` (or RAY_ADDRESS for "auto"), or starts a local one bound
    to 127.0.0.1 with at least `cpus_n` logical CPUs (Ray's CPUs are scheduling slots: a small
    machine still runs every actor and replica). True when this process started the cluster
    (and so must end it). `console`: a spinner's, kept on the terminal while joining."""
    logging.getLogger("ray").setLevel(logging.WARNING)  # its INFO lines are not for users
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    if ray.is_initialized():
        return False
    if address == "auto" and not os.environ.get("RAY_ADDRESS"):
        try:
            with _our_sigterm(), _quiet(AUTH_LOG, TOKEN_ON_BY_DEFAULT):
                ray.init(
                    address="local",  # a new one: never someone else's `ray start` here
                    num_cpus=max(os.cpu_count() or 1, math.ceil(cpus_n)),
                    _node_ip_address="127.0.0.1",
                    include_dashboard=False,
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                    namespace=NAMESPACE,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        except JOIN_ERRORS as exc:
            raise ClusterError(
                f"Cannot start a local Ray cluster ({first_line(exc)}); give a cluster's "
                "address with --cluster HOST:PORT."
            ) from None
        return True
    where = os.environ.get("RAY_ADDRESS", "") if address == "auto" else address
    fix = "check the address and that `ray start` runs there"
    _join(None if address == "auto" else address, where, fix, console)
    return False


def join(address: str) -> None:
    """Joins a running cluster (for `cluster status`): never starts one."""
    logging.getLogger("ray").setLevel(logging.WARNING)
    fix = "give its address with --address HOST:PORT, or set RAY_ADDRESS"
    _join("auto" if address == "auto" else address, address, fix, None)
