"""Typed application keys: what the composition root puts into the app."""

from __future__ import annotations

from aiohttp import web

from connectors.base import Connector
from router.agents import Agents
from router.blobs import Blobs
from router.clock import Clock
from router.conversations import Conversations, Escalations
from router.dispatch_thread import DispatchThread
from router.dispatcher import Dispatcher
from router.intake import Intake
from router.ledger import Ledger
from router.metrics import Metrics
from router.pipeline import Ingestor
from router.policy import RoutingPolicy
from router.ports import Broker, Store
from router.presence import PresenceStore
from router.settings import Secret, Settings

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
BROKER = web.AppKey("broker", Broker)
INGESTOR = web.AppKey("ingestor", Ingestor)
POLICY = web.AppKey("policy", RoutingPolicy)
CONVERSATIONS = web.AppKey("conversations", Conversations)
ESCALATIONS = web.AppKey("escalations", Escalations)
DISPATCHER: web.AppKey[Dispatcher | DispatchThread] = web.AppKey("dispatcher")
TOKEN = web.AppKey("token", Secret)
PRESENCE = web.AppKey("presence", PresenceStore)
AGENTS = web.AppKey("agents", Agents)
SOCKETS: web.AppKey[set[web.WebSocketResponse[bool]]] = web.AppKey("sockets")
LEDGER = web.AppKey("ledger", Ledger)
BLOBS = web.AppKey("blobs", Blobs)
INTAKE = web.AppKey("intake", Intake)
CONNECTORS: web.AppKey[dict[str, Connector]] = web.AppKey("connectors")
