"""How a notice reaches a staff member: through the official account (template messages) when they bound it by
sending "绑定 <邀请码>" to it, else through the mini-program (subscribe messages) they bound when logging in. Each
staff outbox row says which in its payload ("channel"); the sender (bot.notifier) reads it."""
from __future__ import annotations

from dataclasses import dataclass

OFFICIAL_ACCOUNT = "official_account"
MINIAPP = "miniapp"
# The Staff column each channel's openid is bound in: one person has a different openid in each WeChat app.
OPENID_COLUMNS = {OFFICIAL_ACCOUNT: "oa_openid", MINIAPP: "openid"}


@dataclass(frozen=True)
class StaffAddress:
    openid: str
    channel: str


def staff_address(openid: str | None, oa_openid: str | None) -> StaffAddress | None:
    """The official account when bound (the channel every member has), else the mini-program; None: not reachable."""
    if oa_openid:
        return StaffAddress(oa_openid, OFFICIAL_ACCOUNT)
    if openid:
        return StaffAddress(openid, MINIAPP)
    return None
