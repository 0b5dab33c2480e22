"""The composition root: the only module that knows the concrete backends.

``create_app(settings)`` builds the aiohttp application; each resource is one cleanup
context (opened in order at start-up, closed in reverse at shutdown): the API token,
the store, the broker, the ingest pipeline, the dispatcher, the inbound consumer, and
the agent sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import WSCloseCode, web

from router.clock import Clock, SystemClock
from router.dispatch_thread import DispatchThread
from router.dispatcher import Dispatcher
from router.http import customers, messages, openapi, ops, queues
from router.http.auth import auth_middleware, resolve_token
from router.http.keys import (
    BROKER,
    CLOCK,
    DISPATCHER,
    INGESTOR,
    METRICS,
    SETTINGS,
    SOCKETS,
    STORE,
    TOKEN,
)
from router.http.responses import error_middleware
from router.metrics import Metrics
from router.models import IngestResult
from router.pipeline import Ingestor
from router.ports import Broker, Store
from router.routing import DefaultPolicy
from router.settings import Settings, masked_url

log = structlog.get_logger("router.app")


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(
        client_max_size=settings.http.max_body_bytes,
        middlewares=[error_middleware, auth_middleware],
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app[SOCKETS] = set()
    for table in (ops.routes, messages.routes, customers.routes, queues.routes, openapi.routes):
        app.router.add_routes(table)
    app.cleanup_ctx.extend(
        [_token_ctx, _store_ctx, _broker_ctx, _ingest_ctx, _dispatch_ctx, _inbound_ctx]
    )
    app.on_shutdown.append(_close_sockets)
    return app


def build_backends(settings: Settings) -> tuple[Store, Broker]:
    if settings.embedded:
        from router.backends.memory_broker import MemoryBroker
        from router.backends.sqlite_store import SqliteStore

        settings.data.dir.mkdir(parents=True, exist_ok=True)
        return SqliteStore(settings.data.dir / "omniroute.sqlite3"), MemoryBroker()
    from router.backends.amqp_broker import AmqpBroker
    from router.backends.redis_store import RedisStore

    return (
        RedisStore(settings.redis.url.get(), prefix=settings.redis.prefix),
        AmqpBroker(settings.amqp.url.get(), prefix=settings.amqp.prefix),
    )


async def _token_ctx(app: web.Application) -> AsyncIterator[None]:
    app[TOKEN] = resolve_token(app[SETTINGS].api.token, app[SETTINGS].data.dir)
    yield


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store, broker = build_backends(app[SETTINGS])
    app[BROKER] = broker
    app[STORE] = store
    await store.open()
    log.info("store.opened", backend=type(store).__name__, **_where(app[SETTINGS]))
    try:
        yield
    finally:
        await store.close()


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    broker, store = app[BROKER], app[STORE]
    await broker.open()
    broker.on_settled(store.settle)
    log.info("broker.opened", backend=type(broker).__name__)
    try:
        yield
    finally:
        await broker.close()


async def _ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    routing = settings.routing
    ingestor = Ingestor(
        store=app[STORE],
        policy=DefaultPolicy(
            queue=routing.default_queue,
            priority=routing.default_priority,
            first_response_s=routing.first_response_s,
        ),
        clock=app[CLOCK],
        metrics=app[METRICS],
        default_region=settings.identity.default_region or None,
        batch_max=settings.dispatch.batch_max,
        on_queued=lambda queue: app[DISPATCHER].wake(queue),  # noqa: PLW0108 — DISPATCHER is set later
        on_merged=lambda result: _on_merged(app, result),
    )
    app[INGESTOR] = ingestor
    try:
        yield
    finally:
        await ingestor.close()


async def _dispatch_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if app[BROKER].durable:  # production: its own loop and clients, see dispatch_thread
        runner: Dispatcher | DispatchThread = DispatchThread(lambda: _threaded_dispatcher(app))
    else:
        runner = _dispatcher(app, app[STORE], app[BROKER])
    app[DISPATCHER] = runner
    await runner.start()
    try:
        yield
    finally:
        await runner.stop(settings.http.shutdown_timeout_s)


def _dispatcher(app: web.Application, store: Store, broker: Broker) -> Dispatcher:
    settings = app[SETTINGS]
    return Dispatcher(
        store=store,
        broker=broker,
        clock=app[CLOCK],
        metrics=app[METRICS],
        settings=settings.dispatch,
        queues=settings.queue_names,
    )


async def _threaded_dispatcher(
    app: web.Application,
) -> tuple[Dispatcher, Callable[[], Awaitable[None]]]:
    store, broker = build_backends(app[SETTINGS])
    await store.open()
    await broker.open()

    async def close() -> None:
        await broker.close()
        await store.close()

    return _dispatcher(app, store, broker), close


async def _inbound_ctx(app: web.Application) -> AsyncIterator[None]:
    ingestor = app[INGESTOR]

    async def handle(body: bytes) -> None:
        await ingestor.ingest_json(body)

    await app[BROKER].consume_inbound(handle)
    yield


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"shutting down") for ws in list(sockets))
    )


_background: set[asyncio.Task[None]] = set()


def _on_merged(app: web.Application, result: IngestResult) -> None:
    app[METRICS].merges.labels("identity").inc(len(result.merged))
    task = asyncio.create_task(_publish_merges(app, result))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _publish_merges(app: web.Application, result: IngestResult) -> None:
    store = app[STORE]
    for record in await store.merges(result.customer_id):
        if record.loser in result.merged:
            await customers.publish_merge(app, record)


def _where(settings: Settings) -> dict[str, str]:
    if settings.embedded:
        return {"data_dir": str(settings.data.dir)}
    return {"redis": masked_url(settings.redis.url.get())}
