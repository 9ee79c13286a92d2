"""The outgoing WeChat HTTP API: access token, customer-service and template messages, temporary media, the custom
menu, the template list and the web authorisation's code → openid (official account), subscribe messages, their
template list and jscode2session (mini-program). Request shapes follow wechatpy's clients (whose calls block: they
use requests); calls are async (httpx) so the event loop never blocks. The base URL comes from
SIDAN_WECHAT_API_BASE, so tests point it at a local fake server. `sidan wechat menu|check` use this client too:
they share the servers' cached token rather than fetch one that would replace it.

The access token is cached in the shared store for all workers; one refresh at a time (a store lock), refreshed
before expiry and again when WeChat answers an expired/invalid-token error code.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from orders.config import Settings
from orders.store import Store

log = logging.getLogger("sidan.wechat_api")

TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential, invalid token, token expired
REFRESH_MARGIN_SECONDS = 300
MAX_MEDIA_BYTES = 20 * 1024 * 1024  # WeChat's temporary media: images up to 10 MB, voice 2 MB
PICTURE_DOMAINS = (".qpic.cn", ".qq.com")


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

    async def _with_token(self, request: Callable[[str], Awaitable[httpx.Response]], app: str = "mp") -> httpx.Response:
        """request(token) with the cached access token; a token WeChat refuses is refreshed once and the request
        sent again. Answers that are WeChat's JSON errors raise WeChatAPIError."""
        rejected = None
        for attempt in (1, 2):
            token = await self.access_token(app, rejected=rejected)
            try:
                response = await request(token)
            except httpx.HTTPError as exc:
                raise WeChatUnavailable(f"{type(exc).__name__}: {exc}") from exc
            try:
                if _is_json(response):
                    self._parse(response)
                elif response.status_code != 200:
                    raise WeChatUnavailable(f"HTTP {response.status_code}")
                return response
            except WeChatAPIError as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    log.info("wechat token rejected (%s), refreshing once", exc.errcode)
                    rejected = token
                    continue
                raise
        raise AssertionError("unreachable")

    async def _post(self, path: str, body: dict[str, Any], app: str = "mp") -> dict[str, Any]:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")  # WeChat wants UTF-8, not \\u escapes
        response = await self._with_token(lambda token: self._http.post(
            self._wechat.api_base + path, params={"access_token": token}, content=payload,
            headers={"Content-Type": "application/json; charset=utf-8"}), app)
        return self._parse(response)

    async def _get_with_token(self, path: str, app: str = "mp", params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._parse(await self._with_token(lambda token: self._http.get(
            self._wechat.api_base + path, params={"access_token": token, **(params or {})}), app))

    # ---------------------------------------------------------------- media
    async def media_get(self, media_id: str) -> tuple[bytes, str]:
        """A medium a resident sent (photo, voice), by its MediaId: WeChat keeps it about three days, then answers
        40007 (invalid media_id). Returns the bytes and their declared type."""
        response = await self._with_token(lambda token: self._http.get(
            self._wechat.api_base + "/cgi-bin/media/get", params={"access_token": token, "media_id": media_id}))
        return _body(response), _content_type(response)

    async def download(self, url: str) -> tuple[bytes, str]:
        """A photo by its PicUrl (WeChat's image server, no token): the copy left when the media id is gone.
        WeChatAPIError(404) when it is not there (retrying cannot help), WeChatUnavailable otherwise."""
        if not self._picture_host(url):
            raise WeChatAPIError(404, "PicUrl is not on WeChat's image servers")
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise WeChatUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (403, 404, 410):
            raise WeChatAPIError(response.status_code, "PicUrl answers nothing")
        if response.status_code != 200:
            raise WeChatUnavailable(f"HTTP {response.status_code}")
        return _body(response), _content_type(response)

    def _picture_host(self, url: str) -> bool:
        """PicUrls point at WeChat's image servers (mmbiz.qpic.cn): a forged message cannot make sidan fetch and keep
        whatever an address inside the network answers. The configured API host counts too (the tests' fake)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return parts.scheme in ("http", "https") and (
            host.endswith(PICTURE_DOMAINS) or host == urlsplit(self._wechat.api_base).hostname)

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

    async def oauth_openid(self, code: str) -> str:
        """The official account's web authorisation (snsapi_base): the authorize page's code → the visitor's openid
        in the official account (the openid its messages come from)."""
        data = await self._get("/sns/oauth2/access_token", {"appid": self._wechat.appid,
                                                            "secret": self._wechat.app_secret, "code": code,
                                                            "grant_type": "authorization_code"})
        if not data.get("openid"):
            raise WeChatAPIError(-1, "no openid in oauth2/access_token answer")
        return str(data["openid"])

    async def user_info(self, openid: str) -> dict[str, Any]:
        """An official-account follower: {subscribe, openid[, unionid], …}; the unionid only when the account is bound
        to an open platform (and, for some accounts, only while the person follows it)."""
        return await self._get_with_token("/cgi-bin/user/info", params={"openid": openid, "lang": "zh_CN"})

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


def _is_json(response: httpx.Response) -> bool:
    """WeChat answers errors as JSON (sometimes labelled text/plain), media as their own type."""
    return _content_type(response) in ("application/json", "text/plain", "")


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _body(response: httpx.Response) -> bytes:
    if len(response.content) > MAX_MEDIA_BYTES:
        raise WeChatUnavailable(f"medium larger than {MAX_MEDIA_BYTES} bytes")
    return response.content
