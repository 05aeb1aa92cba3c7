"""Prometheus metrics, and ``/metrics`` in the text format.

Under ``talkroom serve --workers N`` every worker is its own process, and a
scrape lands on one of them. The CLI then points prometheus-client's
multiprocess mode at a shared directory (``TALKROOM_METRICS_DIR``, or a fresh
temporary one) before the workers start: each worker writes its values to
files there and ``/metrics`` adds up every worker's.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

CONNECTIONS = Gauge(
    "talkroom_connections",
    "Open WebSocket connections.",
    multiprocess_mode="livesum",
)
ROOMS_SUBSCRIBED = Gauge(
    "talkroom_rooms_subscribed",
    "Rooms this process subscribes to (it has at least one connection in them).",
    multiprocess_mode="livesum",
)
MESSAGES_SAVED = Counter("talkroom_messages_saved", "Chat messages saved.")
MESSAGE_TRANSACTIONS = Counter(
    "talkroom_message_transactions",
    "The message writer's transactions; messages saved over this is the mean batch.",
)
DELIVERIES = Counter("talkroom_deliveries", "Chat messages sent live to a socket.")
SLOW_CLIENTS_CLOSED = Counter(
    "talkroom_slow_clients_closed", "Sockets closed with 1013 because their outbox was full."
)
REDIS_RECONNECTS = Counter(
    "talkroom_redis_reconnects", "Times the pub/sub connection to Redis was re-established."
)
GAP_REPAIRS = Counter(
    "talkroom_gap_repairs",
    "Catch-ups from the database: a gap in a socket's seqs, or a resync after a reconnect.",
    ["reason"],
)
for _reason in ("gap", "resync"):
    GAP_REPAIRS.labels(_reason)  # present (as 0) before the first repair
CATCH_UP_QUERIES = Counter(
    "talkroom_catch_up_queries",
    "Catch-up reads from the database; sockets repairing from the same seq at once share one.",
)
PUBLISH_FAILURES = Counter(
    "talkroom_publish_failures",
    "Events the broker could not take; each kind has its repair (see app.announce).",
    ["kind"],
)
SOCKETS_RECHECKED_CLOSED = Counter(
    "talkroom_sockets_rechecked_closed",
    "Sockets closed by the periodic check because their session or room was gone "
    "(a close event that never arrived).",
)
SAVE_TO_SEND = Histogram(
    "talkroom_save_to_send_seconds",
    "From a message's commit to its frame being written to a socket.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

WEBHOOK_DELIVERIES = Counter(
    "talkroom_webhook_deliveries",
    "Webhook delivery attempts by outcome: ok, retry (failed, tried again later), failed "
    "(out of attempts or refused), dropped (the bot's queue was full).",
    ["outcome"],
)
for _outcome in ("ok", "retry", "failed", "dropped"):
    WEBHOOK_DELIVERIES.labels(_outcome)
WEBHOOK_LATENCY = Histogram(
    "talkroom_webhook_latency_seconds",
    "From a webhook POST to the end of its reply (or its failure).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WEBHOOK_QUEUE = Gauge(
    "talkroom_webhook_queue_depth",
    "Webhook deliveries waiting, as a worker last counted them.",
    multiprocess_mode="livemax",
)

TASKS = Gauge(
    "talkroom_asyncio_tasks",
    "asyncio tasks alive in a worker when it last served /metrics. It follows the work"
    " in flight, not the open sockets: an idle socket keeps no task.",
    multiprocess_mode="livesum",
)

router = APIRouter()


def multiprocess_on() -> bool:
    """Whether prometheus-client was imported in multiprocess mode (values in files)."""
    return values.ValueClass is not values.MutexValue


def process_exit(metrics_dir: Path | None) -> None:
    """Drop this process's live gauges (its connections are gone)."""
    if metrics_dir is not None and multiprocess_on():
        multiprocess.mark_process_dead(os.getpid(), str(metrics_dir))


@router.get("/metrics", include_in_schema=False)
async def metrics_page(request: Request) -> Response:
    TASKS.set(len(asyncio.all_tasks()))
    metrics_dir: Path | None = request.app.state.settings.metrics_dir
    registry = REGISTRY
    if metrics_dir is not None and multiprocess_on():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
