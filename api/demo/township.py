"""Demo data: the default departments, a township with villages and grids, staff of each role.

Idempotent: running it twice changes nothing. Demo staff openids are a contract:
demo-admin, demo-supervisor, demo-grid_worker, demo-dept_staff-<department code>.
"""
from __future__ import annotations

from tortoise.transactions import in_transaction

from orders import models
from orders.taxonomy import Taxonomy, load_taxonomy

# 向家坝镇 (水富市) around 28.63 N, 104.41 E: four villages, each one grid, as small squares.
VILLAGES = [
    ("XJB-01", "楼坝村一网格", "楼坝村", 28.640, 104.405),
    ("XJB-02", "新滩村一网格", "新滩村", 28.640, 104.425),
    ("XJB-03", "安富村一网格", "安富村", 28.625, 104.405),
    ("XJB-04", "云富社区一网格", "云富社区", 28.625, 104.425),
]
HALF_SIDE = 0.0075  # degrees: the squares touch and cover 28.6175–28.6475 N, 104.3975–104.4325 E


def _square(lat: float, lng: float) -> dict:
    s = HALF_SIDE
    ring = [[lng - s, lat - s], [lng + s, lat - s], [lng + s, lat + s], [lng - s, lat + s], [lng - s, lat - s]]
    return {"type": "Polygon", "coordinates": [ring]}


DEMO_PEOPLE = [
    ("demo-admin", "系统管理员", "admin", None, None),
    ("demo-supervisor", "督办员李主任", "supervisor", None, None),
    ("demo-grid_worker", "网格员王小燕", "grid_worker", None, "XJB-01"),
]
GRID_WORKERS = [("demo-grid_worker-XJB-02", "网格员陈刚", "XJB-02"), ("demo-grid_worker-XJB-03", "网格员刘芳", "XJB-03"),
                ("demo-grid_worker-XJB-04", "网格员赵明", "XJB-04")]


async def load_demo_data(taxonomy: Taxonomy | None = None) -> dict[str, int]:
    taxonomy = taxonomy or load_taxonomy()
    counts = {"departments": 0, "grids": 0, "staff": 0}
    async with in_transaction() as conn:
        departments = {}
        for spec in taxonomy.departments.values():
            department, created = await models.Department.update_or_create(
                code=spec.code, defaults={"name": spec.name, "duties": list(spec.duties)}, using_db=conn
            )
            departments[spec.code] = department
            counts["departments"] += created
        grids = {}
        for code, name, village, lat, lng in VILLAGES:
            grid, created = await models.Grid.update_or_create(
                code=code,
                defaults={"name": name, "village": village, "polygon": _square(lat, lng), "center_lat": lat,
                          "center_lng": lng},
                using_db=conn,
            )
            grids[code] = grid
            counts["grids"] += created
        people = list(DEMO_PEOPLE) + [(openid, name, "grid_worker", None, grid) for openid, name, grid in GRID_WORKERS]
        people += [(f"demo-dept_staff-{code}", f"{spec.name}值班员", "dept_staff", code, None)
                   for code, spec in taxonomy.departments.items()]
        for openid, name, role, department_code, grid_code in people:
            _, created = await models.Staff.update_or_create(
                openid=openid,
                defaults={
                    "name": name,
                    "role": role,
                    "department": departments.get(department_code) if department_code else None,
                    "grid": grids.get(grid_code) if grid_code else None,
                    "active": True,
                },
                using_db=conn,
            )
            counts["staff"] += created
    return counts
