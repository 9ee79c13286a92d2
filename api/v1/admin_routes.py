"""Reference data for every staff member (departments, grids as GeoJSON, the taxonomy) and, for admins, staff
accounts and their one-time binding invitations."""
from __future__ import annotations

from sanic import Request
from tortoise.transactions import in_transaction

from api.auth import STAFF_ROLES, require
from api.v1 import present, schemas
from api.v1.docs import doc
from api.v1.http import idempotent, parse_body, parse_query, record_id, respond, routes
from orders import models
from orders.errors import InvalidInput, NotFound
from orders.invitations import issue_invitation, refuse_inactive_unit
from orders.lifecycle import Role

TAG = "基础数据"
ADMIN_TAG = "管理"


# ---------------------------------------------------------------------------------------------- reference data
@routes.get("/departments")
@doc("部门列表", tag=TAG, response=schemas.DepartmentList)
@require(*STAFF_ROLES)
async def departments(request: Request):
    rows = await models.Department.all().order_by("id")
    return respond(schemas.DepartmentList(items=[
        schemas.DepartmentOut(code=d.code, name=d.name, duties=list(d.duties or []), active=d.active, phone=d.phone)
        for d in rows]))


@routes.get("/grids")
@doc("网格(GeoJSON)", tag=TAG, query=schemas.GridQuery, response=schemas.GridCollection,
     description="GeoJSON FeatureCollection,坐标顺序 [经度, 纬度];properties 含村、网格员、中心点、半径、是否启用。")
@require(*STAFF_ROLES)
async def grids(request: Request):
    query = parse_query(request, schemas.GridQuery)
    rows = await (models.Grid.all() if query.include_inactive else models.Grid.filter(active=True)).order_by("code")
    workers = await models.Staff.filter(role=Role.GRID_WORKER, active=True, grid_id__isnull=False).order_by("id")
    names: dict[int, list[str]] = {}
    for worker in workers:
        names.setdefault(worker.grid_id, []).append(worker.name)
    features = [
        schemas.GridFeature(
            id=grid.code, geometry=grid.polygon,
            properties={"code": grid.code, "name": grid.name, "village": grid.village,
                        "center": [grid.center_lng, grid.center_lat] if grid.center_lat is not None else None,
                        "workers": names.get(grid.id, []), "radius_m": grid.radius_m, "active": grid.active},
        )
        for grid in rows
    ]
    return respond(schemas.GridCollection(features=features))


@routes.get("/taxonomy")
@doc("分类与紧急程度", tag=TAG, response=schemas.TaxonomyOut,
     description="五事共治分类及其可派部门,五事五办紧急程度及时限。")
@require(*STAFF_ROLES)
async def taxonomy(request: Request):
    taxonomy = request.app.ctx.orders.taxonomy
    active = set(await models.Department.filter(active=True).values_list("code", flat=True))
    return respond(schemas.TaxonomyOut(
        categories=[schemas.CategoryOut(name=name, departments=list(codes))
                    for name, codes in taxonomy.categories.items()],
        departments=[schemas.DepartmentOut(code=d.code, name=d.name, duties=list(d.duties), active=d.code in active)
                     for d in taxonomy.departments.values()],
        urgencies=[schemas.UrgencyOut(name=u.name, motto=u.motto, accept_hours=u.accept_hours,
                                      resolve_days=u.resolve_days) for u in taxonomy.urgencies.values()],
        confidence_threshold=request.app.ctx.settings.classifier.confidence_threshold,
    ))


# ---------------------------------------------------------------------------------------------- staff
async def _staff_out(staff: models.Staff) -> schemas.StaffOut:
    department = await models.Department.get_or_none(id=staff.department_id) if staff.department_id else None
    grid = await models.Grid.get_or_none(id=staff.grid_id) if staff.grid_id else None
    return present.staff_out(staff, department, grid)


@routes.get("/admin/staff")
@doc("工作人员列表", tag=ADMIN_TAG, query=schemas.StaffListQuery, response=schemas.StaffList)
@require(Role.ADMIN)
async def staff_list(request: Request):
    query = parse_query(request, schemas.StaffListQuery)
    rows = models.Staff.all().select_related("department", "grid").order_by("id")
    if query.role:
        rows = rows.filter(role=query.role)
    if query.department:
        rows = rows.filter(department__code=query.department)
    if query.active is not None:
        rows = rows.filter(active=query.active)
    return respond(schemas.StaffList(items=[present.staff_out(s, s.department, s.grid) for s in await rows]))


@routes.patch("/admin/staff/<staff_id:int>")
@doc("停用 / 启用工作人员", tag=ADMIN_TAG, body=schemas.StaffUpdateBody, response=schemas.StaffOut,
     idempotent=True, description="停用后其登录凭证立即失效。")
@require(Role.ADMIN)
@idempotent
async def staff_update(request: Request, staff_id: int):
    body = parse_body(request, schemas.StaffUpdateBody)
    staff = await models.Staff.get_or_none(id=record_id(staff_id, "工作人员"))
    if staff is None:
        raise NotFound("没有找到该工作人员")
    if staff.id == request.ctx.actor.id and not body.active:
        raise InvalidInput("不能停用自己的账号", field="active")
    if body.active and not staff.active:
        await refuse_inactive_unit(staff.department_id, staff.grid_id, field="active", doing="不能启用这名工作人员")
    await models.Staff.filter(id=staff.id).update(active=body.active)
    staff.active = body.active
    return respond(await _staff_out(staff))


# ---------------------------------------------------------------------------------------------- invitations
async def _new_staff(body: schemas.InvitationBody, conn) -> models.Staff:
    if not body.name or not body.role:
        raise InvalidInput("新工作人员须填写姓名 name 和角色 role(或填写已有人员的 staff_id)", field="name")
    department = grid = None
    if body.role == Role.DEPT_STAFF:
        if not body.department:
            raise InvalidInput("部门工作人员须填写部门 department", field="department")
        department = await models.Department.get_or_none(code=body.department, using_db=conn)
        if department is None:
            raise InvalidInput(f"没有这个部门:{body.department}", field="department")
        await refuse_inactive_unit(department.id, None, field="department", doing="不能再加人", conn=conn)
    if body.role == Role.GRID_WORKER:
        if not body.grid:
            raise InvalidInput("网格员须填写网格 grid", field="grid")
        grid = await models.Grid.get_or_none(code=body.grid, using_db=conn)
        if grid is None:
            raise InvalidInput(f"没有这个网格:{body.grid}", field="grid")
        await refuse_inactive_unit(None, grid.id, field="grid", doing="不能再加网格员", conn=conn)
    return await models.Staff.create(name=body.name, role=body.role, department=department, grid=grid,
                                     active=True, using_db=conn)


async def _invitation_out(invitation: models.Invitation, staff: models.Staff) -> schemas.InvitationOut:
    return schemas.InvitationOut(code=invitation.code, staff=await _staff_out(staff), expires_at=invitation.expires_at,
                                 used_at=invitation.used_at, created_at=invitation.created_at)


@routes.post("/admin/invitations")
@doc("发放绑定邀请码", tag=ADMIN_TAG, body=schemas.InvitationBody, response=schemas.InvitationOut, status=201,
     idempotent=True,
     description="为新工作人员(name, role, department/grid)或已有人员(staff_id,如换了微信)生成一次性邀请码。")
@require(Role.ADMIN)
@idempotent
async def create_invitation(request: Request):
    body = parse_body(request, schemas.InvitationBody)
    now = request.app.ctx.clock.now()
    async with in_transaction() as conn:
        if body.staff_id is not None:
            staff = await models.Staff.get_or_none(id=body.staff_id, using_db=conn)
            if staff is None:
                raise NotFound("没有找到该工作人员")
            if not staff.active:
                raise InvalidInput("该工作人员已停用,请先启用", field="staff_id")
        else:
            staff = await _new_staff(body, conn)
        invitation = await issue_invitation(staff, now=now, hours=body.expires_hours, conn=conn,
                                            created_by_id=request.ctx.actor.id)
    return respond(await _invitation_out(invitation, staff), status=201)


@routes.get("/admin/invitations")
@doc("邀请码列表", tag=ADMIN_TAG, response=schemas.InvitationList, description="最近发放的 100 个。")
@require(Role.ADMIN)
async def invitation_list(request: Request):
    rows = await models.Invitation.all().select_related("staff").order_by("-id").limit(100)
    departments = {d.id: d for d in await models.Department.all()}
    grids = {g.id: g for g in await models.Grid.all()}
    items = [
        schemas.InvitationOut(
            code=row.code, staff=present.staff_out(row.staff, departments.get(row.staff.department_id),
                                                   grids.get(row.staff.grid_id)),
            expires_at=row.expires_at, used_at=row.used_at, created_at=row.created_at)
        for row in rows
    ]
    return respond(schemas.InvitationList(items=items))
