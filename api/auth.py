"""Authentication for the mini-program API and the dashboard: short-lived JWT access tokens, refresh tokens,
and signed dashboard links. Every protected handler names the roles it admits with @require(...)."""
from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
from sanic import Request
from sanic.exceptions import Forbidden, Unauthorized

from orders import models
from orders.config import Settings
from orders.lifecycle import Role
from orders.services import Actor

ALGORITHM = "HS256"
ISSUER = "sidan"


class AuthError(Unauthorized):
    def __init__(self, message: str = "登录已失效,请重新登录") -> None:
        super().__init__(message)


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
        if resident is None:
            raise AuthError("账号不存在")
        return Actor.of_resident(resident)
    raise AuthError("登录凭证无效")


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
                raise Forbidden("没有权限执行此操作")
            request.ctx.actor = actor
            return await handler(request, *args, **kwargs)

        return wrapper

    return decorator
