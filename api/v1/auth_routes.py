"""登录: wx.login code → openid → staff (bound by invitation) or resident → access and refresh tokens."""
from __future__ import annotations

from sanic import Request

from api.auth import (
    EVERYONE, STAFF_ROLES, actor_from_claims, decode, identity_from_code, issue_tokens, require, spend_refresh_token,
    subject_of,
)
from api.v1 import present, schemas
from api.web_auth import openid_of_ticket
from api.v1.docs import doc
from api.v1.http import parse_body, respond, routes
from orders import models, queries, residents
from orders.invitations import bind_with_invitation
from orders.lifecycle import Role
from orders.link_codes import LinkCodes
from orders.services import Actor
from orders.staff_channels import MINIAPP, OFFICIAL_ACCOUNT

TAG = "认证"


async def profile_of(request: Request, actor: Actor) -> schemas.Profile:
    """Who is logged in; for staff, the urgent reports nobody was told of (the first to log in sees them)."""
    department = await models.Department.get_or_none(id=actor.department_id) if actor.department_id else None
    grid = await models.Grid.get_or_none(id=actor.grid_id) if actor.grid_id else None
    urgent = []
    if actor.role in STAFF_ROLES:
        duty_phone = (await request.app.ctx.orders.identity.get()).duty_phone
        urgent = [present.urgent_unattended(order, actor, duty_phone) for order in await queries.urgent_unattended()]
    return present.profile(actor, department, grid, urgent)


async def tokens_for(request: Request, subject: models.Staff | models.Resident) -> schemas.Tokens:
    actor = Actor.of_staff(subject) if isinstance(subject, models.Staff) else Actor.of_resident(subject)
    tokens = issue_tokens(request.app.ctx.settings, subject)  # wall-clock time: JWTs are checked against it
    return schemas.Tokens(**tokens, profile=await profile_of(request, actor))


async def resident_for(openid: str, unionid: str | None, now) -> models.Resident:
    """The resident behind a mini-program login. The official account knows the same person under another
    openid; the unionid (when WeChat gives one) or a link code links the two, so their reports show up here
    (orders.residents)."""
    return await residents.for_miniapp(openid, unionid, now)


@routes.post("/auth/login")
@doc("微信登录", tag=TAG, body=schemas.LoginBody, response=schemas.Tokens, secured=False,
     description="工作人员(已绑定微信)得到其角色的凭证,其他人以群众身份登录。")
async def login(request: Request):
    body = parse_body(request, schemas.LoginBody)
    openid, unionid = await identity_from_code(request, body.code)
    staff = await models.Staff.get_or_none(openid=openid, active=True)
    subject = staff if staff is not None else await resident_for(openid, unionid, request.app.ctx.clock.now())
    return respond(await tokens_for(request, subject))


@routes.post("/auth/refresh")
@doc("刷新登录凭证", tag=TAG, body=schemas.RefreshBody, response=schemas.Tokens, secured=False,
     description="每个刷新凭证只能使用一次。")
async def refresh(request: Request):
    body = parse_body(request, schemas.RefreshBody)
    claims = decode(request.app.ctx.settings, body.refresh_token, "refresh")
    actor = await actor_from_claims(claims)  # a deactivated account cannot refresh
    await spend_refresh_token(claims)
    return respond(await tokens_for(request, await subject_of(actor)))


@routes.post("/auth/bind")
@doc("工作人员绑定微信", tag=TAG, body=schemas.BindBody, response=schemas.Tokens, secured=False,
     description="用管理员发放的一次性邀请码,把当前微信绑定到工作人员账号:小程序用 wx.login 的 code,"
                 "工作台(公众号网页授权登录后)用 openid_ticket,此后在公众号接收工单通知。")
async def bind(request: Request):
    body = parse_body(request, schemas.BindBody)
    if body.openid_ticket is not None:
        openid, channel = openid_of_ticket(request.app.ctx.settings, body.openid_ticket), OFFICIAL_ACCOUNT
    else:
        (openid, _), channel = await identity_from_code(request, body.code or ""), MINIAPP
    staff = await bind_with_invitation(body.invitation, openid, channel=channel, now=request.app.ctx.clock.now())
    return respond(await tokens_for(request, staff))


@routes.post("/auth/link")
@doc("关联公众号", tag=TAG, body=schemas.LinkBody, response=schemas.Linked,
     description="群众在公众号发送“绑定小程序”得到 6 位关联码(10 分钟内有效,只能用一次),在小程序输入后,"
                 "公众号与小程序成为同一居民账号,两边反映的工单合在一起。关联码错误或过期返回 422,什么也不改;"
                 "输错过多返回 429。")
@require(Role.RESIDENT)
async def link(request: Request):
    body = parse_body(request, schemas.LinkBody)
    ctx = request.app.ctx
    linked = await LinkCodes(ctx.store, ctx.settings.auth.jwt_secret).redeem(
        body.code, request.ctx.actor.id, ctx.clock.now())
    message = (f"关联成功,已并入 {linked.orders_moved} 条工单,公众号与小程序的工单可在一处查看" if linked.merged_id
               else "公众号与小程序已经是同一账号")
    return respond(schemas.Linked(linked=True, orders_moved=linked.orders_moved, message=message))


@routes.get("/me")
@doc("当前用户", tag=TAG, response=schemas.Profile)
@require(*EVERYONE)
async def me(request: Request):
    return respond(await profile_of(request, request.ctx.actor))
