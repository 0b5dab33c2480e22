"""Prometheus metrics, one registry per app (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "omniroute_messages",
            "Inbound messages by channel and outcome (accepted, recorded, duplicate, rejected).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "omniroute_webhooks",
            "Provider webhook requests verified and stored, by connector.",
            ["connector"],
            registry=self.registry,
        )
        self.ingest_latency = Histogram(
            "omniroute_ingest_latency_seconds",
            "From a message's arrival to it being durably stored and queued.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.release_latency = Histogram(
            "omniroute_routing_latency_seconds",
            "From a message's arrival to its work item being published to the agent queue.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.released = Counter(
            "omniroute_items_released",
            "Work items released from the backlog into agent queues.",
            ["queue"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "omniroute_queue_depth",
            "Items per queue: waiting in the backlog, or ready in the agent queue.",
            ["queue", "state"],
            registry=self.registry,
        )
        self.merges = Counter(
            "omniroute_customer_merges", "Customer merges.", ["trigger"], registry=self.registry
        )
        self.events = Counter(
            "omniroute_events",
            "Events published to omniroute.events, by routing key.",
            ["routing_key"],
            registry=self.registry,
        )
        self.timers_fired = Counter(
            "omniroute_timers_fired",
            "Escalation timers fired (warning, breach, overflow, sticky).",
            ["kind"],
            registry=self.registry,
        )
        self.timer_lateness = Histogram(
            "omniroute_timer_lateness_seconds",
            "How long after its due time a timer was applied.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
