"""The Celery app, configured from `Settings` (never at import time).

Settings as in docs/design/celery-settings.md: JSON only; late acks made safe by
idempotent tasks; visibility timeout far above every hard time limit and every
countdown we use (long waits are parked in a Redis sorted set instead);
prefetch of one so a slow page does not hold others; socket keepalive and
timeouts so a worker notices a dead broker connection.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup
from kombu import Queue

from ..settings import Settings, SourcesConfig
from .broker import transport_for
from .liveness import REAP_EVERY, count_in, name_process

QUEUES = ("discover", "fetch", "process")
UNPARK_EVERY = 5.0  # seconds between moves of due parked fetches back to the queue


def celery_config(settings: Settings) -> dict[str, Any]:
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "socket_keepalive": True,
        "retry_on_timeout": True,
        "health_check_interval": 25,
        # How often a consumer looks for messages whose consumer died: every REAP_EVERY
        # seconds for owners whose heartbeat expired, and a tenth of the visibility timeout
        # (at most a minute) for records older than it; our QoS keeps both clocks, so
        # kombu's call-count throttle is off (worker/liveness.py).
        "unacked_restore_interval": REAP_EVERY,
        "unacked_restore_throttle": 1,
        # heartbeats and the recovery counter live under the deployment's key prefix
        "wire_key_prefix": settings.key_prefix,
        # The lock one worker holds while it restores; a worker killed holding it
        # blocked every restore for kombu's default 300 s. A restore takes
        # milliseconds, and two at once are safe (each message moves in one
        # script that checks it is still there), so a short expiry costs nothing.
        "unacked_mutex_expire": 30,
    }
    # Settings.from_env guarantees task_time_limit + max_countdown < visibility_timeout
    return {
        "broker_url": settings.broker,
        # kombu's Redis transport with atomic take-and-record (worker/queue/broker.py)
        "broker_transport": transport_for(settings.broker),
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout},
        "visibility_timeout": settings.visibility_timeout,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_heartbeat": 0,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        # redeliver tasks whose process died; our own delivery counter caps it (delivery.py)
        "task_reject_on_worker_lost": True,
        # a task that raised is acknowledged: retry, park and dead letter live in the task code
        "task_acks_on_failure": True,
        # one killed at the hard time limit never got to record an outcome (a prefork child frozen past
        # it, a C call that never returns): back to the queue, where the delivery counter caps it
        "task_acks_on_timeout": False,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.soft_time_limit,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_max_memory_per_child": 400_000,  # KiB: contain a parser blow-up
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "task_default_queue": "process",
        "task_queues": [Queue(q, routing_key=q) for q in QUEUES],
        "task_routes": {
            "wire.discover": {"queue": "discover"},
            "wire.unpark": {"queue": "discover"},
            "wire.fetch": {"queue": "fetch"},
            "wire.process": {"queue": "process"},
        },
        "task_create_missing_queues": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


def beat_schedule(sources: SourcesConfig) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "unpark": {"task": "wire.unpark", "schedule": UNPARK_EVERY, "options": {"expires": UNPARK_EVERY * 4}},
    }
    for source in sources.sources:
        schedule[f"discover:{source.name}"] = {
            "task": "wire.discover",
            "schedule": source.interval,
            "args": [source.name],
            # a discovery that waited a whole interval in the queue is stale: the next one replaces it
            "options": {"expires": source.interval},
        }
    return schedule


def _name_consumer(sender: Any = None, **_: Any) -> None:
    """A worker's heartbeat shows its node name (`fetch@host`) in `wire status`."""
    if sender:
        name_process(str(sender))


def create_app(settings: Settings, sources: SourcesConfig) -> Celery:
    from ..keys import Keys

    app = Celery("wire", set_as_current=True)
    celeryd_after_setup.connect(_name_consumer, weak=False)
    count_in(settings.redis_url)  # the broker's Redis may be another one (WIRE_BROKER_URL)
    app.conf.update(celery_config(settings))
    app.conf.wire_beat_lock_key = Keys.for_prefix(settings.key_prefix).beat_lock()
    app.conf.beat_schedule = beat_schedule(sources)
    from . import tasks  # registers the shared tasks on this app

    tasks.init(settings, sources)
    app.set_default()
    return app
