"""The composition root: the only module that knows the concrete backends.

``create_app(settings)`` builds the aiohttp application; each resource is one cleanup
context (opened in order at start-up, closed in reverse at shutdown): the API token,
the store, the broker, the conversation service, the ingest pipeline, the dispatcher,
the escalation timers, the inbound consumer, agent presence and the agents' lease
sweeper, the connectors' ledger and intake, and the connectors' listeners and pollers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import WSCloseCode, web

from connectors import registry
from connectors.base import ConnectorContext, Service
from router import language
from router.agents import Agents
from router.blobs import Blobs
from router.clock import Clock, SystemClock
from router.conversations import Conversations, Escalations
from router.dispatch_thread import DispatchThread
from router.dispatcher import Dispatcher
from router.http import (
    agents,
    asyncapi,
    chat,
    connectors,
    conversations,
    customers,
    email,
    messages,
    openapi,
    ops,
    queues,
    tokens,
)
from router.http.auth import auth_middleware, resolve_token
from router.http.keys import (
    AGENTS,
    BLOBS,
    BROKER,
    CLOCK,
    CONNECTORS,
    CONVERSATIONS,
    DISPATCHER,
    ESCALATIONS,
    INGESTOR,
    INTAKE,
    LEDGER,
    METRICS,
    POLICY,
    PRESENCE,
    SETTINGS,
    SOCKETS,
    STORE,
    TOKEN,
)
from router.http.responses import error_middleware
from router.intake import Intake
from router.ledger import Ledger
from router.metrics import Metrics
from router.models import IngestResult
from router.pipeline import Ingestor, timed_overflow_queues
from router.policy import load_policy
from router.ports import Broker, Store
from router.presence import PresenceStore
from router.settings import Settings, masked_url

log = structlog.get_logger("router.app")


RUN_TIMERS = web.AppKey("run_timers", bool)


def create_app(
    settings: Settings, *, clock: Clock | None = None, run_timers: bool = True
) -> web.Application:
    """The daemon's application. ``run_timers=False`` leaves firing the escalation
    timers and sweeping agent leases to the caller (``app[ESCALATIONS].fire_due()``,
    ``app[AGENTS].sweep()``: tests on a manual clock)."""
    app = web.Application(
        client_max_size=_max_body_bytes(settings),
        middlewares=[error_middleware, auth_middleware],
    )
    app[SETTINGS] = settings
    app[POLICY] = load_policy(settings)
    app[RUN_TIMERS] = run_timers
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app[SOCKETS] = set()
    for module in (
        ops,
        messages,
        customers,
        conversations,
        queues,
        agents,
        tokens,
        openapi,
        asyncapi,
        connectors,
        email,
        chat,
    ):
        app.router.add_routes(module.routes)
    app.cleanup_ctx.extend(
        [
            _token_ctx,
            _store_ctx,
            _broker_ctx,
            _conversations_ctx,
            _ingest_ctx,
            _dispatch_ctx,
            _escalation_ctx,
            _inbound_ctx,
            _presence_ctx,
            _agents_ctx,
            _ledger_ctx,
            _connectors_ctx,
        ]
    )
    chat.setup(app)
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
        AmqpBroker(
            settings.amqp.url.get(),
            prefix=settings.amqp.prefix,
            queue_type=settings.amqp.queue_type,
        ),
    )


async def _token_ctx(app: web.Application) -> AsyncIterator[None]:
    if app[POLICY].rules.uses_language:  # the detector's model loads once, now
        await asyncio.to_thread(language.load)
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


async def _conversations_ctx(app: web.Application) -> AsyncIterator[None]:
    app[CONVERSATIONS] = Conversations(
        store=app[STORE],
        broker=app[BROKER],
        clock=app[CLOCK],
        config=app[POLICY].lifecycle,
        metrics=app[METRICS],
        on_queued=lambda queue: app[DISPATCHER].wake(queue),  # noqa: PLW0108 — DISPATCHER is set later
    )
    yield


async def _ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ingestor = Ingestor(
        store=app[STORE],
        policy=app[POLICY],
        clock=app[CLOCK],
        metrics=app[METRICS],
        default_region=settings.identity.default_region or None,
        batch_max=settings.dispatch.batch_max,
        reopen_window_s=settings.routing.reopen_window_s,
        on_queued=lambda queue: app[DISPATCHER].wake(queue),  # noqa: PLW0108 — DISPATCHER is set later
        on_merged=lambda result: _on_merged(app, result),
        on_stored=app[CONVERSATIONS].customer_message,
        overflow_queues=timed_overflow_queues(app[POLICY].queues),
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


async def _escalation_ctx(app: web.Application) -> AsyncIterator[None]:
    escalations = Escalations(store=app[STORE], conversations=app[CONVERSATIONS], clock=app[CLOCK])
    app[ESCALATIONS] = escalations
    if app[RUN_TIMERS]:
        escalations.start()
    try:
        yield
    finally:
        await escalations.stop()


async def _inbound_ctx(app: web.Application) -> AsyncIterator[None]:
    ingestor = app[INGESTOR]

    async def handle(body: bytes) -> None:
        await ingestor.ingest_json(body)

    await app[BROKER].consume_inbound(handle)
    yield


def build_presence(settings: Settings) -> PresenceStore:
    if settings.embedded:
        from router.backends.memory_presence import MemoryPresence

        return MemoryPresence()
    from router.backends.redis_presence import RedisPresence

    return RedisPresence(settings.redis.url.get(), prefix=settings.redis.prefix)


async def _presence_ctx(app: web.Application) -> AsyncIterator[None]:
    presence = build_presence(app[SETTINGS])
    app[PRESENCE] = presence
    await presence.open()
    try:
        yield
    finally:
        await presence.close()


async def _agents_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    agents = Agents(
        presence=app[PRESENCE],
        broker=app[BROKER],
        clock=app[CLOCK],
        settings=settings.agents,
        queues=settings.queue_names,
    )
    app[AGENTS] = agents
    if app[RUN_TIMERS]:
        agents.start()
    try:
        yield
    finally:
        await agents.stop()


def _max_body_bytes(settings: Settings) -> int:
    """The largest body any route takes: ``http.max_body_bytes`` or a connector's own."""
    own = (getattr(conf, "max_body_bytes", 0) or 0 for conf in settings.connectors.values())
    return max([settings.http.max_body_bytes, *own])


def build_ledger(settings: Settings) -> Ledger:
    if settings.embedded:
        from router.backends.sqlite_ledger import SqliteLedger

        return SqliteLedger(settings.data.dir / "ledger.sqlite3")
    from router.backends.redis_ledger import RedisLedger

    return RedisLedger(settings.redis.url.get(), settings.redis.prefix)


async def _ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ledger = build_ledger(settings)
    app[LEDGER] = ledger
    app[BLOBS] = Blobs(settings.data.attachments)
    await ledger.open()
    app[INTAKE] = Intake(
        ingestor=app[INGESTOR],
        store=app[STORE],
        ledger=ledger,
        blobs=app[BLOBS],
        clock=app[CLOCK],
        publish_event=app[BROKER].publish_event,
    )
    try:
        yield
    finally:
        await ledger.close()


async def _connectors_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the configured connectors; start their listeners and pollers; stop them
    first at shutdown (before the intake they feed goes away)."""
    import aiohttp

    settings = app[SETTINGS]
    async with aiohttp.ClientSession() as session:
        context = ConnectorContext(
            clock=app[CLOCK], http=session, public_url=settings.http.public_url.rstrip("/")
        )
        app[CONNECTORS] = registry.build(settings.connectors, context)
        services: list[Service] = []
        try:
            for name, connector in app[CONNECTORS].items():
                service = connector.service()
                if service is not None:
                    await service.start(app[INTAKE])
                    services.append(service)
                    log.info("connector.started", connector=name)
            names = list(app[CONNECTORS].keys())
            log.info("connectors.ready", connectors=names)
            yield
        finally:
            for service in reversed(services):
                await service.stop()


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
