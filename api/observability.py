"""Structured JSON logs with a request id, secret redaction, and Prometheus metrics at /metrics."""
from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw

from api.auth import AuthError, bearer_token
from orders.config import Settings
from orders.privacy import RedactingFilter, redact

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

TOKEN_PARAM = re.compile(r"(access_token|secret|js_code|session_key)=([^&\s\"']+)")
BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")
GAUGE_SECONDS = 10.0  # the database gauges are read at most this often: scraping cannot be used to load the database


def secret_values(settings: Settings) -> list[str]:
    values = [settings.wechat.token, settings.wechat.aes_key, settings.wechat.app_secret,
              settings.wechat.miniapp_secret, settings.auth.jwt_secret, settings.metrics.token]
    return sorted({v for v in values if v and len(v) >= 6}, key=len, reverse=True)


class Redactor:
    """Masks configured secrets, tokens in URLs, bearer tokens and personal data (orders.privacy) in any log line."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = secrets

    def __call__(self, text: str) -> str:
        for value in self._secrets:
            text = text.replace(value, "***")
        text = TOKEN_PARAM.sub(r"\1=***", text)
        text = BEARER.sub(r"\1***", text)
        return redact(text) or text


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("status", "method", "path", "duration_ms", "order", "kind"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Each string is redacted before it is quoted (a number in the JSON is never mistaken for a phone).
        entry = {key: self._redact(value) if isinstance(value, str) else value for key, value in entry.items()}
        return json.dumps(entry, ensure_ascii=False, default=lambda value: self._redact(str(value)))


def log_config(settings: Settings, stream: Any = "ext://sys.stderr") -> dict[str, Any]:
    """A dictConfig: every sidan and sanic logger writes redacted JSON lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "redact": Redactor(secret_values(settings))}},
        "filters": {"personal_data": {"()": RedactingFilter}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": stream,
                              "filters": ["personal_data"]}},
        "loggers": {
            name: {"handlers": ["json"], "level": "INFO", "propagate": False}
            for name in ("sidan", "sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets",
                         "tortoise")
        },
    }


class IntakeCollector:
    """The bot's group commit, read at scrape: whether the database keeps up (reports per transaction, reports
    waiting for one, batches that failed and were written one by one)."""

    def __init__(self, intake: Callable[[], Any]) -> None:
        self.intake = intake  # the worker's GroupCommit, or None before the bot is set up

    def collect(self):
        intake = self.intake()
        if intake is None:
            return
        yield CounterMetricFamily("sidan_intake_batches", "Intake transactions (each writes one or more reports)",
                                  value=intake.batches)
        yield CounterMetricFamily("sidan_intake_reports", "Reports written by intake transactions that committed",
                                  value=intake.written)
        yield CounterMetricFamily("sidan_intake_fallbacks", "Intake batches that failed and were written one by one",
                                  value=intake.fallbacks)
        yield GaugeMetricFamily("sidan_intake_pending", "Reports waiting for the next intake transaction",
                                value=intake.pending())


class Metrics:
    """Per-worker registry. Gauges of the database (orders by state, outbox backlog) are read at a scrape, at most
    once per GAUGE_SECONDS; scrapes in between (or at the same time) are served the last read."""

    def __init__(self, intake: Callable[[], Any] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(IntakeCollector(intake))
        self.requests = Counter("sidan_requests_total", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("sidan_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
                                 buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.orders_by_state = Gauge("sidan_orders", "Orders by state", ["state"], registry=self.registry)
        self.outbox_backlog = Gauge("sidan_outbox_backlog", "Outbox rows not yet sent", ["status"],
                                    registry=self.registry)
        self.confidence = Histogram("sidan_classifier_confidence", "Routing confidence of submitted orders",
                                    registry=self.registry, buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
        self.monotonic = time.monotonic
        self._gauges_read_at: float | None = None
        self._gauges_lock = asyncio.Lock()

    def observe_submission(self, order: Any, prediction: Any) -> None:
        self.confidence.observe(float(getattr(prediction, "confidence", 0.0) or 0.0))

    async def refresh_from_database(self) -> None:
        async with self._gauges_lock:
            now = self.monotonic()
            if self._gauges_read_at is not None and now - self._gauges_read_at < GAUGE_SECONDS:
                return
            self._gauges_read_at = now  # a read that fails counts too: a database in trouble is not asked again
            await self._read_gauges()

    async def _read_gauges(self) -> None:
        from tortoise.functions import Count

        from orders import models

        states = await models.Order.all().group_by("state").annotate(n=Count("id")).values("state", "n")
        backlog = await models.Outbox.filter(status__in=["pending", "dead"]).group_by("status").annotate(
            n=Count("id")).values("status", "n")
        self.orders_by_state.clear()
        for row in states:
            self.orders_by_state.labels(row["state"]).set(row["n"])
        self.outbox_backlog.clear()
        for row in backlog:
            self.outbox_backlog.labels(row["status"]).set(row["n"])


def install(app: Sanic) -> None:
    metrics = Metrics(intake=lambda: getattr(getattr(app.ctx, "bot", None), "intake", None))
    app.ctx.metrics = metrics

    @app.on_request
    async def start_request(request: Request) -> None:
        incoming = request.headers.get("x-request-id", "")
        request.ctx.request_id = incoming if re.fullmatch(r"[A-Za-z0-9._-]{8,64}", incoming) else uuid.uuid4().hex
        request.ctx.started = time.perf_counter()
        request_id_var.set(request.ctx.request_id)

    @app.on_response
    async def finish_request(request: Request, response: HTTPResponse) -> None:
        started = getattr(request.ctx, "started", None)
        route = request.route.name.split(".", 1)[-1] if request.route else "unmatched"
        if response is not None:
            response.headers["X-Request-ID"] = getattr(request.ctx, "request_id", "")
            metrics.requests.labels(route, request.method, str(response.status)).inc()
        if started is not None:
            metrics.latency.labels(route).observe(time.perf_counter() - started)

    @app.get("/metrics")
    async def prometheus(request: Request) -> HTTPResponse:
        token = app.ctx.settings.metrics.token
        if token and not hmac.compare_digest((bearer_token(request) or "").encode(), token.encode()):
            raise AuthError("需要监控令牌:请求头 Authorization: Bearer <SIDAN_METRICS_TOKEN>")
        try:
            await metrics.refresh_from_database()
        except Exception:  # noqa: BLE001 - the request metrics are still worth serving
            logging.getLogger("sidan.metrics").warning("database gauges unavailable")
        return raw(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)
