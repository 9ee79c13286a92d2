"""工单: lists and detail for everyone in scope; 派单 接单 办单 退单 延期 办结 不予受理 for staff; 评价 取消 for residents.

Each action calls one use case of OrderService (which holds every rule and the scope) and answers with the
order's detail as it now stands.
"""
from __future__ import annotations

from datetime import timedelta

from sanic import Request

from api.auth import EVERYONE, STAFF_ROLES, require
from api.media_links import linker
from api.v1 import present, schemas
from api.v1.docs import doc
from api.v1.http import idempotent, order_number, parse_body, parse_query, respond, routes
from orders import queries
from orders.errors import InvalidInput, NotFound
from orders.lifecycle import Role, State
from orders.queries import OrderFilters
from orders.services import Actor

TAG = "工单"
RESIDENT_TAG = "群众"
DISPATCHERS = (Role.GRID_WORKER, Role.SUPERVISOR, Role.ADMIN)
SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)


def parse_states(raw: str | None) -> tuple[State, ...]:
    if not raw:
        return ()
    states = []
    for name in (part.strip() for part in raw.split(",")):
        if not name:
            continue
        try:
            states.append(State(name))
        except ValueError:
            raise InvalidInput(f"查询参数有误:state 没有“{name[:20]}”这种状态", field="state") from None
    return tuple(states)


async def detail_response(request: Request, number: str, status: int = 200):
    """The order after an action. The actor may have just moved it out of their scope (退单), so it is read
    without the scope filter: they acted on it a moment ago."""
    actor: Actor = request.ctx.actor
    try:
        detail = await queries.order_detail(actor, number, request.app.ctx.clock.now())
    except NotFound:
        detail = await queries.order_detail(Actor.system(), number)
    return respond(present.order_detail(detail, actor, media_link(request)), status=status)


def media_link(request: Request):
    """Signed links to the order's media (photos[].url) for this answer."""
    return linker(request.app.ctx.settings, request.app.ctx.clock.now())


# ---------------------------------------------------------------------------------------------- reading
@routes.get("/orders")
@doc("工单列表", tag=TAG, query=schemas.OrderListQuery, response=schemas.OrderPage,
     description="按状态、分类、部门、网格、逾期、即将超期、急难事、待审批延期、日期、关键词筛选;新的在前;"
                 "用 next_cursor 翻页。即将超期:尚未逾期,接单时限(未接单时)或办结时限在 deadlines.due_soon_hours "
                 "小时内。")
@require(*STAFF_ROLES)
async def order_list(request: Request):
    query = parse_query(request, schemas.OrderListQuery)
    now, settings = request.app.ctx.clock.now(), request.app.ctx.settings
    filters = OrderFilters(states=parse_states(query.state), category=query.category, department=query.department,
                           grid=query.grid, overdue=query.overdue, since=query.since, until=query.until, text=query.q,
                           extension_pending=query.extension_pending, due_soon=query.due_soon,
                           due_window=(now, now + timedelta(hours=settings.deadlines.due_soon_hours)),
                           urgent=query.urgent, most_urgent=request.app.ctx.orders.taxonomy.most_urgent)
    page = await queries.list_orders(request.ctx.actor, filters, cursor=query.cursor, limit=query.limit)
    return respond(present.order_page(page.orders, page.next_cursor, request.ctx.actor))


@routes.get("/dispatch-queue")
@doc("待派单队列", tag=TAG, query=schemas.PageQuery, response=schemas.OrderPage,
     description="等待人工派单的工单(分类不确定或被退回),先到的在前;被退回的附退单理由和建议的部门(returned)。"
                 "网格员只看到本网格和未定位的工单。")
@require(*DISPATCHERS)
async def dispatch_queue(request: Request):
    query = parse_query(request, schemas.PageQuery)
    page = await queries.dispatch_queue(request.ctx.actor, cursor=query.cursor, limit=query.limit)
    return respond(present.order_page(page.orders, page.next_cursor, request.ctx.actor, page.returns))


@routes.get("/my/orders")
@doc("我的工单", tag=RESIDENT_TAG, query=schemas.PageQuery, response=schemas.OrderPage)
@require(Role.RESIDENT)
async def my_orders(request: Request):
    query = parse_query(request, schemas.PageQuery)
    page = await queries.list_orders(request.ctx.actor, cursor=query.cursor, limit=query.limit)
    return respond(present.order_page(page.orders, page.next_cursor, request.ctx.actor))


@routes.get("/orders/<number:str>")
@doc("工单详情", tag=TAG, response=schemas.OrderDetailOut,
     description="含完整的处理过程、照片与语音(photos:来源、状态、短时有效的签名地址)和评价。电话、身份证号、银行卡号只有提交的群众、承办部门和督办员看到原文"
                 "(工作人员每次查看都留有记录),其他人看到的是打码后的。")
@require(*EVERYONE)
async def order_detail(request: Request, number: str):
    actor, now = request.ctx.actor, request.app.ctx.clock.now()
    detail = await queries.order_detail(actor, order_number(number), now)
    if detail.order.urgent_unnotified and await request.app.ctx.orders.attend_urgent(detail.order.number, actor):
        # with the attending event; the view was recorded once already
        detail = await queries.order_detail(actor, detail.order.number, now, record_access=False)
    return respond(present.order_detail(detail, actor, media_link(request)))


# ---------------------------------------------------------------------------------------------- staff actions
@routes.post("/orders/<number:str>/dispatch")
@doc("派单 / 改派", tag=TAG, body=schemas.DispatchBody, response=schemas.OrderDetailOut, idempotent=True,
     description="与自动分类不同的分类或部门会记为纠正样本,用于下次训练分类模型。")
@require(*DISPATCHERS)
@idempotent
async def dispatch(request: Request, number: str):
    body = parse_body(request, schemas.DispatchBody)
    await request.app.ctx.orders.dispatch(order_number(number), request.ctx.actor, body.department,
                                          category=body.category, reason=body.reason)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/accept")
@doc("接单", tag=TAG, response=schemas.OrderDetailOut, idempotent=True,
     description="两人同时接单时只有一人成功,另一人得到 409。")
@require(Role.DEPT_STAFF)
@idempotent
async def accept(request: Request, number: str):
    await request.app.ctx.orders.accept(order_number(number), request.ctx.actor)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/progress")
@doc("办理进展", tag=TAG, body=schemas.ProgressBody, response=schemas.OrderDetailOut, idempotent=True)
@require(Role.DEPT_STAFF)
@idempotent
async def progress(request: Request, number: str):
    body = parse_body(request, schemas.ProgressBody)
    await request.app.ctx.orders.progress(order_number(number), request.ctx.actor, body.note, photos=body.photos,
                                          notify_resident=body.notify_resident)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/extension")
@doc("申请延期", tag=TAG, body=schemas.ExtensionRequestBody, response=schemas.OrderDetailOut, idempotent=True)
@require(Role.DEPT_STAFF)
@idempotent
async def request_extension(request: Request, number: str):
    body = parse_body(request, schemas.ExtensionRequestBody)
    await request.app.ctx.orders.request_extension(order_number(number), request.ctx.actor, body.days, body.reason)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/extension/approve")
@doc("批准延期", tag=TAG, body=schemas.ExtensionApproveBody, response=schemas.OrderDetailOut, idempotent=True)
@require(*SUPERVISORS)
@idempotent
async def approve_extension(request: Request, number: str):
    body = parse_body(request, schemas.ExtensionApproveBody)
    await request.app.ctx.orders.extend(order_number(number), request.ctx.actor, days=body.days, reason=body.reason)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/extension/deny")
@doc("驳回延期", tag=TAG, body=schemas.ExtensionDenyBody, response=schemas.OrderDetailOut, idempotent=True)
@require(*SUPERVISORS)
@idempotent
async def deny_extension(request: Request, number: str):
    body = parse_body(request, schemas.ExtensionDenyBody)
    await request.app.ctx.orders.deny_extension(order_number(number), request.ctx.actor, body.reason)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/return")
@doc("退单", tag=TAG, body=schemas.ReturnBody, response=schemas.OrderDetailOut, idempotent=True,
     description="派错部门时退回派单人,须写明理由;可建议正确的部门。")
@require(Role.DEPT_STAFF)
@idempotent
async def return_order(request: Request, number: str):
    body = parse_body(request, schemas.ReturnBody)
    await request.app.ctx.orders.return_(order_number(number), request.ctx.actor, body.reason,
                                         suggested_category=body.suggested_category,
                                         suggested_department=body.suggested_department)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/invalidate")
@doc("不予受理", tag=TAG, body=schemas.InvalidateBody, response=schemas.OrderDetailOut, idempotent=True,
     description="网格员、督办员、管理员在部门接单前关闭无效信息、重复反映、不属于本镇受理范围或信息不足的工单;"
                 "reason 会原样告诉群众,请写明可以怎么办。部门认为无效时请退单并说明。")
@require(*DISPATCHERS)
@idempotent
async def invalidate(request: Request, number: str):
    body = parse_body(request, schemas.InvalidateBody)
    await request.app.ctx.orders.invalidate(order_number(number), request.ctx.actor, body.code, body.reason)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/merge")
@doc("合并工单", tag=TAG, body=schemas.MergeBody, response=schemas.OrderDetailOut, idempotent=True,
     description="同一事项多人反映时,网格员、督办员、管理员或办理部门把本工单合并到主工单(into):本工单随主工单办理,"
                 "群众会收到合并告知、主工单的接单和进展;主工单办结后每个工单各自回访评价。"
                 "不能合并到自身、已合并、已办结、已关闭或不予受理的工单。")
@require(*DISPATCHERS, Role.DEPT_STAFF)
@idempotent
async def merge(request: Request, number: str):
    body = parse_body(request, schemas.MergeBody)
    await request.app.ctx.orders.merge(order_number(number), request.ctx.actor, body.into, reason=body.reason)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/resolve")
@doc("办结", tag=TAG, body=schemas.ResolveBody, response=schemas.OrderDetailOut, idempotent=True,
     description="须写明办理结果,可附先上传的现场照片;办结后向群众推送回访评价。")
@require(Role.DEPT_STAFF)
@idempotent
async def resolve(request: Request, number: str):
    body = parse_body(request, schemas.ResolveBody)
    await request.app.ctx.orders.resolve(order_number(number), request.ctx.actor, body.result, photos=body.photos)
    return await detail_response(request, number)


# ---------------------------------------------------------------------------------------------- residents
@routes.post("/orders/<number:str>/rate")
@doc("评价(验单)", tag=RESIDENT_TAG, body=schemas.RateBody, response=schemas.OrderDetailOut, idempotent=True,
     description="1–5 分;2 分及以下或“未解决”会让工单重办。")
@require(Role.RESIDENT)
@idempotent
async def rate(request: Request, number: str):
    body = parse_body(request, schemas.RateBody)
    await request.app.ctx.orders.rate(order_number(number), request.ctx.actor, body.score, resolved=body.resolved,
                                      comment=body.comment)
    return await detail_response(request, number)


@routes.post("/orders/<number:str>/cancel")
@doc("取消工单", tag=RESIDENT_TAG, body=schemas.CancelBody, response=schemas.OrderDetailOut, idempotent=True,
     description="部门接单前可以取消。")
@require(Role.RESIDENT)
@idempotent
async def cancel(request: Request, number: str):
    body = parse_body(request, schemas.CancelBody)
    await request.app.ctx.orders.cancel(order_number(number), request.ctx.actor, reason=body.reason)
    return await detail_response(request, number)
