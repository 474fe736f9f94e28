"""Redis clients from the REDIS_URL setting: one Redis, a Sentinel service or a Redis Cluster.

Every client gets explicit timeouts and retries (never the library's defaults) and follows
the rules of ``storage.connection`` (one time budget per request, no blind re-sends of
writes, no evicting Redis). Routing in a cluster is redis-py's: ``RedisCluster`` sends each
command to the node of its key's slot and follows MOVED/ASK after a resharding, and its
pipelines send each node its share of the commands in one round trip.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.parse
from typing import Any

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from server.storage.connection import GuardedCluster, Rules

SENTINEL_SCHEME = "redis+sentinel://"  # redis+sentinel://[:password@]host:port[,…]/service[/db]
# redis+cluster://[user:password@]host:port[,host:port…] (rediss+cluster:// for TLS)
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}
HEALTH_CHECK_INTERVAL = 30  # seconds; revalidates idle pooled connections before use


class PendingCluster:
    """A cluster client built on first use, so that a server starts (degraded) while no node
    of the cluster answers, as it does with a single Redis that is down.

    redis-py's cluster client asks a node for the slot map when it is built, and refuses to be
    built without one. Until a build succeeds, every use raises RedisClusterException, which
    the store turns into StorageUnavailable like any other Redis failure.
    """

    def __init__(self, rules: Rules, options: dict[str, Any]) -> None:
        self.rules = rules
        self._options = options
        self._client: GuardedCluster | None = None
        self._lock = threading.Lock()

    def built(self) -> GuardedCluster:
        """The cluster client, built now if it was not yet.

        Raises:
            RedisClusterException: no start-up node answered.
        """
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = GuardedCluster(self.rules, **self._options)
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.built(), name)


Client = redis.Redis | PendingCluster  # what ``connect`` builds


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """The sentinels, service name, db and password of a ``redis+sentinel://`` URL.

    Raises:
        ValueError: the URL does not have that form.
    """
    rest = url.removeprefix(SENTINEL_SCHEME)
    location, _, path = rest.partition("/")
    credentials, _, hosts = location.rpartition("@")
    password = urllib.parse.unquote(credentials.partition(":")[2]) or None
    sentinels = _hosts(hosts)
    service, _, db = path.partition("/")
    if not service or not (db == "" or db.isdigit()):
        raise ValueError("expected /service or /service/db after the sentinels")
    return sentinels, service, int(db or 0), password


def _hosts(hosts: str) -> list[tuple[str, int]]:
    found = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65_536:
            raise ValueError(f"{item!r} is not host:port")
        found.append((host, int(port)))
    return found


def is_cluster_url(url: str) -> bool:
    """Whether a REDIS_URL names a Redis Cluster."""
    return url.startswith(tuple(CLUSTER_SCHEMES))


def parse_cluster_url(url: str) -> tuple[str, list[tuple[str, int]]]:
    """The first node as a plain redis:// or rediss:// URL (credentials and query kept, for
    redis-py) and every start-up node of a ``redis+cluster://`` or ``rediss+cluster://`` URL.

    Raises:
        ValueError: the URL does not have that form (a cluster has no databases but 0).
    """
    scheme = next(prefix for prefix in CLUSTER_SCHEMES if url.startswith(prefix))
    rest = url.removeprefix(scheme)
    location, separator, tail = rest.partition("?")
    location, slash, path = location.partition("/")
    if path not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0")
    credentials, at, hosts = location.rpartition("@")
    nodes = _hosts(hosts)
    host, port = nodes[0]
    first = f"{CLUSTER_SCHEMES[scheme]}{credentials}{at}{host}:{port}{slash}{path}{separator}{tail}"
    return first, nodes


def connect(
    url: str,
    *,
    socket_timeout: float,
    connect_timeout: float,
    retries: int,
    max_connections: int,
) -> Client:
    """Build a Redis client with explicit timeouts and retries (never the library defaults).

    ``redis+sentinel://`` URLs give a client of the service's current master, which the
    sentinels name again after every failover (redis-py asks them on each new connection).
    ``redis+cluster://`` URLs give a cluster client that learns the other nodes from any
    start-up node; ``max_connections`` then holds per node.
    """
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "max_connections": max_connections,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
    }
    if is_cluster_url(url):
        first, nodes = parse_cluster_url(url)
        cluster = PendingCluster(
            Rules(),
            dict(
                url=first,
                startup_nodes=[
                    ClusterNode(host, port)  # type: ignore[no-untyped-call]  # redis stub gap
                    for host, port in nodes[1:]
                ],
                # the cluster client retries (after refreshing its map of the slots); the nodes'
                # own clients never do, so that a retry always goes to the slot's current node
                retry=Retry(NoBackoff(), retries),
                **options,
            ),
        )
        with contextlib.suppress(RedisClusterException):  # degraded until a node answers
            cluster.built()
        return cluster
    options |= {"retry": Retry(NoBackoff(), retries), "retry_on_timeout": retries > 0}
    if not url.startswith(SENTINEL_SCHEME):
        return redis.Redis.from_url(url, **options)
    sentinels, service, db, password = parse_sentinel_url(url)
    manager = redis.sentinel.Sentinel(
        sentinels,
        sentinel_kwargs={
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "password": password,
        },
    )
    client: redis.Redis = manager.master_for(service, db=db, password=password, **options)
    return client
