"""The workers' Redis transport (payouts/broker.py) against the machine's real Redis.

The state under test is the one a fault run produced: a channel holding an unacknowledged task
is closed after its transport was detached from the connection (Redis dropped, Celery's
consumer closing to reconnect). kombu's own transport dies there with an AttributeError, which
kills the worker; ours must raise a connection error (which kombu swallows) and keep the task.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from payouts.broker import TRANSPORT, RedisTransport
from payouts.settings import PayoutsSettings
from payouts.worker import create_celery
from tests.conftest import redis_scratch_prefix
from tests.payouts.conftest import REDIS_URL


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_scratch_prefix(REDIS_URL, "broker-test") as value:
        yield value


def hold_unacked_task(transport: type, prefix: str) -> tuple[Connection, object, str]:
    """A connection whose default channel holds one delivered, unacknowledged message."""
    conn = Connection(REDIS_URL, transport=transport,
                      transport_options={"global_keyprefix": prefix, "visibility_timeout": 0})
    queue = Queue("payouts-test", Exchange("payouts-test"), routing_key="payouts-test")
    body = {"task": uuid.uuid4().hex}
    with conn.Producer() as producer:
        producer.publish(body, exchange=queue.exchange, routing_key="payouts-test", declare=[queue])
    channel = conn.default_channel
    message = queue(channel).get(no_ack=False)
    assert message is not None and message.payload == body
    return conn, channel, body["task"]


def detach(conn: Connection, channel) -> None:  # type: ignore[no-untyped-def]
    """What a broker drop leaves behind: the channel's transport lost its client and pool."""
    channel.connection.client = None
    channel._pool = None
    conn._transport = None  # the next .transport is a new one, as after a reconnect


def test_closing_a_detached_channel_is_a_connection_error_and_keeps_the_task(prefix: str) -> None:
    conn, channel, task = hold_unacked_task(RedisTransport, prefix)
    detach(conn, channel)
    with pytest.raises(redis.ConnectionError):
        channel._connparams()
    conn.maybe_close_channel(channel)  # kombu swallows connection errors: the worker lives on
    assert channel.closed

    # The task was not lost: it is in the unacked index, and the visibility sweep delivers it again.
    with Connection(REDIS_URL, transport=RedisTransport,
                    transport_options={"global_keyprefix": prefix, "visibility_timeout": 0}) as fresh:
        fresh.default_channel.qos.restore_visible(start=0)
        again = Queue("payouts-test", Exchange("payouts-test"), routing_key="payouts-test")(fresh.default_channel).get(no_ack=False)
        assert again is not None and again.payload["task"] == task
        again.ack()


def test_kombus_own_transport_crashes_in_the_same_state(prefix: str) -> None:
    """The bug the subclass exists for; when this stops failing, kombu fixed it upstream."""
    conn, channel, _ = hold_unacked_task(kombu_redis.Transport, prefix)
    detach(conn, channel)
    with pytest.raises(AttributeError, match="hostname"):
        conn.maybe_close_channel(channel)


def test_the_workers_use_it_on_redis_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    on_redis = create_celery(PayoutsSettings(data_dir=tmp_path, redis_url=REDIS_URL))
    assert on_redis.conf.broker_transport == TRANSPORT
    with on_redis.connection_for_write() as conn:
        assert conn.transport_cls is RedisTransport or isinstance(conn.transport, RedisTransport)
    embedded = create_celery(PayoutsSettings(data_dir=tmp_path, redis_url=None))
    assert embedded.conf.broker_transport is None
