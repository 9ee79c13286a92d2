"""WeChat as the source of the media downloads (orders/media_fetch.py): the temporary medium by its MediaId
(cgi-bin/media/get), else a photo by its PicUrl, translated into the fetcher's terms (retry later, or gone)."""
from __future__ import annotations

from bot.wechat_api import WeChatAPIError, WeChatClient, WeChatUnavailable
from orders.media_fetch import FetchFailed, Fetched, MediaGone

GONE_ERRCODES = {40007}  # invalid media_id: WeChat forgot it (after about three days) or never had it


class WeChatMedia:
    def __init__(self, client: WeChatClient) -> None:
        self.client = client

    async def fetch(self, media_id: str | None, pic_url: str | None) -> Fetched:
        problems: list[str] = []
        gone = True  # until a copy answers anything but "not there"
        if media_id:
            try:
                return Fetched(*await self.client.media_get(media_id))
            except WeChatAPIError as exc:
                problems.append(f"media/get: {exc}")
                gone = exc.errcode in GONE_ERRCODES
            except WeChatUnavailable as exc:
                problems.append(f"media/get: {exc}")
                gone = False
        if pic_url:
            try:
                return Fetched(*await self.client.download(pic_url))
            except WeChatAPIError as exc:
                problems.append(f"PicUrl: {exc}")
            except WeChatUnavailable as exc:
                problems.append(f"PicUrl: {exc}")
                gone = False
        if not problems:
            raise MediaGone("neither a media id nor a PicUrl to fetch")
        raise (MediaGone if gone else FetchFailed)("; ".join(problems))
