"""An admin's day-to-day edits of departments and grids over the API: written and recorded, bad input refused in
Chinese with nothing written; applying the township file again wins for the keys it lists and says which edits it
overrides."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from api.demo.township import DEMO_TOWNSHIP_PATH, demo_township
from orders import models
from orders.township.apply import apply_township
from tests.e2e.api_harness import ADMIN, SUPERVISOR, serve_api
from tests.support import run_sidan

SQUARE = {"type": "Polygon", "coordinates": [[[104.39, 28.60], [104.40, 28.60], [104.40, 28.61], [104.39, 28.61]]]}


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


async def snapshot() -> tuple:
    departments = await models.Department.all().order_by("id").values("code", "name", "duties", "phone", "active")
    grids = await models.Grid.all().order_by("id").values("code", "name", "village", "active", "polygon",
                                                          "center_lat", "center_lng", "radius_m")
    return departments, grids, await models.ReferenceEdit.all().count()


async def test_a_department_edit_lands_in_the_database_and_is_recorded(api):
    response = await api.patch(ADMIN, "/admin/departments/jianshe",
                               {"name": "建设办", "duties": ["路灯", "道路"], "phone": "0870-5550999"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "建设办" and body["duties"] == ["路灯", "道路"] and body["phone"] == "0870-5550999"
    assert body["changed"]["name"] == ["村镇建设办", "建设办"]
    department = await models.Department.get(code="jianshe")
    assert (department.name, department.duties, department.phone) == ("建设办", ["路灯", "道路"], "0870-5550999")
    [record] = await models.ReferenceEdit.all()
    admin = await models.Staff.get(openid=ADMIN)
    assert (record.kind, record.code, record.action, record.staff_id, record.staff_name) == (
        "department", "jianshe", "update", admin.id, admin.name)
    assert set(record.changes) == {"name", "duties", "phone"}
    listed = (await api.get(SUPERVISOR, "/departments")).json()["items"]
    assert {"code": "jianshe", "name": "建设办", "phone": "0870-5550999"}.items() <= next(
        d for d in listed if d["code"] == "jianshe").items()

    cleared = await api.patch(ADMIN, "/admin/departments/jianshe", {"phone": "", "active": False})
    assert cleared.json()["phone"] is None and cleared.json()["active"] is False
    same = await api.patch(ADMIN, "/admin/departments/jianshe", {"active": False})  # nothing to change
    assert same.status_code == 200 and same.json()["changed"] == {}
    assert await models.ReferenceEdit.all().count() == 2
    refused = await api.patch(SUPERVISOR, "/admin/departments/jianshe", {"name": "x"})
    assert refused.status_code == 403


@pytest.mark.parametrize(("body", "message"), [
    ({"phone": "0870-55"}, "电话号码格式不对"),
    ({"duties": ["路灯", ""]}, "职责有误"),
    ({"duties": ["路灯", "路灯"]}, "重复"),
    ({"name": ""}, "name 不能为空"),
    ({"colour": "red"}, "colour 是不认识的字段"),
    ({}, "没有要修改的内容"),
    ({"name": None}, "没有要修改的内容"),
])
async def test_bad_department_edits_are_refused_in_chinese_and_write_nothing(api, body, message):
    before = await snapshot()
    response = await api.patch(ADMIN, "/admin/departments/jianshe", body)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert await snapshot() == before
    assert (await api.patch(ADMIN, "/admin/departments/nosuch", {"name": "x"})).status_code == 404


async def test_a_grid_is_created_edited_and_deactivated(api):
    created = await api.post(ADMIN, "/admin/grids", {"code": "XJB-05", "name": "楼坝村二网格", "village": "楼坝村",
                                                     "centre": {"latitude": 28.65, "longitude": 104.40},
                                                     "radius_m": 300})
    assert created.status_code == 201, created.text
    grid = await models.Grid.get(code="XJB-05")
    assert (grid.center_lat, grid.center_lng, grid.radius_m, grid.polygon, grid.active) == (
        28.65, 104.40, 300, None, True)
    [record] = await models.ReferenceEdit.filter(kind="grid")
    assert record.action == "create" and record.code == "XJB-05"

    moved = await api.patch(ADMIN, "/admin/grids/XJB-05", {"polygon": SQUARE, "radius_m": None})
    assert moved.status_code == 200, moved.text
    grid = await models.Grid.get(code="XJB-05")
    assert grid.polygon["coordinates"][0][0] == grid.polygon["coordinates"][0][-1]  # the ring is closed
    assert (round(grid.center_lng, 3), round(grid.center_lat, 3), grid.radius_m) == (104.395, 28.605, None)
    assert set(moved.json()["changed"]) >= {"polygon", "center_lat", "center_lng", "radius_m"}

    renamed = await api.patch(ADMIN, "/admin/grids/XJB-01", {"name": "楼坝村网格", "active": False})
    assert renamed.status_code == 200 and renamed.json()["polygon"] is not None  # geometry untouched
    features = (await api.get(SUPERVISOR, "/grids")).json()["features"]
    assert "XJB-01" not in {f["id"] for f in features} and "XJB-05" in {f["id"] for f in features}
    every = (await api.get(ADMIN, "/grids", params={"include_inactive": "true"})).json()["features"]
    assert next(f for f in every if f["id"] == "XJB-01")["properties"]["active"] is False
    assert await models.ReferenceEdit.filter(kind="grid").count() == 3


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/admin/grids", {"code": "XJB-01", "name": "重复", "village": "楼坝村", "centre": {"latitude": 28.6,
                                                                                    "longitude": 104.4}},
     409, "已存在"),
    ("/admin/grids", {"code": "XJB-09", "name": "外村", "village": "外村", "polygon": SQUARE}, 422, "不是本镇的村"),
    ("/admin/grids", {"code": "XJB-09", "name": "无边界", "village": "楼坝村"}, 422, "须有边界"),
    ("/admin/grids", {"code": "XJB-09", "village": "楼坝村", "polygon": SQUARE}, 422, "名称 name"),
    ("/admin/grids", {"code": "XJB 09", "name": "空格", "village": "楼坝村", "polygon": SQUARE}, 422, "code"),
    ("/admin/grids", {"code": "XJB-09", "name": "自相交", "village": "楼坝村", "polygon": {
        "type": "Polygon", "coordinates": [[[104.39, 28.60], [104.40, 28.61], [104.40, 28.60], [104.39, 28.61]]]}},
     422, "自相交"),
    ("/admin/grids", {"code": "XJB-09", "name": "有洞", "village": "楼坝村", "polygon": {
        "type": "Polygon", "coordinates": [SQUARE["coordinates"][0], SQUARE["coordinates"][0]]}}, 422, "一圈边界"),
    ("/admin/grids", {"code": "XJB-09", "name": "点", "village": "楼坝村", "polygon": {
        "type": "Point", "coordinates": [104.39, 28.60]}}, 422, "GeoJSON Polygon"),
    ("/admin/grids", {"code": "XJB-09", "name": "反了", "village": "楼坝村",
                      "centre": {"latitude": 128.6, "longitude": 104.4}}, 422, "latitude"),
    ("/admin/grids/XJB-01", {"polygon": None}, 422, "须有边界"),  # its centre came from the polygon
    ("/admin/grids/XJB-01", {"code": "XJB-99"}, 422, "网格代码不能修改"),
    ("/admin/grids/XJB-01", {"village": "外村"}, 422, "不是本镇的村"),
    ("/admin/grids/XJB-01", {"radius_m": -5}, 422, "radius_m"),
    ("/admin/grids/XJB-99", {"name": "无此网格"}, 404, "没有这个网格"),
])
async def test_bad_grid_edits_are_refused_in_chinese_and_write_nothing(api, path, body, status, message):
    before = await snapshot()
    send = api.post if path == "/admin/grids" else api.patch
    response = await send(ADMIN, path, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert await snapshot() == before


async def test_applying_the_file_again_wins_for_the_keys_it_lists_and_names_what_it_overrides(api, database_url):
    await api.patch(ADMIN, "/admin/departments/jianshe", {"name": "建设办", "duties": ["路灯"]})
    await api.patch(ADMIN, "/admin/grids/XJB-01", {"name": "楼坝村网格", "active": False})
    admin = (await models.Staff.get(openid=ADMIN)).name

    result = await apply_township(demo_township(), now=datetime.now(timezone.utc))
    jianshe = await models.Department.get(code="jianshe")
    assert jianshe.name == "村镇建设办"  # the file lists the name: it wins
    assert jianshe.duties == ["路灯"]  # it lists no duties: the admin's stay
    grid = await models.Grid.get(code="XJB-01")
    assert (grid.name, grid.active) == ("楼坝村一网格", True)
    line = next(change for change in result.changes if change.startswith("部门 jianshe"))
    assert "名称 建设办 → 村镇建设办" in line and f"覆盖工作台的修改:名称({admin} " in line
    assert "职责" not in line
    assert [item.split("(")[0] for item in result.overridden] == ["部门 jianshe 名称", "网格 XJB-01 名称",
                                                                   "网格 XJB-01 启用"]

    again = await apply_township(demo_township(), now=datetime.now(timezone.utc))
    assert again.changes == [] and again.overridden == []  # overridden once, then the file and database agree

    await api.patch(ADMIN, "/admin/departments/minzheng", {"phone": "0870-5550888"})
    printed = run_sidan(database_url, "township", "apply", str(DEMO_TOWNSHIP_PATH))
    assert printed.returncode == 0, printed.stderr
    assert "已覆盖管理员在工作台的 1 处修改(以文件为准):" in printed.stdout
    assert f"部门 minzheng 电话({admin} " in printed.stdout
