"""One-time invitations that bind a staff member's WeChat to their account: the mini-program's openid
(POST /api/v1/auth/bind) or the official account's ("绑定 <邀请码>" sent to it).

Issued by an admin over the API (POST /api/v1/admin/invitations) or in a terminal (`sidan staff invite`,
`sidan admin create`): the same code either way, for either channel.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import logging

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orders import models
from orders.errors import Conflict, DomainError, InvalidInput
from orders.staff_channels import OPENID_COLUMNS

log = logging.getLogger("sidan.invitations")

INVITATION_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
INVITATION_LENGTH = 8
DEFAULT_INVITATION_HOURS = 72


class InvitationInvalid(DomainError):
    code = "invitation_invalid"
    status = 422


def normalize_invitation(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def bind_payload(code: str) -> str:
    """What the invitation's QR code carries: the mini-program's binding page with the code filled in."""
    return f"pages/bind/index?invitation={code}"


async def refuse_inactive_unit(department_id: int | None, grid_id: int | None, *, field: str, doing: str,
                                conn=None) -> None:
    """A member works in an active department or grid only: one deactivated by the township file (it has orders, so
    it was kept) takes nobody new. Refused with a 422 before anything is written."""
    department = await models.Department.get_or_none(id=department_id, using_db=conn) if department_id else None
    if department is not None and not department.active:
        raise InvalidInput(f"部门 {department.code} {department.name} 已停用,{doing}:先在乡镇文件里启用该部门"
                           "(active = true)并运行 sidan township apply", field=field)
    grid = await models.Grid.get_or_none(id=grid_id, using_db=conn) if grid_id else None
    if grid is not None and not grid.active:
        raise InvalidInput(f"网格 {grid.code} {grid.name} 已停用,{doing}:先在乡镇文件里恢复该网格并运行 "
                           "sidan township apply", field=field)


async def issue_invitation(staff: models.Staff, *, now: datetime, hours: int, conn: Any,
                           created_by_id: int | None = None) -> models.Invitation:
    """A new unused code for `staff`, valid `hours` hours, inside the caller's transaction. Refused (InvalidInput)
    for a member of a deactivated department or grid."""
    await refuse_inactive_unit(staff.department_id, staff.grid_id, field="staff", doing="不能发放邀请码", conn=conn)
    for _ in range(5):
        code = "".join(secrets.choice(INVITATION_ALPHABET) for _ in range(INVITATION_LENGTH))
        if not await models.Invitation.filter(code=code).using_db(conn).exists():
            break
    try:
        return await models.Invitation.create(code=code, staff=staff, created_by_id=created_by_id,
                                              expires_at=now + timedelta(hours=hours), using_db=conn)
    except IntegrityError:
        raise Conflict("邀请码生成冲突,请重试") from None


async def bind_with_invitation(code: str, openid: str, *, channel: str, now: datetime) -> models.Staff:
    """Spends the invitation and binds `openid`, the caller's in `channel` (staff_channels.MINIAPP or
    OFFICIAL_ACCOUNT), to its staff member, in one transaction. Refused, writing nothing: an unknown, used or expired
    code, a deactivated member, an openid already bound to another active member (the refusal names nobody: the
    caller has not proved who they are). A retired member's binding of that openid is released."""
    column = OPENID_COLUMNS[channel]
    async with in_transaction() as conn:
        invitation = await models.Invitation.get_or_none(code=normalize_invitation(code), using_db=conn)
        if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
            raise InvitationInvalid("邀请码无效、已使用或已过期,请联系管理员重新发放")
        staff = await models.Staff.get(id=invitation.staff_id, using_db=conn)
        if not staff.active:
            raise InvitationInvalid("该工作人员账号已停用,请联系管理员")
        # Used once: the conditional update lets exactly one of two simultaneous binds through.
        unused = models.Invitation.filter(id=invitation.id, used_at__isnull=True).using_db(conn)
        if not await unused.update(used_at=now):
            raise InvitationInvalid("邀请码已被使用")
        holder = await models.Staff.filter(**{column: openid}).exclude(id=staff.id).using_db(conn).first()
        if holder is not None and holder.active:
            # The holder's name is for the admin (the log), not for the caller.
            log.warning("bind refused: this WeChat (%s) is bound to active staff %s", channel, holder.id)
            raise Conflict("这个微信已绑定另一个工作人员账号,请联系管理员先停用原账号")
        if holder is not None:
            await models.Staff.filter(id=holder.id).using_db(conn).update(**{column: None})  # a retired account
        await models.Staff.filter(id=staff.id).using_db(conn).update(**{column: openid})
        setattr(staff, column, openid)
    return staff
