"""WeChat as the source of the background unionid lookups (orders/unionid_lookup.py): cgi-bin/user/info, its
failures translated into the lookup's terms."""
from __future__ import annotations

from bot.wechat_api import WeChatAPIError, WeChatClient, WeChatUnavailable
from orders.unionid_lookup import LookupFailed


class WeChatUnionid:
    def __init__(self, client: WeChatClient) -> None:
        self.client = client

    async def unionid(self, openid: str) -> str | None:
        try:
            info = await self.client.user_info(openid)
        except (WeChatAPIError, WeChatUnavailable) as exc:
            raise LookupFailed(str(exc)) from exc
        unionid = str(info.get("unionid") or "").strip()
        return unionid if 1 <= len(unionid) <= 64 and unionid.isprintable() else None
