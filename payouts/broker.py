"""The Redis broker transport the workers use: kombu's own, with one crash on reconnect fixed.

When Redis drops while a worker holds an unacknowledged task, Celery's consumer closes its
connection and reconnects. kombu 5.7 can then close a channel whose transport was already
detached (``transport.client is None``): the channel tries to requeue its unacked task, builds
a new connection pool from ``client.hostname`` and dies with ``AttributeError: 'NoneType' object
has no attribute 'hostname'``. That is not a connection error, so Celery does not swallow it
and the worker process exits (seen in our fault runs; celery/kombu#582 is the same failure from
another caller). Raising redis' ``ConnectionError`` instead lets kombu treat it as what it is: the
close is abandoned, the consumer reconnects, and the task stays in Redis' unacked index, from
which the visibility-timeout sweep delivers it again (every task is idempotent; see worker.py).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

# What Celery's ``broker_transport`` setting takes (kombu resolves "module:Class").
TRANSPORT = "payouts.broker:RedisTransport"


class RedisChannel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:  # the transport was closed under this channel
            raise RedisConnectionError("broker connection already closed; the worker reconnects")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel
