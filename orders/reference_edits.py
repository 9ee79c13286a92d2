"""Day-to-day edits of departments and grids by an admin (the workbench's 管理 pages); the township file stays the
bulk path, and applying it again wins for the keys it lists (orders/township/apply.py names the edits it overrides).

Each edit is checked as the township file's entries are (the same rules and Chinese messages), written in one
transaction with its record (ReferenceEdit: who, when, field → [before, after]); a refused edit writes nothing.
An edit that changes nothing is not recorded.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from tortoise.transactions import in_transaction

from orders import models
from orders.errors import Conflict, InvalidInput, NotFound
from orders.services import Actor
from orders.township.apply import grid_geometry
from orders.township.spec import GridTable, ServicePhone

DEPARTMENT = "department"
GRID = "grid"
GEOMETRY = ("polygon", "center_lat", "center_lng", "radius_m")


@dataclass
class Edited:
    row: models.Department | models.Grid
    changes: dict[str, list[Any]]  # field → [before, after]; empty: nothing changed


def _first_problem(exc: ValidationError, labels: dict[str, str]) -> InvalidInput:
    error = exc.errors(include_url=False)[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"] if error["type"] == "township" else f"格式不对({error['msg']})"
    label = labels.get(field, field)
    return InvalidInput(f"{label}有误:{message}" if label else message, field=field or "body")


_SERVICE_PHONE = TypeAdapter(ServicePhone)


async def edit_department(code: str, values: dict[str, Any], actor: Actor, now: datetime) -> Edited:
    """values: some of name, duties, phone ("" or None clears it), active."""
    wanted = dict(values)
    if "phone" in wanted:
        wanted["phone"] = wanted["phone"] or None
        try:
            _SERVICE_PHONE.validate_python(wanted["phone"])
        except ValidationError as exc:
            raise _first_problem(exc, {"": "电话"}) from None
    if "duties" in wanted:
        duties = [duty.strip() for duty in wanted["duties"]]
        if any(not duty or len(duty) > 32 for duty in duties):
            raise InvalidInput("职责有误:每一项须为 1–32 个字", field="duties")
        if len(set(duties)) < len(duties):
            raise InvalidInput("职责有误:有重复的项", field="duties")
        wanted["duties"] = duties
    async with in_transaction() as conn:
        department = await models.Department.get_or_none(code=code, using_db=conn)
        if department is None:
            raise NotFound(f"没有这个部门:{code[:32]}")
        changes = await _write(conn, department, wanted, DEPARTMENT, code, "update", actor, now)
    return Edited(department, changes)


async def create_grid(values: dict[str, Any], actor: Actor, now: datetime) -> Edited:
    """values: code, name, village and the geometry (polygon and/or centre, radius_m)."""
    missing = [label for key, label in (("code", "网格代码 code"), ("name", "名称 name"), ("village", "村 village"))
               if not values.get(key)]
    if missing:
        raise InvalidInput(f"新建网格须填写{'、'.join(missing)}", field="code")
    async with in_transaction() as conn:
        if await models.Grid.filter(code=values["code"]).using_db(conn).exists():
            raise Conflict(f"网格代码 {values['code']} 已存在,请换一个或修改原网格")
        checked = await _checked_grid(conn, values, current=None)
        grid = await models.Grid.create(code=checked.code, using_db=conn, **_grid_columns(checked, values, None))
        changes = {name: [None, value] for name, value in _grid_columns(checked, values, None).items()}
        await _record(conn, GRID, grid.code, "create", changes, actor, now)
    return Edited(grid, changes)


async def edit_grid(code: str, values: dict[str, Any], actor: Actor, now: datetime) -> Edited:
    """values: some of name, village, active, polygon, centre, radius_m (the code stays)."""
    if "code" in values and values["code"] != code:
        raise InvalidInput("网格代码不能修改;要换代码请新建网格并停用原网格", field="code")
    async with in_transaction() as conn:
        grid = await models.Grid.get_or_none(code=code, using_db=conn)
        if grid is None:
            raise NotFound(f"没有这个网格:{code[:32]}")
        checked = await _checked_grid(conn, {**values, "code": code}, current=grid)
        wanted = _grid_columns(checked, values, grid)
        changes = await _write(conn, grid, wanted, GRID, code, "update", actor, now)
    return Edited(grid, changes)


# ---------------------------------------------------------------------------------------------- grids
async def _checked_grid(conn: Any, values: dict[str, Any], current: models.Grid | None) -> GridTable:
    """The grid as it would be, checked as a township file's [[grids]] entry is."""
    if "polygon" in values:
        polygon = _ring(values["polygon"]) if values["polygon"] is not None else None
    else:
        polygon = current.polygon["coordinates"][0] if current is not None and current.polygon else None
    if "centre" in values:
        centre = values["centre"] and [float(values["centre"]["longitude"]), float(values["centre"]["latitude"])]
    elif "polygon" in values or current is None or current.center_lat is None:
        centre = None  # a new boundary: its own centre
    else:
        centre = [current.center_lng, current.center_lat]
    radius = values["radius_m"] if "radius_m" in values else (current.radius_m if current is not None else None)
    entry = {"code": values["code"], "name": values.get("name") or (current.name if current else ""),
             "village": values.get("village") or (current.village if current else ""),
             "polygon": polygon, "center": centre, "radius_m": float(radius) if radius is not None else None}
    try:
        checked = GridTable.model_validate(entry)
    except ValidationError as exc:
        raise _first_problem(exc, {"code": "网格代码", "name": "名称", "village": "村", "polygon": "边界",
                                   "center": "中心点", "radius_m": "半径"}) from None
    if checked.polygon is None and checked.center is None:
        raise InvalidInput("网格须有边界 polygon,或中心点 centre(可加半径 radius_m)", field="polygon")
    if checked.radius_m is not None and checked.center is None:
        raise InvalidInput("有半径就要有中心点 centre", field="centre")
    town = await models.Township.get_or_none(using_db=conn)
    if town is not None and town.villages and checked.village not in town.villages:
        raise InvalidInput(f"村“{checked.village}”不是本镇的村(本镇:{'、'.join(town.villages)})", field="village")
    return checked


def _ring(polygon: Any) -> list[list[float]]:
    """The outer ring of a GeoJSON Polygon (no holes: a grid is one area)."""
    coordinates = polygon.get("coordinates") if isinstance(polygon, dict) else None
    if not isinstance(polygon, dict) or polygon.get("type") != "Polygon" or not isinstance(coordinates, list) \
            or len(coordinates) != 1 or not isinstance(coordinates[0], list):
        raise InvalidInput('边界有误:应为 GeoJSON Polygon,{"type": "Polygon", "coordinates": [[[经度, 纬度], …]]},'
                           "只有一圈边界", field="polygon")
    ring = []
    for point in coordinates[0]:
        if not isinstance(point, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in point):
            raise InvalidInput("边界有误:每个点应为 [经度, 纬度] 两个数", field="polygon")
        ring.append([float(v) for v in point])
    if len(ring) > 500:
        raise InvalidInput("边界有误:最多 500 个点", field="polygon")
    return ring


def _grid_columns(checked: GridTable, values: dict[str, Any], current: models.Grid | None) -> dict[str, Any]:
    columns: dict[str, Any] = {"name": checked.name, "village": checked.village}
    if current is None or any(key in values for key in ("polygon", "centre", "radius_m")):
        columns.update(grid_geometry(checked))
    columns["active"] = values["active"] if values.get("active") is not None else (
        current.active if current is not None else True)
    return columns


# ---------------------------------------------------------------------------------------------- shared
async def _write(conn: Any, row, wanted: dict[str, Any], kind: str, code: str, action: str, actor: Actor,
                 now: datetime) -> dict[str, list[Any]]:
    changes = {name: [getattr(row, name), value] for name, value in wanted.items() if getattr(row, name) != value}
    if not changes:
        return {}
    await type(row).filter(id=row.id).using_db(conn).update(**{name: after for name, (_, after) in changes.items()})
    for name, (_, after) in changes.items():
        setattr(row, name, after)
    await _record(conn, kind, code, action, changes, actor, now)
    return changes


async def _record(conn: Any, kind: str, code: str, action: str, changes: dict[str, list[Any]], actor: Actor,
                  now: datetime) -> None:
    await models.ReferenceEdit.create(kind=kind, code=code, action=action, changes=changes,
                                      staff_id=actor.id if actor.id else None, staff_name=actor.name[:64], at=now,
                                      using_db=conn)
