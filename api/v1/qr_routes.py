"""PC login by QR code: no passwords, the phone in the staff member's hand vouches for the PC.

    PC     POST /api/v1/auth/qr                         → ticket, poll_secret, confirm_url (its QR code), expires_at
    phone  scans confirm_url → /m/auth (the web authorisation) → the confirm page /m/#/qr/<ticket>
           POST /api/v1/auth/qr/<ticket>/confirm       (the phone's staff JWT) → the PC's session is granted
    PC     GET  /api/v1/auth/qr/<ticket>?poll_secret=… → pending | granted (+ tokens, on the first poll only) | expired
    phone  GET  /api/v1/auth/qr/<ticket>/info          (staff JWT) → where and when the PC asked, for the confirm page:
           a QR code someone else sent must not be confirmed blindly

Tickets live in the shared store (Redis or in-process) for QR_SECONDS; only a hash of the poll secret is kept, and
no token is kept at all: the first poll after the grant claims it (set-if-absent) and gets tokens issued then.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from datetime import timedelta
from urllib.parse import quote

from sanic import Request
from sanic_ext import openapi

from api.auth import STAFF_ROLES, AuthError, require, subject_of
from api.v1 import workbench_schemas as wb
from api.v1.auth_routes import tokens_for
from api.v1.docs import RawSchema, doc
from api.v1.http import parse_query, respond, routes
from orders import models
from orders.errors import Conflict, DomainError, NotFound
from orders.services import Actor
from orders.store import StoreUnavailable

log = logging.getLogger("sidan.qr_login")

TAG = "认证"
QR_SECONDS = 300
GRANT_GRACE_SECONDS = 60  # a grant made in the ticket's last moment still reaches the PC's next poll
CREATE_PER_MINUTE = 60  # new tickets per client address and minute
EXPIRED = "二维码已过期,请在电脑上刷新二维码后重新扫码"


class TooManyTickets(DomainError):
    code = "too_many_requests"
    status = 429


class StoreDown(DomainError):
    code = "service_unavailable"
    status = 503


def _store_errors(handler):
    """The tickets live in the store: while it does not answer, the QR login says so (503) instead of failing."""
    @functools.wraps(handler)
    async def wrapper(request: Request, *args, **kwargs):
        try:
            return await handler(request, *args, **kwargs)
        except StoreUnavailable:
            raise StoreDown("扫码登录暂时不可用,请稍后再试,或在手机微信里打开工作台") from None

    return wrapper


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _keys(ticket: str) -> tuple[str, str, str]:
    return f"qr:{ticket}", f"qr:{ticket}:granted", f"qr:{ticket}:claimed"


def _ticket(raw: str) -> str:
    if not re.fullmatch(wb.QR_TICKET_PATTERN, raw):
        raise NotFound(EXPIRED)
    return raw


def _documented_ticket(handler):
    return openapi.parameter("ticket", RawSchema({"type": "string", "pattern": wb.QR_TICKET_PATTERN}), "path",
                             required=True, description="二维码票据")(handler)


@routes.post("/auth/qr")
@doc("电脑扫码登录:生成二维码", tag=TAG, response=wb.QrTicketOut, status=201, secured=False,
     description="电脑上显示 confirm_url 的二维码,5 分钟内有效;工作人员用微信扫码并在手机上确认后,"
                 "电脑用 poll_secret 查询即得到登录凭证。")
@_store_errors
async def create_ticket(request: Request):
    store, now = request.app.ctx.store, request.app.ctx.clock.now()
    address = request.remote_addr or request.ip or "?"
    if await store.incr(f"qr:rate:{address}", ttl=60) > CREATE_PER_MINUTE:
        raise TooManyTickets("请求太频繁,请稍后再刷新二维码")
    ticket, poll_secret = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
    expires_at = now + timedelta(seconds=QR_SECONDS)
    pc = {"secret": _hash(poll_secret), "address": address[:64], "at": now.isoformat(),
          "device": (request.headers.get("user-agent") or "")[:200]}
    await store.set(_keys(ticket)[0], json.dumps(pc), ttl=QR_SECONDS)
    public_url = request.app.ctx.settings.app.public_url
    confirm_url = f"{public_url}/m/auth?next={quote(f'/m/#/qr/{ticket}', safe='/')}"
    return respond(wb.QrTicketOut(ticket=ticket, poll_secret=poll_secret, confirm_url=confirm_url,
                                  expires_at=expires_at), status=201)


@routes.get("/auth/qr/<ticket:str>")
@doc("电脑扫码登录:查询结果", tag=TAG, query=wb.QrPollQuery, response=wb.QrStatusOut, secured=False,
     description="每 1–2 秒查询一次;确认后第一次查询带回登录凭证 tokens(只给一次),之后不再给。")
@_documented_ticket
@_store_errors
async def poll_ticket(request: Request, ticket: str):
    query = parse_query(request, wb.QrPollQuery)
    store = request.app.ctx.store
    pending_key, granted_key, claimed_key = _keys(_ticket(ticket))
    pending, granted = await store.many([("get", pending_key), ("get", granted_key)])
    record = json.loads(granted or pending or "null")
    if record is None:
        return respond(wb.QrStatusOut(status="expired"))
    if not hmac.compare_digest(record["secret"], _hash(query.poll_secret)):
        raise AuthError("二维码查询凭证不对,请刷新二维码")
    if granted is None:
        return respond(wb.QrStatusOut(status="pending"))
    if not await store.set(claimed_key, "1", ttl=QR_SECONDS + GRANT_GRACE_SECONDS, only_if_absent=True):
        return respond(wb.QrStatusOut(status="granted"))  # handed out already: once only
    staff = await models.Staff.get_or_none(id=record["staff_id"], active=True)
    if staff is None:  # deactivated between the grant and the poll
        return respond(wb.QrStatusOut(status="expired"))
    log.info("QR login: staff %s signed a PC in", staff.id)
    return respond(wb.QrStatusOut(status="granted", tokens=await tokens_for(request, staff)))


@routes.get("/auth/qr/<ticket:str>/info")
@doc("电脑扫码登录:待确认的电脑", tag=TAG, response=wb.QrInfoOut,
     description="手机确认页先显示是哪台电脑(地址、浏览器、时间)在请求登录,不是本人操作的不要确认。")
@_documented_ticket
@require(*STAFF_ROLES)
@_store_errors
async def ticket_info(request: Request, ticket: str):
    pending = await request.app.ctx.store.get(_keys(_ticket(ticket))[0])
    if pending is None:
        raise NotFound(EXPIRED)
    pc = json.loads(pending)
    return respond(wb.QrInfoOut(address=pc.get("address", ""), device=pc.get("device", ""), requested_at=pc["at"]))


@routes.post("/auth/qr/<ticket:str>/confirm")
@doc("电脑扫码登录:手机确认", tag=TAG, response=wb.QrConfirmOut,
     description="工作人员在手机上(已登录工作台)确认后,电脑以同一身份登录。")
@_documented_ticket
@require(*STAFF_ROLES)
@_store_errors
async def confirm_ticket(request: Request, ticket: str):
    store = request.app.ctx.store
    pending_key, granted_key, _ = _keys(_ticket(ticket))
    pending = await store.get(pending_key)
    if pending is None:
        raise NotFound(EXPIRED)
    actor: Actor = request.ctx.actor
    staff = await subject_of(actor)
    grant = json.dumps({**json.loads(pending), "staff_id": staff.id})
    if not await store.set(granted_key, grant, ttl=QR_SECONDS + GRANT_GRACE_SECONDS, only_if_absent=True):
        raise Conflict("这个二维码已经确认过了,如需重新登录请在电脑上刷新二维码")
    await store.delete(pending_key)
    return respond(wb.QrConfirmOut(status="granted", message=f"已确认,电脑将以{staff.name}的身份登录"))
