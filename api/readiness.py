"""Readiness (/readyz): can this deployment serve residents now? The load balancer sends traffic only while it
answers 200. Liveness is /healthz: 200 while the process serves, whatever it depends on, so the container is not
restarted for a database outage that a restart cannot mend.

Readiness is a list of checks, each giving findings (orders.readiness: a short English code for dashboards and
alerts, a Chinese message for the operator, how bad). An outage makes /readyz answer 503 (`reasons`); the gaps and
notes are listed under `warnings` and leave it 200: they stop some residents, not every one (`sidan check` fails on
the gaps too). What the configuration and the database say is orders.readiness.findings, the same `sidan check`
prints; it is read at most once per DEPLOYMENT_CACHE_SECONDS per worker, so probes do not load the database, except
while it finds an outage: then every probe reads again, so a mended host is back at once. A new check is one more
function in CHECKS.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sanic import Sanic

from orders import db
from orders.readiness import Finding, Severity, database_unavailable, findings

log = logging.getLogger("sidan.readiness")

CHECK_SECONDS = 2.0  # a check that hangs (a database that does not answer) is a reason, not a hung probe
OUTBOX_FAILED_ROUNDS = 3  # one failed round is a blip; three in a row, the loop is failing
DEPLOYMENT_CACHE_SECONDS = 30.0


Check = Callable[[Sanic], Awaitable[list[Finding]]]


async def database_answers(app: Sanic) -> list[Finding]:
    await db.ping()
    return []


async def deployment(app: Sanic) -> list[Finding]:
    """orders.readiness.findings: the schema, the township's data, the configuration (cached, see above)."""
    cached = getattr(app.ctx, "deployment_findings", None)
    if cached is not None and time.monotonic() - cached[0] < DEPLOYMENT_CACHE_SECONDS:
        return cached[1]
    found = await findings(app.ctx.settings, app.ctx.orders.taxonomy)
    outage = any(finding.severity is Severity.OUTAGE for finding in found)
    app.ctx.deployment_findings = None if outage else (time.monotonic(), found)
    return found


async def outbox_sending(app: Sanic) -> list[Finding]:
    background = getattr(app.ctx, "background", None)
    if background is None or background.dispatcher is None:
        return []  # no outbox loop in this process (`sidan worker` sends, or development credentials send nothing)
    if not background.running:
        return [Finding("outbox_stopped", "消息发送循环已停止:通知、回访发不出去", Severity.OUTAGE)]
    failed = background.dispatcher.failed_rounds
    if failed >= OUTBOX_FAILED_ROUNDS:
        return [Finding("outbox_failing", f"消息发送循环连续 {failed} 轮出错:通知、回访发不出去(详见 sidan.outbox 日志)",
                        Severity.OUTAGE)]
    return []


# The database first: while it does not answer, the checks after it (which read it) are not asked.
CHECKS: list[Check] = [deployment, outbox_sending]


async def _run(check: Check, app: Sanic) -> list[Finding]:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return await check(app)
    except Exception as exc:  # noqa: BLE001 - a check that fails is a reason to be not ready, reported
        if check is database_answers:
            return [database_unavailable(exc)]
        log.warning("readiness check %s failed", check.__name__, exc_info=True)
        return [Finding(f"{check.__name__}_error", f"就绪检查 {check.__name__} 出错({type(exc).__name__})",
                        Severity.OUTAGE)]


async def readiness(app: Sanic) -> dict:
    """{"ready": bool, "reasons": [{"code", "message"}, …] (the outages), "warnings": [… the rest]}"""
    found = await _run(database_answers, app)
    if not found:
        for check in CHECKS:
            found += await _run(check, app)
    reasons = [finding.as_dict() for finding in found if finding.severity is Severity.OUTAGE]
    warnings = [finding.as_dict() for finding in found if finding.severity is not Severity.OUTAGE]
    return {"ready": not reasons, "reasons": reasons, "warnings": warnings}
