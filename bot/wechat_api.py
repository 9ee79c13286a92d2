"""The outgoing WeChat HTTP API: access token, customer-service and template messages, the custom menu and the
template list (official account), subscribe messages, their template list and jscode2session (mini-program).
Request shapes follow wechatpy's clients; calls are async (httpx) so the event loop never blocks. The base URL
comes from SIDAN_WECHAT_API_BASE, so tests point it at a local fake server. `sidan wechat menu|check` use this
client too: they share the servers' cached token rather than fetch one that would replace it.

The access token is cached in the shared store for all workers; one refresh at a time (a store lock), refreshed
before expiry and again when WeChat answers an expired/invalid-token error code.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from orders.config import Settings
from orders.store import Store

log = logging.getLogger("sidan.wechat_api")

TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential, invalid token, token expired
REFRESH_MARGIN_SECONDS = 300


class WeChatAPIError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(Exception):
    """Network failure, timeout or a non-200 answer: worth retrying later."""


class MiniAppNotConfigured(Exception):
    """wechat.miniapp_appid is empty: this deployment has no mini-program (no login through it, no subscribe
    messages to staff)."""


class WeChatClient:
    def __init__(self, settings: Settings, store: Store, http: httpx.AsyncClient | None = None) -> None:
        self._wechat = settings.wechat
        self._store = store
        self._http = http or httpx.AsyncClient(timeout=settings.wechat.api_timeout_seconds)
        self._owns_http = http is None
        self.token_fetches = 0

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # ---------------------------------------------------------------- credentials
    def _credentials(self, app: str) -> tuple[str, str]:
        if app == "miniapp":
            if not self._wechat.miniapp_appid:
                raise MiniAppNotConfigured("no mini-program: wechat.miniapp_appid (SIDAN_WECHAT_MINIAPP_APPID) is empty")
            return self._wechat.miniapp_appid, self._wechat.miniapp_secret
        return self._wechat.appid, self._wechat.app_secret

    async def access_token(self, app: str = "mp", rejected: str | None = None) -> str:
        """The cached token; `rejected` names a token WeChat just refused, so it is replaced, once for all workers."""
        appid, secret = self._credentials(app)
        key = f"wechat:access_token:{appid}"
        cached = await self._store.get(key)
        if cached and cached != rejected:
            return cached
        async with self._store.lock(f"wechat:token-refresh:{appid}", ttl=15, wait=10):
            cached = await self._store.get(key)
            if cached and cached != rejected:
                return cached  # another worker refreshed while we waited
            data = await self._get("/cgi-bin/token", {"grant_type": "client_credential", "appid": appid,
                                                      "secret": secret})
            self.token_fetches += 1
            token = data["access_token"]
            ttl = max(60, int(data.get("expires_in", 7200)) - REFRESH_MARGIN_SECONDS)
            await self._store.set(key, token, ttl=ttl)
            return token

    # ---------------------------------------------------------------- HTTP
    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.get(self._wechat.api_base + path, params=params)
        except httpx.HTTPError as exc:
            raise WeChatUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return self._parse(response)

    @staticmethod
    def _parse(response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise WeChatUnavailable(f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise WeChatUnavailable("answer is not JSON") from exc
        errcode = int(data.get("errcode", 0) or 0)
        if errcode:
            raise WeChatAPIError(errcode, str(data.get("errmsg", "")))
        return data

    async def _post(self, path: str, body: dict[str, Any], app: str = "mp") -> dict[str, Any]:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")  # WeChat wants UTF-8, not \\u escapes
        return await self._with_token(lambda token: self._http.post(
            self._wechat.api_base + path, params={"access_token": token}, content=payload,
            headers={"Content-Type": "application/json; charset=utf-8"},
        ), app)

    async def _get_with_token(self, path: str, app: str = "mp") -> dict[str, Any]:
        return await self._with_token(
            lambda token: self._http.get(self._wechat.api_base + path, params={"access_token": token}), app)

    async def _with_token(self, request: Callable[[str], Awaitable[httpx.Response]], app: str) -> dict[str, Any]:
        """One call with the access token, made again once with a new token if WeChat refuses the token."""
        rejected = None
        for attempt in (1, 2):
            token = await self.access_token(app, rejected=rejected)
            try:
                response = await request(token)
            except httpx.HTTPError as exc:
                raise WeChatUnavailable(f"{type(exc).__name__}: {exc}") from exc
            try:
                return self._parse(response)
            except WeChatAPIError as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    log.info("wechat token rejected (%s), refreshing once", exc.errcode)
                    rejected = token
                    continue
                raise
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- messages
    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        """Customer-service message: only inside the 48 hours after the resident's last message."""
        return await self._post("/cgi-bin/message/custom/send",
                                {"touser": openid, "msgtype": "text", "text": {"content": text}})

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str | None = None,
                            miniprogram: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {key: {"value": value} for key, value in data.items()}}
        if url:
            body["url"] = url
        if miniprogram:
            body["miniprogram"] = miniprogram
        return await self._post("/cgi-bin/message/template/send", body)

    async def send_subscribe(self, openid: str, template_id: str, data: dict[str, str],
                             page: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {key: {"value": value} for key, value in data.items()}}
        if page:
            body["page"] = page
        return await self._post("/cgi-bin/message/subscribe/send", body, app="miniapp")

    async def jscode2session(self, code: str) -> dict[str, Any]:
        """Mini-program login: wx.login's code → {openid, session_key[, unionid]}."""
        appid, secret = self._credentials("miniapp")
        data = await self._get("/sns/jscode2session", {"appid": appid, "secret": secret, "js_code": code,
                                                       "grant_type": "authorization_code"})
        if not data.get("openid"):
            raise WeChatAPIError(-1, "no openid in jscode2session answer")
        return data

    # ---------------------------------------------------------------- the account's set-up (sidan wechat …)
    async def create_menu(self, menu: dict[str, Any]) -> dict[str, Any]:
        """The official account's custom menu, replacing the one it has ({"button": […]})."""
        return await self._post("/cgi-bin/menu/create", menu)

    async def private_templates(self) -> list[dict[str, Any]]:
        """The official account's template messages: [{template_id, title, content ("{{thing1.DATA}}…"), …}]."""
        return (await self._get_with_token("/cgi-bin/template/get_all_private_template")).get("template_list") or []

    async def subscribe_templates(self) -> list[dict[str, Any]]:
        """The mini-program's subscribe message templates: [{priTmplId, title, content, …}]."""
        return (await self._get_with_token("/wxaapi/newtmpl/gettemplate", app="miniapp")).get("data") or []
