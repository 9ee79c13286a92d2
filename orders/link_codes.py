"""Link codes: where WeChat gives no unionid, the resident asks the official account for a code ("绑定小程序") and
types it into the mini-program, which merges its row into the official account's (orders.residents.merge).

A code is six digits, valid CODE_MINUTES, used once, the latest one per resident only. The shared store keeps its
keyed hash (never the code) for the official-account row it names. Trying codes is limited per mini-program resident
(MAX_TRIES per CODE_MINUTES): six digits cannot be guessed through the door. A refused code writes nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from orders import models
from orders.errors import DomainError, InvalidInput
from orders.residents import VIA_CODE, Linked, LinkRefused, merge
from orders.store import Store

CODE_MINUTES = 10
CODE_DIGITS = 6
MAX_TRIES = 5


class LinkCodeInvalid(InvalidInput):
    code = "link_code_invalid"


class TooManyTries(DomainError):
    code = "too_many_attempts"
    status = 429


class LinkCodes:
    def __init__(self, store: Store, secret: str) -> None:
        self.store = store
        self._secret = secret.encode()

    def _key(self, code: str) -> str:
        digest = hmac.new(self._secret, code.encode(), hashlib.sha256).hexdigest()
        return f"residentlink:code:{digest}"

    async def issue(self, resident_id: int) -> str:
        """A new code for the official-account row `resident_id`; the code it was given before stops working."""
        for _ in range(20):
            code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
            if await self.store.set(self._key(code), str(resident_id), ttl=CODE_MINUTES * 60, only_if_absent=True):
                break
        else:  # a million codes, a few live at a time: twenty collisions in a row do not happen
            raise RuntimeError("no free link code")
        latest = f"residentlink:latest:{resident_id}"
        earlier = await self.store.get(latest)
        if earlier:
            await self.store.delete(earlier)
        await self.store.set(latest, self._key(code), ttl=CODE_MINUTES * 60)
        return code

    async def redeem(self, code: str, resident_id: int, now: datetime) -> Linked:
        """The mini-program resident `resident_id` gave `code`: their row merged into the one the code names."""
        tries = await self.store.incr(f"residentlink:tries:{resident_id}", ttl=CODE_MINUTES * 60)
        if tries > MAX_TRIES:
            raise TooManyTries(f"关联码输错次数过多,请 {CODE_MINUTES} 分钟后再试")
        cleaned = "".join(ch for ch in str(code or "") if not ch.isspace())
        if len(cleaned) != CODE_DIGITS or not cleaned.isdigit():
            raise LinkCodeInvalid(f"关联码是 {CODE_DIGITS} 位数字,请在公众号发送“绑定小程序”获取")
        mine = await models.Resident.get_or_none(id=resident_id)
        key = self._key(cleaned)
        official_id = await self.store.get(key)
        if official_id is None or mine is None:
            raise LinkCodeInvalid(f"关联码不正确或已过期(有效 {CODE_MINUTES} 分钟),请在公众号重新发送“绑定小程序”获取")
        official = await models.Resident.get_or_none(id=int(official_id))
        if official is None:
            raise LinkCodeInvalid("关联码对应的公众号账号已不存在")
        if official.id == mine.id:
            await self.store.delete(key)
            return Linked(official.id, None)  # linked already
        if mine.miniapp_openid is not None:
            raise LinkRefused("您的小程序账号已经关联了另一个公众号账号")
        if official.miniapp_openid not in (None, mine.openid):
            raise LinkRefused("这个公众号账号已经关联了另一个小程序账号")
        [_, deleted] = await self.store.many([("get", key), ("delete", key)])
        if not deleted:  # used at the same moment by another request
            raise LinkCodeInvalid("关联码已经使用过,请在公众号重新发送“绑定小程序”获取")
        linked = await merge(official.id, mine.id, VIA_CODE, f"居民{mine.openid[-4:]}", now)
        await self.store.delete(f"residentlink:tries:{resident_id}")
        return linked
