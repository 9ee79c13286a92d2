"""Readiness (/readyz): can this deployment serve residents now? The load balancer sends traffic only while it
answers 200. Liveness is /healthz: 200 while the process serves, whatever it depends on, so the container is not
restarted for a database outage that a restart cannot mend.

Readiness is a list of checks. Each gives the reasons it cannot serve, a short English code (for dashboards and
alerts) and a Chinese message for the operator; a new check is one more function in CHECKS.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from sanic import Sanic

from orders import db

log = logging.getLogger("sidan.readiness")

CHECK_SECONDS = 2.0  # a check that hangs (a database that does not answer) is a reason, not a hung probe
OUTBOX_FAILED_ROUNDS = 3  # one failed round is a blip; three in a row, the loop is failing


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


Check = Callable[[Sanic], Awaitable[list[Reason]]]


async def database_answers(app: Sanic) -> list[Reason]:
    await db.ping()
    return []


async def migrations_applied(app: Sanic) -> list[Reason]:
    if getattr(app.ctx, "schema_up_to_date", False):
        return []
    pending = await db.pending_migrations()
    if pending:
        return [Reason("migrations_pending",
                       f"数据库缺少 {len(pending)} 个迁移({', '.join(pending)}),请运行 `sidan migrate`")]
    app.ctx.schema_up_to_date = True  # the schema only moves on with a deploy, which starts new processes
    return []


async def outbox_sending(app: Sanic) -> list[Reason]:
    background = getattr(app.ctx, "background", None)
    if background is None or background.dispatcher is None:
        return []  # no outbox loop in this process (`sidan worker` sends, or development credentials send nothing)
    if not background.running:
        return [Reason("outbox_stopped", "消息发送循环已停止:通知、回访发不出去")]
    failed = background.dispatcher.failed_rounds
    if failed >= OUTBOX_FAILED_ROUNDS:
        return [Reason("outbox_failing", f"消息发送循环连续 {failed} 轮出错:通知、回访发不出去(详见 sidan.outbox 日志)")]
    return []


# The database first: while it does not answer, the checks after it (which read it) are not asked.
CHECKS: list[Check] = [migrations_applied, outbox_sending]


async def _run(check: Check, app: Sanic) -> list[Reason]:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return await check(app)
    except Exception as exc:  # noqa: BLE001 - a check that fails is a reason to be not ready, reported
        if check is database_answers:
            return [Reason("database_unavailable", f"数据库连不上({type(exc).__name__}),请检查数据库服务和 "
                                                   "SIDAN_DATABASE_URL")]
        log.warning("readiness check %s failed", check.__name__, exc_info=True)
        return [Reason(f"{check.__name__}_error", f"就绪检查 {check.__name__} 出错({type(exc).__name__})")]


async def readiness(app: Sanic) -> dict:
    """{"ready": bool, "reasons": [{"code", "message"}, …]}"""
    reasons = await _run(database_answers, app)
    if not reasons:
        for check in CHECKS:
            reasons += await _run(check, app)
    return {"ready": not reasons, "reasons": [asdict(reason) for reason in reasons]}
