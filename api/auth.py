"""Authentication for the mini-program API and the dashboard: short-lived JWT access tokens, refresh tokens,
and signed dashboard links. Every protected handler names the roles it admits with @require(...)."""
from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
from sanic import Request
from tortoise.exceptions import IntegrityError

from orders import models
from orders.config import Settings
from orders.errors import DomainError
from orders.lifecycle import Role
from orders.services import Actor

ALGORITHM = "HS256"
ISSUER = "sidan"


ROLE_NAMES = {Role.RESIDENT: "群众", Role.GRID_WORKER: "网格员", Role.DEPT_STAFF: "部门工作人员",
              Role.SUPERVISOR: "督办员", Role.ADMIN: "管理员"}
STAFF_ROLES = (Role.GRID_WORKER, Role.DEPT_STAFF, Role.SUPERVISOR, Role.ADMIN)
EVERYONE = (Role.RESIDENT, *STAFF_ROLES)


class AuthError(DomainError):
    """401, with a message that says why (expired, invalid, deactivated)."""

    code = "unauthorized"
    status = 401

    def __init__(self, message: str = "登录已失效,请重新登录") -> None:
        super().__init__(message)


class RoleRefused(DomainError):
    code = "forbidden"
    status = 403


class LoginFailed(DomainError):
    code = "wechat_login_failed"
    status = 401


class WeChatDown(DomainError):
    code = "wechat_unavailable"
    status = 503


class MiniAppMissing(DomainError):
    code = "miniapp_not_configured"
    status = 503


def _encode(settings: Settings, claims: dict[str, Any], lifetime: timedelta, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    payload = {**claims, "iss": ISSUER, "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp()),
               "jti": secrets.token_hex(8)}
    return jwt.encode(payload, settings.auth.jwt_secret, algorithm=ALGORITHM)


def decode(settings: Settings, token: str, typ: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, settings.auth.jwt_secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "typ"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("登录已过期,请重新登录") from None
    except jwt.PyJWTError:
        raise AuthError("登录凭证无效") from None
    if claims.get("typ") != typ:
        raise AuthError("登录凭证类型不对")
    return claims


def principal_claims(subject: models.Staff | models.Resident) -> dict[str, Any]:
    if isinstance(subject, models.Staff):
        return {"sub": f"staff:{subject.id}", "role": subject.role}
    return {"sub": f"resident:{subject.id}", "role": Role.RESIDENT.value}


def issue_tokens(settings: Settings, subject: models.Staff | models.Resident, now: datetime | None = None) -> dict:
    claims = principal_claims(subject)
    access = _encode(settings, {**claims, "typ": "access"}, timedelta(minutes=settings.auth.access_minutes), now)
    refresh = _encode(settings, {**claims, "typ": "refresh"}, timedelta(days=settings.auth.refresh_days), now)
    return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
            "expires_in": settings.auth.access_minutes * 60, "role": claims["role"]}


def dashboard_token(settings: Settings, staff: models.Staff, hours: int | None = None,
                    now: datetime | None = None) -> str:
    """A signed, expiring link token for the dashboard (one township's scope: this deployment)."""
    hours = hours or settings.auth.dashboard_link_hours
    return _encode(settings, {**principal_claims(staff), "typ": "dashboard"}, timedelta(hours=hours), now)


def signed_token(settings: Settings, typ: str, subject: str, lifetime: timedelta, now: datetime | None = None,
                 **claims: Any) -> str:
    """A short-lived signed token of another kind than a login (the web authorisation's state, an openid ticket):
    decode(settings, token, typ) reads it back and refuses it once expired or of another kind."""
    return _encode(settings, {**claims, "sub": subject, "typ": typ}, lifetime, now)


async def actor_from_claims(claims: dict[str, Any]) -> Actor:
    kind, _, raw_id = str(claims.get("sub", "")).partition(":")
    if not raw_id.isdigit():
        raise AuthError("登录凭证无效")
    if kind == "staff":
        staff = await models.Staff.get_or_none(id=int(raw_id), active=True)
        if staff is None:
            raise AuthError("账号已停用")
        return Actor.of_staff(staff)
    if kind == "resident":
        resident = await models.Resident.get_or_none(id=int(raw_id))
        if resident is not None and resident.merged_into_id is not None:  # merged since: the row it became
            resident = await models.Resident.get_or_none(id=resident.merged_into_id)
        if resident is None:
            raise AuthError("账号不存在")
        return Actor.of_resident(resident)
    raise AuthError("登录凭证无效")


async def subject_of(actor: Actor) -> models.Staff | models.Resident:
    """The database row behind an authenticated actor (to issue its next tokens)."""
    if actor.role == Role.RESIDENT:
        return await models.Resident.get(id=actor.id)
    return await models.Staff.get(id=actor.id)


async def spend_refresh_token(claims: dict[str, Any]) -> None:
    """A refresh token works once: a stolen copy used after its owner refreshed is refused. Spent ids are kept in the
    database until their token expires, so neither a restart nor a store outage forgets them."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 64:
        raise AuthError("登录凭证无效")
    now = datetime.now(timezone.utc)  # wall-clock time, as the token's own expiry
    expires_at = datetime.fromtimestamp(int(claims["exp"]), timezone.utc)
    await models.SpentToken.filter(expires_at__lte=now).delete()  # of no more use: their tokens have expired
    try:
        await models.SpentToken.create(jti=jti, expires_at=expires_at)
    except IntegrityError:
        raise AuthError("刷新凭证已使用过,请重新登录") from None


async def identity_from_code(request: Request, code: str) -> tuple[str, str | None]:
    """wx.login's code → the caller's (openid, unionid), through WeChat's jscode2session."""
    from bot.wechat_api import MiniAppNotConfigured, WeChatAPIError, WeChatUnavailable

    try:
        session = await request.app.ctx.wechat.jscode2session(code)
    except MiniAppNotConfigured:
        raise MiniAppMissing("本系统尚未开通小程序,暂时不能用小程序登录,请联系管理员") from None
    except WeChatAPIError:
        raise LoginFailed("微信登录失败,请关闭小程序后重新打开") from None
    except WeChatUnavailable:
        raise WeChatDown("微信服务暂时不可用,请稍后再试") from None
    openid, unionid = str(session.get("openid", "")), session.get("unionid")
    if not _identifier(openid):
        raise LoginFailed("微信登录返回的身份无效,请重新打开小程序")
    return openid, str(unionid) if unionid and _identifier(str(unionid)) else None


def _identifier(value: str) -> bool:
    return 1 <= len(value) <= 64 and value.isprintable()


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(request: Request, typ: str = "access") -> Actor:
    token = bearer_token(request)
    if token is None:
        raise AuthError("请先登录")
    return await actor_from_claims(decode(request.app.ctx.settings, token, typ))


def require(*roles: Role | str):
    """Admit only these roles; the actor is put on request.ctx.actor."""
    admitted = {Role(role) for role in roles}

    def decorator(handler):
        @functools.wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            actor = await authenticate(request)
            if actor.role not in admitted:
                raise RoleRefused(f"{ROLE_NAMES.get(actor.role, actor.role)}没有权限执行此操作")
            request.ctx.actor = actor
            return await handler(request, *args, **kwargs)

        return wrapper

    return decorator
