"""One resident, two doors. The bot knows a person by the official account's openid, the mini-program by its own
openid; WeChat says they are one person through the unionid (fetched in the background, orders/unionid_lookup.py, or
given at mini-program login), or the resident says so with a link code the bot gave (orders/link_codes.py).

Two rows of one person are merged into the official account's row (the bot's: notices reach the resident there):
the mini-program row's orders move over, each with an event, their pending notices follow, the row stays as a
tombstone (merged_into_id) so its openid and its tokens lead to the kept row, and the kept row records the
mini-program openid. One transaction, both rows locked; merging again, or two doors merging at once, changes nothing
the second time. Each link is recorded (ResidentLink: who, when, from, to, why).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from orders import models
from orders.errors import InvalidInput
from orders.lifecycle import Role
from orders.privacy import phone_numbers
from orders.sql import insert_rows

VIA_UNIONID = "unionid"
VIA_CODE = "code"
REASONS = {VIA_UNIONID: "微信确认公众号与小程序是同一人(unionid)", VIA_CODE: "居民在小程序输入公众号给出的关联码"}
LINK_ACTION = "link_resident"


class LinkRefused(InvalidInput):
    code = "link_refused"


@dataclass(frozen=True)
class Linked:
    resident_id: int  # the row kept
    merged_id: int | None  # the row merged into it (None: nothing merged this time)
    orders_moved: int = 0


async def merge(keep_id: int, other_id: int, via: str, actor: str, now: datetime, conn: Any = None) -> Linked:
    """The mini-program row `other_id` merged into the official account's row `keep_id` (see the module)."""
    if conn is None:
        async with in_transaction() as tx:
            return await merge(keep_id, other_id, via, actor, now, tx)
    if keep_id == other_id:
        return Linked(keep_id, None)
    rows = {row.id: row for row in await models.Resident.filter(id__in=[keep_id, other_id])
            .order_by("id").select_for_update().using_db(conn)}  # PostgreSQL: both rows, in one order
    keep, other = rows.get(keep_id), rows.get(other_id)
    if keep is None or other is None or other.merged_into_id is not None:
        return Linked(keep_id, None)  # gone, or merged already (by the other door)
    mini_openid = other.miniapp_openid or other.openid
    if keep.miniapp_openid not in (None, mini_openid):
        raise LinkRefused("这个公众号账号已经关联了另一个小程序账号")
    taken = await models.Resident.filter(id=other.id, merged_into_id=None).using_db(conn).update(
        merged_into_id=keep.id, unionid=None, miniapp_openid=None)
    if not taken:
        return Linked(keep_id, None)
    await models.Resident.filter(merged_into_id=other.id).using_db(conn).update(merged_into_id=keep.id)
    await models.Resident.filter(id=keep.id).using_db(conn).update(
        miniapp_openid=mini_openid, unionid=keep.unionid or other.unionid,
        contact_phone=keep.contact_phone or other.contact_phone)
    orders = await models.Order.filter(resident_id=other.id).using_db(conn).values("id", "state")
    if orders:
        ids = [order["id"] for order in orders]
        await models.Order.filter(id__in=ids).using_db(conn).update(
            resident_id=keep.id, version=F("version") + 1, updated_at=now)
        data = {"from_resident": other.id, "to_resident": keep.id, "via": via}
        role, actor_id = (Role.RESIDENT, keep.id) if via == VIA_CODE else (Role.SYSTEM, None)
        await insert_rows(conn, models.OrderEvent, [
            {"order_id": order["id"], "action": LINK_ACTION, "from_state": order["state"], "to_state": order["state"],
             "actor_role": str(role), "actor_id": actor_id, "actor_name": actor, "reason": REASONS[via],
             "data": data, "at": now} for order in orders])
        # notices not yet sent to the merged row's openid go to the kept row's (the bot's door)
        await models.Outbox.filter(order_id__in=ids, recipient=other.openid, status="pending").using_db(conn).update(
            recipient=keep.openid)
    await models.ResidentLink.create(resident_id=keep.id, merged_id=other.id, from_openid=other.openid,
                                     to_openid=keep.openid, via=via, actor=actor, reason=REASONS[via],
                                     orders_moved=len(orders), at=now, using_db=conn)
    return Linked(keep.id, other.id, len(orders))


async def record_miniapp_openid(keep: models.Resident, openid: str, via: str, now: datetime) -> bool:
    """The mini-program openid of the official account's row, when the mini-program has no row of its own to merge
    (its first login came after the unionid was known). False when another login recorded it first."""
    async with in_transaction() as conn:
        try:
            done = await models.Resident.filter(id=keep.id, miniapp_openid=None).using_db(conn).update(
                miniapp_openid=openid)
        except IntegrityError:
            return False
        if done:
            await models.ResidentLink.create(resident_id=keep.id, merged_id=None, from_openid=openid,
                                             to_openid=keep.openid, via=via, actor="小程序登录", reason=REASONS[via],
                                             at=now, using_db=conn)
    return bool(done)


async def for_miniapp(openid: str, unionid: str | None, now: datetime) -> models.Resident:
    """The resident behind a mini-program login: the row it was linked to, its own row (created on first login), or,
    when WeChat gives a unionid the official account's row has too, that row (its own row merged into it)."""
    linked = await models.Resident.get_or_none(miniapp_openid=openid)
    if linked is not None:
        return linked
    own = await models.Resident.get_or_none(openid=openid)
    if own is not None and own.merged_into_id is not None:
        return await models.Resident.get(id=own.merged_into_id)
    if unionid:
        # not yet linked, or linked to this openid by a login at the same moment
        official = await (models.Resident.filter(Q(miniapp_openid__isnull=True) | Q(miniapp_openid=openid),
                                                 unionid=unionid, merged_into_id=None)
                          .exclude(openid=openid).order_by("id").first())
        if official is not None:
            if own is not None:
                await merge(official.id, own.id, VIA_UNIONID, "小程序登录", now)
            elif official.miniapp_openid is None:
                await record_miniapp_openid(official, openid, VIA_UNIONID, now)
            official = await models.Resident.get(id=official.id)
            if own is not None or official.miniapp_openid == openid:
                return official
    if own is None:
        try:
            own = await models.Resident.create(openid=openid, unionid=unionid)
        except IntegrityError:  # the same resident's first two logins at once: the other created the row
            return await for_miniapp(openid, unionid, now)
    elif unionid and own.unionid != unionid:
        await models.Resident.filter(id=own.id).update(unionid=unionid)
    return own


async def for_official_account(openid: str) -> models.Resident:
    """The resident behind an official-account openid (the bot's, and the workbench's web authorisation): the row
    the bot made, or a new one. Never a mini-program login's: the two doors' openids differ."""
    try:
        resident, _ = await models.Resident.get_or_create(openid=openid)
    except IntegrityError:  # the bot's first message and the first sign-in at once: the other created the row
        resident = await models.Resident.get(openid=openid)
    if resident.merged_into_id is not None:
        return await models.Resident.get(id=resident.merged_into_id)
    return resident


async def unionid_found(resident_id: int, unionid: str, now: datetime) -> Linked | None:
    """The background lookup's answer for an official-account row: recorded, and the mini-program rows that logged in
    with the same unionid merged into it."""
    async with in_transaction() as conn:
        await models.Resident.filter(id=resident_id, merged_into_id=None).using_db(conn).update(unionid=unionid)
        others = await (models.Resident.filter(unionid=unionid, merged_into_id=None).exclude(id=resident_id)
                        .using_db(conn).order_by("id").values_list("id", flat=True))
        result = None
        for other_id in others:
            result = await merge(resident_id, other_id, VIA_UNIONID, "系统(unionid)", now, conn)
        return result


# ------------------------------------------------------------------------------------------ the contact phone
def contact_phone_in(text: str | None) -> str | None:
    """The phone number a resident left in a text (the first mobile, else landline), as digits; None without one."""
    numbers = phone_numbers(text)
    return numbers[0] if numbers else None


async def set_contact_phone(resident_id: int, phone: str, conn: Any = None) -> None:
    await models.Resident.filter(id=resident_id).using_db(conn).update(contact_phone=phone[:32])
