"""`sidan township apply`: a checked township file written in one transaction, with what it changed.

Creates or updates by code (departments, grids) and by openid or name (staff); the same file twice changes nothing.
For departments and grids already there, the file wins for the keys it lists (a department's name, duties, phone,
active; a grid's name, village and, when it gives any, its geometry) and leaves the others as an admin edited them in
the workbench (orders/reference_edits.py); each admin edit it overrides is named in its line of changes.
Anything the file no longer lists is deactivated when orders or staff refer to it (its history stays), deleted
otherwise; staff are only ever deactivated. A dry run does the same work and rolls it back.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry import Polygon
from tortoise.transactions import in_transaction

from orders import models
from orders.clock import local
from orders.taxonomy import Taxonomy, load_taxonomy
from orders.township.spec import ROLE_NAMES, DutyTable, GridTable, TownshipSpec

TOWNSHIP_ROW = 1


@dataclass
class ApplyResult:
    changes: list[str] = field(default_factory=list)  # one line each, in Chinese
    created: Counter[str] = field(default_factory=Counter)  # departments / grids / staff created
    uninvited: list[str] = field(default_factory=list)  # staff without a bound WeChat (they need an invitation)
    overridden: list[str] = field(default_factory=list)  # admin edits (workbench) the file replaced, one line each
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.changes)


class _DryRun(Exception):
    def __init__(self, result: ApplyResult) -> None:
        super().__init__("dry run")
        self.result = result


def mask_phone(phone: str | None) -> str | None:
    """138****5678 (what the API may show); the full number stays in Staff.phone for the duty roster."""
    if not phone:
        return None
    digits = phone.replace("-", "")
    return f"{digits[:3]}****{digits[-4:]}"


async def apply_township(spec: TownshipSpec, *, now: datetime, dry_run: bool = False,
                         taxonomy: Taxonomy | None = None) -> ApplyResult:
    """Write the file's township (checked by parse_township: nothing here can refuse it), or on a dry run say what
    would change and roll back."""
    writer = _Writer(spec, taxonomy or load_taxonomy(), now, ApplyResult(dry_run=dry_run))
    try:
        async with in_transaction() as conn:
            writer.conn = conn
            await writer.run()
            if dry_run:
                raise _DryRun(writer.result)
    except _DryRun as rolled_back:
        return rolled_back.result
    return writer.result


def grid_geometry(grid: GridTable) -> dict[str, Any]:
    """The columns a grid's row gets from the file: GeoJSON polygon, centre (given, else the polygon's), radius."""
    polygon = {"type": "Polygon", "coordinates": [grid.polygon]} if grid.polygon else None
    if grid.center is not None:
        lng, lat = grid.center
    elif grid.polygon:
        centroid = Polygon(grid.polygon).centroid
        lng, lat = round(centroid.x, 6), round(centroid.y, 6)
    else:
        lng = lat = None
    return {"polygon": polygon, "center_lat": lat, "center_lng": lng, "radius_m": grid.radius_m}


class _Writer:
    conn: Any

    def __init__(self, spec: TownshipSpec, taxonomy: Taxonomy, now: datetime, result: ApplyResult) -> None:
        self.spec, self.taxonomy, self.now, self.result = spec, taxonomy, now, result
        self.departments: dict[str, models.Department] = {}
        self.grids: dict[str, models.Grid] = {}
        self.edits: dict[tuple[str, str], dict[str, tuple[Any, str, datetime]]] = {}  # the admins' latest per field

    def said(self, line: str) -> None:
        self.result.changes.append(line)

    async def run(self) -> None:
        for edit in await models.ReferenceEdit.all().order_by("id").using_db(self.conn):
            for name, (_, after) in (edit.changes or {}).items():
                self.edits.setdefault((edit.kind, edit.code), {})[name] = (after, edit.staff_name, edit.at)
        await self._township()
        await self._departments()
        await self._grids()
        staff = await self._staff()
        await self._duty(staff)

    # -------------------------------------------------------------------------------------- the township row
    async def _township(self) -> None:
        town = self.spec.township
        wanted = {"name": town.name, "order_prefix": town.order_prefix, "duty_phone": town.duty_phone,
                  "villages": [village.name for village in self.spec.villages]}
        row = await models.Township.get_or_none(id=TOWNSHIP_ROW, using_db=self.conn)
        if row is None:
            await models.Township.create(id=TOWNSHIP_ROW, updated_at=self.now, using_db=self.conn, **wanted)
            self.said(f"乡镇:{town.name},工单号前缀 {town.order_prefix},村 {len(wanted['villages'])} 个")
            return
        labels = {"name": "名称", "order_prefix": "工单号前缀", "duty_phone": "值班电话", "villages": "村"}
        differences = _differences(row, wanted, labels)
        if differences:
            await models.Township.filter(id=TOWNSHIP_ROW).using_db(self.conn).update(updated_at=self.now, **wanted)
            note = "(已有工单保留原编号)" if row.order_prefix != town.order_prefix else ""
            self.said(f"乡镇:{';'.join(differences)}{note}")

    # -------------------------------------------------------------------------------------- departments
    async def _departments(self) -> None:
        existing = {d.code: d for d in await models.Department.all().using_db(self.conn)}
        for entry in self.spec.departments:
            spec = self.taxonomy.departments[entry.code]
            wanted = {"name": entry.name or spec.name, "duties": list(entry.duties or spec.duties),
                      "phone": entry.phone, "active": entry.active}
            department = existing.pop(entry.code, None)
            if department is None:
                department = await models.Department.create(code=entry.code, using_db=self.conn, **wanted)
                self.result.created["departments"] += 1
                self.said(f"部门 {entry.code} {wanted['name']}:新建" + ("" if entry.active else "(停用)"))
            else:
                listed = {name: value for name, value in wanted.items() if name in entry.model_fields_set}
                await self._update(department, listed, f"部门 {entry.code}", _DEPARTMENT_LABELS,
                                   edited=("department", entry.code))
            self.departments[entry.code] = department
        for department in existing.values():
            await self._remove(department, f"部门 {department.code} {department.name}",
                               orders=models.Order.filter(department_id=department.id),
                               staff=models.Staff.filter(department_id=department.id))

    # -------------------------------------------------------------------------------------- grids
    async def _grids(self) -> None:
        existing = {g.code: g for g in await models.Grid.all().using_db(self.conn)}
        for entry in self.spec.grids:
            wanted = {"name": entry.name, "village": entry.village, "active": True, **grid_geometry(entry)}
            grid = existing.pop(entry.code, None)
            if grid is None:
                grid = await models.Grid.create(code=entry.code, using_db=self.conn, **wanted)
                self.result.created["grids"] += 1
                self.said(f"网格 {entry.code} {entry.name}({entry.village}):新建")
            else:
                if not entry.model_fields_set & {"polygon", "center", "radius_m"}:  # no geometry in the file
                    wanted = {name: value for name, value in wanted.items() if name not in _GEOMETRY}
                await self._update(grid, wanted, f"网格 {entry.code}", _GRID_LABELS, edited=("grid", entry.code))
            self.grids[entry.code] = grid
        for grid in existing.values():
            # the file's own staff are moved or deactivated below; members added over the API would lose their grid
            await self._remove(grid, f"网格 {grid.code} {grid.name}", orders=models.Order.filter(grid_id=grid.id),
                               staff=models.Staff.filter(grid_id=grid.id, active=True, from_file=False))

    # -------------------------------------------------------------------------------------- staff
    async def _staff(self) -> dict[str, models.Staff]:
        rows = await models.Staff.all().order_by("id").using_db(self.conn)
        by_openid = {s.openid: s for s in rows if s.openid}
        by_name: dict[str, models.Staff] = {}
        for person in sorted(rows, key=lambda s: (not s.from_file, s.id)):  # the file's own first
            by_name.setdefault(person.name, person)
        matched: dict[str, models.Staff] = {}
        taken: set[int] = set()
        # those the file names by openid first: the openid is the surest match
        for entry in sorted(self.spec.staff, key=lambda entry: entry.openid is None):
            person = by_openid.get(entry.openid) if entry.openid else None  # unique in the file: never taken
            if person is None:
                candidate = by_name.get(entry.name)
                if candidate is not None and candidate.id not in taken and (
                        entry.openid is None or candidate.openid is None):
                    person = candidate
            matched[entry.name] = await self._one_staff(entry, person)
            taken.add(matched[entry.name].id)
        listed = {person.id for person in matched.values()}
        for person in rows:
            if person.from_file and person.active and person.id not in listed:
                await models.Staff.filter(id=person.id).using_db(self.conn).update(active=False)
                self.said(f"人员 {person.name}:不在文件中,停用")
        return matched

    async def _one_staff(self, entry, person: models.Staff | None) -> models.Staff:
        wanted = {"name": entry.name, "role": entry.role,
                  "department_id": self.departments[entry.department].id if entry.department else None,
                  "grid_id": self.grids[entry.grid].id if entry.grid else None,
                  "phone": entry.phone, "phone_masked": mask_phone(entry.phone), "active": True, "from_file": True}
        if entry.openid:
            wanted["openid"] = entry.openid
        where = entry.department or entry.grid or ""
        label = f"{ROLE_NAMES[entry.role]} {entry.name}" + (f"({where})" if where else "")
        if person is None:
            person = await models.Staff.create(using_db=self.conn, **wanted)
            self.result.created["staff"] += 1
            self.said(f"人员 {label}:新建")
        else:
            await self._update(person, wanted, f"人员 {entry.name}", _STAFF_LABELS)
        if not person.openid and not person.oa_openid:
            self.result.uninvited.append(entry.name)
        return person

    # -------------------------------------------------------------------------------------- duty roster
    async def _duty(self, staff: dict[str, models.Staff]) -> None:
        wanted = [(staff[shift.staff].id, list(shift.days), shift.starts, shift.ends) for shift in self.spec.duty
                  if shift.staff in staff]
        rows = await models.DutyShift.all().order_by("position", "id").using_db(self.conn)
        if [(row.staff_id, list(row.days), row.starts, row.ends) for row in rows] == wanted:
            return
        await models.DutyShift.all().using_db(self.conn).delete()
        for position, (staff_id, days, starts, ends) in enumerate(wanted):
            await models.DutyShift.create(staff_id=staff_id, days=days, starts=starts, ends=ends, position=position,
                                          using_db=self.conn)
        self.said(f"值班表:{len(rows)} 班 → {len(wanted)} 班" + "".join(
            f"\n  {_shift_label(shift)}" for shift in self.spec.duty))

    # -------------------------------------------------------------------------------------- shared
    async def _update(self, row, wanted: dict[str, Any], label: str, labels: dict[str, str],
                      edited: tuple[str, str] | None = None) -> None:
        differences = _differences(row, wanted, labels)
        if not differences:
            return
        overridden = self._overridden(row, wanted, labels, edited) if edited else []
        await type(row).filter(id=row.id).using_db(self.conn).update(**wanted)
        for name, value in wanted.items():
            setattr(row, name, value)
        note = f"(覆盖工作台的修改:{'、'.join(overridden)})" if overridden else ""
        self.said(f"{label}:{';'.join(differences)}{note}")
        self.result.overridden.extend(f"{label} {item}" for item in overridden)

    def _overridden(self, row, wanted: dict[str, Any], labels: dict[str, str], edited: tuple[str, str]) -> list[str]:
        """The fields the file changes whose value an admin set in the workbench: "名称(王管理 12-03 14:05)"."""
        edits = self.edits.get(edited, {})
        out = []
        for name, value in wanted.items():
            current = getattr(row, name)
            if name in labels and current != value and name in edits and edits[name][0] == current:
                _, who, at = edits[name]
                out.append(f"{labels[name]}({who} {local(at):%m-%d %H:%M})")
        return out

    async def _remove(self, row, label: str, *, orders, staff) -> None:
        """No longer in the file: deactivated when orders or staff refer to it, deleted otherwise."""
        order_count = await orders.using_db(self.conn).count()
        staff_count = await staff.using_db(self.conn).count()
        if order_count or staff_count:
            if row.active:
                await type(row).filter(id=row.id).using_db(self.conn).update(active=False)
                refs = "、".join(part for part in (f"{order_count} 张工单" if order_count else "",
                                                   f"{staff_count} 名人员" if staff_count else "") if part)
                self.said(f"{label}:不在文件中,停用(有 {refs},保留历史)")
            return
        await type(row).filter(id=row.id).using_db(self.conn).delete()
        self.said(f"{label}:不在文件中,删除")


_GEOMETRY = ("polygon", "center_lat", "center_lng", "radius_m")
_DEPARTMENT_LABELS = {"name": "名称", "duties": "职责", "phone": "电话", "active": "启用"}
_GRID_LABELS = {"name": "名称", "village": "村", "active": "启用", "polygon": "边界", "center_lat": "中心纬度",
                "center_lng": "中心经度", "radius_m": "半径"}
_STAFF_LABELS = {"name": "姓名", "role": "角色", "department_id": "部门", "grid_id": "网格", "phone": "电话",
                 "active": "在职", "openid": "openid", "from_file": "由乡镇文件管理"}


def _shown(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if name == "polygon":
        return f"{len(value['coordinates'][0]) - 1} 个点" if value else "无"
    if isinstance(value, list):
        return "、".join(map(str, value)) or "无"
    return "无" if value is None else str(value)


def _differences(row, wanted: dict[str, Any], labels: dict[str, str]) -> list[str]:
    return [f"{labels[name]} {_shown(name, getattr(row, name))} → {_shown(name, value)}"
            for name, value in wanted.items() if name in labels and getattr(row, name) != value]


def _shift_label(shift: DutyTable) -> str:
    return f"{shift.staff} {','.join(shift.days)} {shift.hours}"
