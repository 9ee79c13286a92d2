"""What the privacy rules write: the record of staff taking personal data out, and the purge of closed orders'
personal data after `[privacy] purge_after_days` (个人信息保护法: kept no longer than the purpose needs).

The purge masks phone, ID card and bank card numbers (orders.privacy.redact) wherever an order's words are kept:
its text, result and location label, its events' reasons and data, the ratings' comments, the outbox messages, the
routing corrections (training examples) and the bot's replies. It keeps everything else — figures, times, states,
who did what, and the photos (evidence of the work; they hold no number the text does not) — so the statistics and
the audit trail stay whole. A resident's contact phone goes once every order of theirs is purged. Each purged order gets an OrderEvent "privacy_purge" by 系统.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from orders import models
from orders.clock import Clock
from orders.config import Settings
from orders.lifecycle import TERMINAL_STATES, Role
from orders.privacy import redact, redact_all

PURGE_ACTION = "privacy_purge"
ORDER_FIELDS = {"text": "诉求内容", "normalized_text": "诉求内容", "result": "办理结果", "location_label": "位置描述"}
# Rows that repeat an order's words: (model, the columns that hold them, how the report names them)
RELATED: tuple[tuple[type[models.Model], tuple[str, ...], str], ...] = (
    (models.OrderEvent, ("reason", "data"), "处理记录"),
    (models.Rating, ("comment",), "评价留言"),
    (models.Outbox, ("payload",), "消息"),
    (models.Correction, ("text",), "分类纠正样本"),
    (models.InboundMessage, ("reply",), "公众号回复"),
)


async def record_export(actor: Any, what: str, now: datetime) -> None:
    """A member of staff took a list of orders out (masked): who, when, which file."""
    if actor.id is not None and actor.role != Role.RESIDENT:
        await models.PersonalDataAccess.create(staff_id=actor.id, what="export", detail=what[:64], at=now)


@dataclass
class PurgedOrder:
    number: str
    days_closed: int
    changes: dict[str, int] = field(default_factory=dict)  # what the report names -> how many values

    def describe(self) -> str:
        parts = [name if count == 1 or name in ORDER_FIELDS.values() else f"{name} {count} 条"
                 for name, count in self.changes.items()]
        return f"{self.number}(已关闭 {self.days_closed} 天):{'、'.join(parts)}"


@dataclass
class PurgeReport:
    after_days: int
    dry_run: bool
    checked: int = 0  # closed orders past the time
    purged: list[PurgedOrder] = field(default_factory=list)  # those that held personal data
    skipped: list[str] = field(default_factory=list)  # changed by someone meanwhile: the next run takes them
    contact_phones: int = 0  # residents whose every order is purged: their contact phone goes too

    def lines(self) -> list[str]:
        verb = "将清除" if self.dry_run else "已清除"
        lines = [order.describe() for order in self.purged]
        lines += [f"{number}:刚被他人改动,下次再清除" for number in self.skipped]
        if self.contact_phones:
            lines.append(f"{verb} {self.contact_phones} 位群众留下的联系电话(其工单都已清除)")
        lines.append(f"{verb} {len(self.purged)} 张工单的个人信息(已关闭超过 {self.after_days} 天的工单共 "
                     f"{self.checked} 张{',试运行,未做任何改动' if self.dry_run else ''})")
        return lines


class Purge:
    """`sidan privacy purge`: a batch at a time, each order in its own transaction (its version checked)."""

    def __init__(self, settings: Settings, clock: Clock | None = None, batch: int = 500) -> None:
        self.after_days = settings.privacy.purge_after_days
        self.clock = clock or Clock()
        self.batch = batch

    @property
    def enabled(self) -> bool:
        return self.after_days > 0

    async def run(self, dry_run: bool = False) -> PurgeReport:
        report = PurgeReport(self.after_days, dry_run)
        if not self.enabled:
            return report
        now = self.clock.now()
        cutoff = now - timedelta(days=self.after_days)
        last_id = 0
        while True:
            # Final, untouched since the cutoff, not purged yet: a closed order's last change is its closing.
            orders = await models.Order.filter(
                id__gt=last_id, state__in=[str(state) for state in TERMINAL_STATES], updated_at__lt=cutoff,
                purged_at__isnull=True).order_by("id").limit(self.batch)
            if not orders:
                await self._forget_contact_phones(report, cutoff)
                return report
            last_id = orders[-1].id
            related = await self._related([order.id for order in orders])
            for order in orders:
                report.checked += 1
                await self._purge(order, related, now, report)

    @staticmethod
    async def _forget_contact_phones(report: PurgeReport, cutoff: datetime) -> None:
        """A contact phone serves calling back about an order: it goes once every order of the resident is purged
        or due to be (one order still open or closed too recently keeps it)."""
        terminal = [str(state) for state in TERMINAL_STATES]
        kept_by = models.Order.filter(Q(purged_at__isnull=True) & (~Q(state__in=terminal) | Q(updated_at__gte=cutoff)),
                                      resident_id__isnull=False).values("resident_id")
        ids = await models.Resident.filter(contact_phone__isnull=False, orders__id__isnull=False).exclude(
            id__in=Subquery(kept_by)).distinct().values_list("id", flat=True)
        report.contact_phones = len(ids)
        if ids and not report.dry_run:
            await models.Resident.filter(id__in=ids).update(contact_phone=None)

    @staticmethod
    async def _related(order_ids: list[int]) -> dict[int, list[tuple[models.Model, dict[str, Any], str]]]:
        """Per order: each related row whose words change, with the new values."""
        found: dict[int, list[tuple[models.Model, dict[str, Any], str]]] = defaultdict(list)
        for model, columns, name in RELATED:
            for row in await model.filter(order_id__in=order_ids):
                changed = {column: redact_all(getattr(row, column)) for column in columns}
                changed = {column: value for column, value in changed.items() if value != getattr(row, column)}
                if changed:
                    found[row.order_id].append((row, changed, name))
        return found

    async def _purge(self, order: models.Order, related: dict, now: datetime, report: PurgeReport) -> None:
        fields = {name: redact(getattr(order, name)) for name in ORDER_FIELDS}
        fields = {name: value for name, value in fields.items() if value != getattr(order, name)}
        done = PurgedOrder(order.number, (now - order.updated_at).days)
        for name in fields:
            done.changes[ORDER_FIELDS[name]] = 1
        for _, _, name in related.get(order.id, ()):
            done.changes[name] = done.changes.get(name, 0) + 1
        if done.changes:
            report.purged.append(done)
        if report.dry_run:
            return
        async with in_transaction() as conn:
            updated = await models.Order.filter(id=order.id, version=order.version).using_db(conn).update(
                **fields, purged_at=now, version=order.version + 1, updated_at=now)
            if updated != 1:
                report.skipped.append(order.number)
                if done.changes:
                    report.purged.remove(done)
                return
            for row, changed, _ in related.get(order.id, ()):
                await type(row).filter(id=row.id).using_db(conn).update(**changed)
            await models.OrderEvent.create(
                using_db=conn, order_id=order.id, action=PURGE_ACTION, from_state=order.state, to_state=order.state,
                actor_role=str(Role.SYSTEM), actor_id=None, actor_name="系统",
                reason=f"关闭超过 {self.after_days} 天,清除个人信息(电话、身份证号、银行卡号)",
                data={"after_days": self.after_days, "removed": done.changes}, at=now)
