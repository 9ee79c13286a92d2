"""The workbench's login inside WeChat: the official account's web authorisation (网页授权, snsapi_base).

    GET /m/auth?next=/m/…      → 302 to {wechat.oauth_base}/connect/oauth2/authorize?…&state=<signed: next>
    GET /m/auth/callback?code=…&state=…
        → code → the visitor's official-account openid (SIDAN_WECHAT_API_BASE /sns/oauth2/access_token)
        → an active staff member bound to that openid (oa_openid) gets staff tokens, anyone else resident tokens
          and an openid_ticket (POST /api/v1/auth/bind binds it with an invitation)
        → 302 to /m/#/signed-in?access_token=…&refresh_token=…[&openid_ticket=…]&next=…

The tokens travel in the fragment: browsers send it to no server and write it to no log. `state` is signed and
expires (STATE_MINUTES), and `next` can only name a page of the workbench (/m/…): no open redirect. The state is
bound to the browser that asked for it (a nonce in a cookie scoped to /m/auth, its hash in the state): a callback
link made on another phone signs nobody in here, so nobody can be slipped into someone else's WeChat identity and
then bind their invitation to it. Failures are
Chinese pages (or the JSON error body, for a client that asks for JSON).
"""
from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from sanic import Request, Sanic
from sanic.response import HTTPResponse, redirect
from sanic.response import html as html_response

from api.auth import AuthError, decode, signed_token
from api.errors import error_body
from orders import models, residents
from orders.config import Settings

log = logging.getLogger("sidan.web_auth")

STATE_MINUTES = 10
OPENID_TICKET_MINUTES = 10
STATE_TYP = "oauth_state"
OPENID_TICKET_TYP = "openid_ticket"
HOME = "/m/"
# a page of the workbench: /m/ and what follows, its hash routes included (/m/#/qr/<ticket>); no "//", no "\"
_NEXT = re.compile(r"^/m/[A-Za-z0-9\-._~/#?=&%+:@!$',;*()]*$")
NONCE_COOKIE = "sidan_web_auth"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}  # copy it: Sanic adds to the dict given


class WebAuthError(Exception):
    """A login that cannot go on: a Chinese page (or JSON) with this status and what to do."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def safe_next(raw: str | None) -> str:
    """Where to go after the login: a page of the workbench only (else WebAuthError)."""
    if raw is None or raw == "":
        return HOME
    if len(raw) > 512 or not _NEXT.match(raw) or "//" in raw or ".." in raw:
        raise WebAuthError(400, "invalid_next", "登录后要打开的页面地址无效:只能是工作台(/m/)里的页面。")
    return raw


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def sign_state(settings: Settings, next_path: str, nonce: str) -> str:
    return signed_token(settings, STATE_TYP, "web-auth", timedelta(minutes=STATE_MINUTES), next=next_path,
                        nonce=_digest(nonce))


def read_state(settings: Settings, state: str, nonce: str | None) -> str:
    """The `next` that a state this server signed for this browser carries; WebAuthError when it is forged, altered,
    expired or was made for another browser."""
    try:
        claims = decode(settings, state, STATE_TYP)
    except AuthError:
        raise WebAuthError(400, "invalid_state", "登录链接已过期或无效,请返回后重新打开工作台。") from None
    if not nonce or not hmac.compare_digest(str(claims.get("nonce", "")), _digest(nonce)):
        raise WebAuthError(400, "invalid_state", "登录链接已用过,或不是在这台手机上打开的,请从公众号菜单重新打开工作台。")
    return safe_next(claims.get("next"))


def openid_ticket(settings: Settings, openid: str) -> str:
    """Names the official-account openid that just signed in, for binding it with an invitation (10 minutes)."""
    return signed_token(settings, OPENID_TICKET_TYP, f"oa:{openid}", timedelta(minutes=OPENID_TICKET_MINUTES))


def openid_of_ticket(settings: Settings, ticket: str) -> str:
    """The openid an openid_ticket names; AuthError (401) when it is not one of ours or has expired."""
    try:
        claims = decode(settings, ticket, OPENID_TICKET_TYP)
    except AuthError:
        raise AuthError("微信身份凭证已过期或无效,请从公众号菜单重新打开工作台后再绑定") from None
    kind, _, openid = str(claims["sub"]).partition(":")
    if kind != "oa" or not openid:
        raise AuthError("微信身份凭证无效,请从公众号菜单重新打开工作台后再绑定")
    return openid


def authorize_url(settings: Settings, next_path: str, nonce: str) -> str:
    query = urlencode({"appid": settings.wechat.appid, "redirect_uri": f"{settings.app.public_url}/m/auth/callback",
                       "response_type": "code", "scope": "snsapi_base",
                       "state": sign_state(settings, next_path, nonce)})
    return f"{settings.wechat.oauth_base}/connect/oauth2/authorize?{query}#wechat_redirect"


# ---------------------------------------------------------------------------------------------- routes
async def start(request: Request) -> HTTPResponse:
    nonce = secrets.token_urlsafe(16)
    try:
        target = authorize_url(request.app.ctx.settings, safe_next(request.args.get("next")), nonce)
    except WebAuthError as exc:
        return failure(request, exc)
    response = redirect(target, headers=dict(NO_STORE))
    secure = request.app.ctx.settings.app.public_url.startswith("https://")
    response.add_cookie(NONCE_COOKIE, nonce, path="/m/auth", max_age=STATE_MINUTES * 60, httponly=True,
                        samesite="Lax", secure=secure)
    return response


async def callback(request: Request) -> HTTPResponse:
    from api.v1.auth_routes import tokens_for

    settings = request.app.ctx.settings
    try:
        next_path = read_state(settings, request.args.get("state") or "", request.cookies.get(NONCE_COOKIE))
        code = request.args.get("code") or ""
        if not code or len(code) > 128 or not code.isprintable():
            raise WebAuthError(400, "no_code", "微信没有返回授权结果,请返回后重新打开工作台。")
        openid = await _openid(request, code)
    except WebAuthError as exc:
        return failure(request, exc)
    staff = await models.Staff.get_or_none(oa_openid=openid, active=True)
    subject = staff if staff is not None else await residents.for_official_account(openid)
    tokens = await tokens_for(request, subject)
    fragment = {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}
    if staff is None:
        fragment["openid_ticket"] = openid_ticket(settings, openid)
    fragment["next"] = next_path
    response = redirect(f"{HOME}#/signed-in?{urlencode(fragment)}", headers=dict(NO_STORE))
    response.delete_cookie(NONCE_COOKIE, path="/m/auth")  # one sign-in per nonce
    return response


async def _openid(request: Request, code: str) -> str:
    from bot.wechat_api import WeChatAPIError, WeChatUnavailable

    try:
        openid = await request.app.ctx.wechat.oauth_openid(code)
    except WeChatAPIError as exc:
        log.info("web authorisation refused by WeChat: %s", exc)
        raise WebAuthError(401, "wechat_login_failed", "微信授权失败(授权码无效或已使用),请返回后重新打开工作台。") from None
    except WeChatUnavailable:
        raise WebAuthError(503, "wechat_unavailable", "微信服务暂时不可用,请稍后重新打开工作台。") from None
    if not 1 <= len(openid) <= 64 or not openid.isprintable():
        raise WebAuthError(401, "wechat_login_failed", "微信返回的身份无效,请返回后重新打开工作台。")
    return openid


def failure(request: Request, exc: WebAuthError) -> HTTPResponse:
    if "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", ""):
        return error_body(exc.code, exc.message, exc.status, headers=dict(NO_STORE))
    page = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>登录没有成功</title></head>'
            f'<body style="font-family: sans-serif; padding: 24px; font-size: 18px; line-height: 1.6">'
            f'<h1 style="font-size: 22px">登录没有成功</h1><p>{html.escape(exc.message)}</p>'
            f'<p><a href="/m/auth?next=%2Fm%2F" style="display: inline-block; padding: 12px 20px">重新登录工作台</a></p>'
            f'</body></html>')
    return html_response(page, status=exc.status, headers=dict(NO_STORE))


def register(app: Sanic) -> None:
    app.add_route(start, "/m/auth", methods=["GET"], name="web_auth_start")
    app.add_route(callback, "/m/auth/callback", methods=["GET"], name="web_auth_callback")
