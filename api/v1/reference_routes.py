"""管理: an admin's day-to-day edits of departments and grids (orders.reference_edits holds the rules and records
each edit); the township file (`sidan township apply`) stays the bulk path and wins for the keys it lists."""
from __future__ import annotations

import re
from typing import Any

from sanic import Request
from sanic_ext import openapi

from api.auth import require
from api.v1 import workbench_schemas as wb
from api.v1.docs import RawSchema, doc
from api.v1.http import idempotent, parse_body, respond, routes
from orders import models, reference_edits
from orders.errors import InvalidInput, NotFound
from orders.lifecycle import Role

TAG = "管理"
NOTHING = "没有要修改的内容:请至少填写一个字段"


def _documented_code(what: str):
    def decorate(handler):
        return openapi.parameter("code", RawSchema({"type": "string", "pattern": wb.CODE_PATTERN}), "path",
                                 required=True, description=f"{what}代码")(handler)

    return decorate


def _code(raw: str, what: str) -> str:
    if not re.fullmatch(wb.CODE_PATTERN, raw):
        raise NotFound(f"没有这个{what}:{raw[:32]}")
    return raw


def _given(body: wb.Body, clearable: tuple[str, ...]) -> dict[str, Any]:
    """The fields the request set; null clears only those that can be empty, otherwise it means "leave it"."""
    values = body.model_dump(exclude_unset=True)
    return {key: value for key, value in values.items() if value is not None or key in clearable}


def _department_out(department: models.Department, changes: dict) -> wb.DepartmentEdited:
    return wb.DepartmentEdited(code=department.code, name=department.name, duties=list(department.duties or []),
                               phone=department.phone, active=department.active, changed=changes)


def _grid_out(grid: models.Grid, changes: dict) -> wb.GridEdited:
    centre = wb.Centre(latitude=grid.center_lat, longitude=grid.center_lng) if grid.center_lat is not None else None
    return wb.GridEdited(code=grid.code, name=grid.name, village=grid.village, active=grid.active,
                         polygon=grid.polygon, centre=centre, radius_m=grid.radius_m, changed=changes)


@routes.patch("/admin/departments/<code:str>")
@doc("修改部门", tag=TAG, body=wb.DepartmentUpdateBody, response=wb.DepartmentEdited, idempotent=True,
     description="名称、职责、值班电话、启用/停用;修改留有记录。再次导入乡镇文件时,文件里写明的项以文件为准。")
@_documented_code("部门")
@require(Role.ADMIN)
@idempotent
async def department_update(request: Request, code: str):
    body = parse_body(request, wb.DepartmentUpdateBody)
    values = _given(body, clearable=("phone",))
    if not values:
        raise InvalidInput(NOTHING, field="body")
    edited = await reference_edits.edit_department(_code(code, "部门"), values, request.ctx.actor,
                                                   request.app.ctx.clock.now())
    return respond(_department_out(edited.row, edited.changes))


@routes.post("/admin/grids")
@doc("新建网格", tag=TAG, body=wb.GridBody, response=wb.GridEdited, status=201, idempotent=True,
     description="须填写 code、name、village,以及边界 polygon(GeoJSON)或中心点 centre(可加半径 radius_m)。")
@require(Role.ADMIN)
@idempotent
async def grid_create(request: Request):
    body = parse_body(request, wb.GridBody)
    edited = await reference_edits.create_grid(_given(body, clearable=()), request.ctx.actor,
                                               request.app.ctx.clock.now())
    return respond(_grid_out(edited.row, edited.changes), status=201)


@routes.patch("/admin/grids/<code:str>")
@doc("修改网格", tag=TAG, body=wb.GridBody, response=wb.GridEdited, idempotent=True,
     description="名称、所属村、启用/停用、边界或中心点与半径(填 null 可去掉);代码不能改。修改留有记录。")
@_documented_code("网格")
@require(Role.ADMIN)
@idempotent
async def grid_update(request: Request, code: str):
    body = parse_body(request, wb.GridBody)
    values = _given(body, clearable=("polygon", "centre", "radius_m"))
    if not values:
        raise InvalidInput(NOTHING, field="body")
    edited = await reference_edits.edit_grid(_code(code, "网格"), values, request.ctx.actor,
                                             request.app.ctx.clock.now())
    return respond(_grid_out(edited.row, edited.changes))
