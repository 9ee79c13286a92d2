"""One-time invitations that bind a staff member's WeChat to their account (POST /api/v1/auth/bind).

Issued by an admin over the API (POST /api/v1/admin/invitations) or in a terminal (`sidan staff invite`,
`sidan admin create`): the same code either way.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from orders import models
from orders.errors import Conflict

INVITATION_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
INVITATION_LENGTH = 8
DEFAULT_INVITATION_HOURS = 72


def normalize_invitation(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def bind_payload(code: str) -> str:
    """What the invitation's QR code carries: the mini-program's binding page with the code filled in."""
    return f"pages/bind/index?invitation={code}"


async def issue_invitation(staff: models.Staff, *, now: datetime, hours: int, conn: Any,
                           created_by_id: int | None = None) -> models.Invitation:
    """A new unused code for `staff`, valid `hours` hours, inside the caller's transaction."""
    for _ in range(5):
        code = "".join(secrets.choice(INVITATION_ALPHABET) for _ in range(INVITATION_LENGTH))
        if not await models.Invitation.filter(code=code).using_db(conn).exists():
            break
    try:
        return await models.Invitation.create(code=code, staff=staff, created_by_id=created_by_id,
                                              expires_at=now + timedelta(hours=hours), using_db=conn)
    except IntegrityError:
        raise Conflict("邀请码生成冲突,请重试") from None
