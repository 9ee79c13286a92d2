"""The app factory: mounts the doors (WeChat bot, mini-program API), /healthz and /readyz, resources per worker."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from sanic import Request, Sanic
from sanic.response import JSONResponse, json

from api import observability, resources
from api.errors import install_error_handlers
from api.readiness import readiness
from orders.clock import Clock
from orders.config import Settings, check_workers, load_settings
from orders.services import OrderService

log = logging.getLogger("sidan.app")
_app_names = itertools.count()


def create_app(
    settings: Settings | None = None,
    *,
    classifier=None,
    similarity=None,
    store=None,
    clock: Clock | None = None,
    name: str | None = None,
    freeze_heap: bool | None = None,
) -> Sanic:
    """Build the app. Tests inject a classifier (and the similarity of hot spots when it is no Router), a store or a
    clock; production loads them per worker.
    freeze_heap: take what the worker loaded at start out of the cyclic collector's sight once it serves
    (default: unless env is test, where one process builds many apps and each one's heap is garbage after it)."""
    settings = settings or load_settings()
    if freeze_heap is None:
        freeze_heap = settings.app.env != "test"
    check_workers(settings, settings.app.workers)
    app = Sanic(name or f"sidan{next(_app_names)}", log_config=observability.log_config(settings))
    app.config.KEEP_ALIVE_TIMEOUT = 15
    # a photo upload up to media.max_upload_bytes and its multipart framing; POST /api/v1/media says when it is larger
    app.config.REQUEST_MAX_SIZE = max(8 * 1024 * 1024, settings.media.max_upload_bytes + 1024 * 1024)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    # TouchUp rewrites Sanic's shared classes for one app; tests build many apps in one process.
    app.config.TOUCHUP = settings.app.env != "test"
    app.ctx.settings = settings
    app.ctx.clock = clock or Clock()
    install_error_handlers(app)
    observability.install(app)

    @app.before_server_start
    async def start_resources(app: Sanic) -> None:
        await resources.start_database(settings)
        app.ctx.store = store if store is not None else resources.start_store(settings)
        app.ctx.classifier = classifier if classifier is not None else resources.load_classifier(settings)
        app.ctx.similarity = similarity if similarity is not None else resources.load_similarity(app.ctx.classifier)
        app.ctx.media = resources.start_media_store(settings)
        app.ctx.orders = OrderService(settings, app.ctx.classifier, clock=app.ctx.clock,
                                      on_submit=[app.ctx.metrics.observe_submission], media_store=app.ctx.media,
                                      similarity=app.ctx.similarity)  # one per worker: duplicates and hot spots
        app.ctx.wechat = resources.start_wechat_client(settings, app.ctx.store)

    @app.after_server_stop
    async def stop_resources(app: Sanic) -> None:
        with contextlib.suppress(TimeoutError):  # the similar-order look-ups started by the last reports (合并工单)
            async with asyncio.timeout(5):
                await app.ctx.orders.similar_settled()
        await app.ctx.wechat.close()
        await resources.stop_media_store(app.ctx.media)
        if store is None and getattr(app.ctx, "store", None) is not None:
            await app.ctx.store.close()
        await resources.stop_database()

    if freeze_heap:
        @app.after_server_start
        async def settle_heap(app: Sanic) -> None:
            resources.freeze_startup_heap()

    # background: the outbox dispatcher, the deadline sweep and the media downloads in this worker
    # (settings.app.run_background_tasks)
    @app.after_server_start
    async def start_background(app: Sanic) -> None:
        app.ctx.background = None
        if settings.app.run_background_tasks:
            from bot.notifier import Notifier
            from orders.background import BackgroundTasks

            sender = Notifier(app.ctx.wechat, settings, clock=app.ctx.clock)
            tasks = BackgroundTasks.for_service(app.ctx.orders, sender, app.ctx.store, similarity=app.ctx.similarity)
            if settings.sends_wechat:
                tasks.fetcher = resources.media_fetcher(settings, app.ctx.wechat, app.ctx.media, clock=app.ctx.clock)
                tasks.lookups = resources.unionid_lookups(app.ctx.wechat, clock=app.ctx.clock,
                                                          poll_seconds=settings.media.fetch_poll_seconds)
            else:
                log.warning("development WeChat credentials: outgoing messages stay in the outbox, unsent, and "
                            "residents' photos are not downloaded (nor their unionids looked up)")
                tasks.dispatcher = None
            if app.ctx.similarity is None and settings.hotspots.alert:
                log.warning("no routing model to compare reports with: hot spots (热点诉求) are not alerted")
            app.ctx.background = tasks.start()

    @app.before_server_stop
    async def stop_background(app: Sanic) -> None:
        if getattr(app.ctx, "background", None) is not None:
            await app.ctx.background.stop()  # before the database closes: claims are handed back

    # doors
    from api.v1 import register as register_api
    register_api(app)
    from bot.web import register as register_bot
    register_bot(app)
    from api.stats import register as register_stats
    register_stats(app)
    from api.web_auth import register as register_web_auth
    register_web_auth(app)
    from api.workbench import register as register_workbench
    register_workbench(app)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """Liveness (the container's health check): 200 while the process serves; the body says what is degraded."""
        return json(await health(request.app))

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness (the load balancer's): 503 with the reasons while this deployment cannot serve residents."""
        report = await readiness(request.app)
        return json(report, status=200 if report["ready"] else 503, ensure_ascii=False)

    return app


async def health(app: Sanic) -> dict:
    from orders import db

    status = {"status": "ok", "database": "ok", "store": "ok", "store_kind": getattr(app.ctx.store, "kind", "?")}
    try:
        await db.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ok", reported, not raised
        status["database"] = f"error: {type(exc).__name__}"
        status["status"] = "degraded"
    try:
        await app.ctx.store.ping()
    except Exception as exc:  # noqa: BLE001
        status["store"] = f"error: {type(exc).__name__}"
        status["status"] = "degraded"
    return status
