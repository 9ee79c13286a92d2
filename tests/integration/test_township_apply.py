"""`sidan township apply` on both backends: creates, changes nothing the second time, renames and deactivates,
keeps what orders refer to, writes nothing on a dry run or on any problem; the grids it draws locate reports."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from api.demo.township import load_demo_data
from orders import models
from orders.services import OrderService
from orders.township import TownshipFileError, parse_township, read_identity
from orders.township.apply import apply_township
from tests.support import REPO

XINAN_TEXT = (REPO / "tests" / "data" / "xinan-township.toml").read_text(encoding="utf-8")
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
IN_XA_01 = {"latitude": 30.105, "longitude": 103.205, "label": "东岭村一组"}
IN_XA_03 = {"latitude": 30.092, "longitude": 103.210, "label": "西河村"}
OUTSIDE = {"latitude": 30.120, "longitude": 103.205, "label": "镇外一公里"}  # 1 km north of XA-01


async def apply(text: str = XINAN_TEXT, dry_run: bool = False):
    return await apply_township(parse_township(text, "xinan.toml"), now=NOW, dry_run=dry_run)


async def snapshot() -> dict:
    """Every row a township file writes, as plain values."""
    tables = {"township": models.Township, "department": models.Department, "grid": models.Grid,
              "staff": models.Staff, "duty": models.DutyShift, "invitation": models.Invitation}
    return {name: sorted(map(repr, await model.all().order_by("id").values())) for name, model in tables.items()}


async def test_apply_creates_the_township_and_a_second_apply_changes_nothing(orm, settings):
    result = await apply()
    assert dict(result.created) == {"departments": 12, "grids": 3, "staff": 7}
    assert sorted(result.uninvited) == sorted(["吴主任", "钱网格", "孙网格", "陈民政"])
    assert await read_identity(settings) == ("新安镇", "XA", "0831-7650110")
    town = await models.Township.get(id=1)
    assert town.villages == ["东岭村", "西河村"]
    assert await models.Department.filter(active=True).count() == 8
    minzheng = await models.Department.get(code="minzheng")
    assert (minzheng.name, minzheng.duties, minzheng.phone) == ("社会事务办", ["低保", "特困", "养老"], "0831-7650101")
    assert (await models.Department.get(code="sifasuo")).name == "司法所"  # the taxonomy's name by default
    feng = await models.Staff.get(name="冯建设").prefetch_related("department")
    assert (feng.openid, feng.role, feng.department.code, feng.phone, feng.phone_masked, feng.from_file) == (
        "xa-jianshe", "dept_staff", "jianshe", "0831-7650112", "083****0112", True)
    shifts = await models.DutyShift.all().order_by("position").prefetch_related("staff")
    assert [(s.staff.name, s.days, s.starts, s.ends) for s in shifts] == [
        ("吴主任", ["mon", "tue", "wed", "thu", "fri"], "08:30", "17:30"), ("郑网格", ["sat", "sun"], "22:00", "08:00")]
    grid = await models.Grid.get(code="XA-03")
    assert grid.polygon["coordinates"][0][0] == [103.2, 30.09] and grid.center_lat == pytest.approx(30.093)

    before = await snapshot()
    again = await apply()
    assert not again.changed and again.changes == [] and not again.created
    assert await snapshot() == before


async def test_editing_the_file_renames_deactivates_and_moves(orm):
    await apply()
    edited = (XINAN_TEXT.replace('name = "规划建设办"', 'name = "城乡建设办"')
              .replace('code = "weijian"', 'code = "weijian"\nactive = false')
              .replace('name = "孙网格"\nrole = "grid_worker"\ngrid = "XA-03"', 'name = "孙网格"\nrole = "grid_worker"\ngrid = "XA-02"')
              .replace('order_prefix = "XA"', 'order_prefix = "XAZ"'))
    result = await apply(edited)
    assert "部门 jianshe:名称 规划建设办 → 城乡建设办" in result.changes
    assert "部门 weijian:启用 是 → 否" in result.changes
    assert any(line.startswith("乡镇:工单号前缀 XA → XAZ") and "已有工单保留原编号" in line for line in result.changes)
    assert any(line.startswith("人员 孙网格:网格") for line in result.changes)
    assert (await models.Department.get(code="jianshe")).name == "城乡建设办"
    assert not (await models.Department.get(code="weijian")).active
    sun = await models.Staff.get(name="孙网格").prefetch_related("grid")
    assert sun.grid.code == "XA-02"
    assert not (await apply(edited)).changed


async def test_what_the_file_no_longer_lists_is_deactivated_when_orders_refer_to_it_else_deleted(
        orm, settings, fake_classifier):
    await apply()
    service = OrderService(settings, fake_classifier)
    order = (await service.submit(openid="oResident", text="路灯坏了", location=IN_XA_03)).order
    assert (await models.Grid.get(id=order.grid_id)).code == "XA-03"
    # the triangle gets a new code: XA-03 is no longer in the file
    recoded = XINAN_TEXT.replace('code = "XA-03"', 'code = "XA-04"').replace('grid = "XA-03"', 'grid = "XA-04"')
    result = await apply(recoded)
    assert "网格 XA-03 西河村网格:不在文件中,停用(有 1 张工单,保留历史)" in result.changes
    kept = await models.Grid.get(code="XA-03")
    assert not kept.active and (await models.Order.get(id=order.id)).grid_id == kept.id  # the order's history
    # new reports there find the new grid, never the deactivated one
    second = (await service.submit(openid="oResident", text="路灯又坏了", location=IN_XA_03)).order
    assert (await models.Grid.get(id=second.grid_id)).code == "XA-04"
    # a grid no order refers to is deleted when the file drops it
    await models.Order.filter(id=second.id).update(grid_id=None)
    result = await apply(recoded.replace('"XA-04"', '"XA-05"'))
    assert "网格 XA-04 西河村网格:不在文件中,删除" in result.changes
    assert not await models.Grid.filter(code="XA-04").exists()
    assert await models.Grid.filter(code="XA-03", active=False).exists()


async def test_staff_dropped_from_the_file_are_deactivated_and_staff_added_over_the_api_are_left_alone(orm):
    await apply()
    await models.Staff.create(name="临时工作人员", role="supervisor", active=True)  # invited over the API
    without_chen = XINAN_TEXT.replace('[[staff]]\nname = "陈民政"\nrole = "dept_staff"\ndepartment = "minzheng"\n', "")
    result = await apply(without_chen)
    assert result.changes == ["人员 陈民政:不在文件中,停用"]
    assert not (await models.Staff.get(name="陈民政")).active
    assert (await models.Staff.get(name="临时工作人员")).active


async def test_a_dry_run_says_what_would_change_and_writes_nothing(orm):
    before = await snapshot()
    result = await apply(dry_run=True)
    assert result.dry_run and result.changed and dict(result.created)["departments"] == 12
    assert await snapshot() == before
    await apply()
    applied = await snapshot()
    renamed = await apply(XINAN_TEXT.replace('name = "新安镇"', 'name = "新安街道"'), dry_run=True)
    assert renamed.changes == ["乡镇:名称 新安镇 → 新安街道"]
    assert await snapshot() == applied


async def test_a_file_with_three_problems_lists_them_and_the_database_is_unchanged(orm):
    await apply()
    before = await snapshot()
    broken = (XINAN_TEXT.replace('order_prefix = "XA"', 'order_prefix = "xa"')
              .replace('village = "西河村"', 'village = "南山村"').replace('hours = "08:30-17:30"', 'hours = "全天"'))
    with pytest.raises(TownshipFileError) as caught:
        await apply(broken)
    assert [problem.key for problem in caught.value.problems] == ["township.order_prefix", "grids[3].village",
                                                                  "duty[1].hours"]
    assert await snapshot() == before


async def test_the_township_s_prefix_numbers_orders_and_deactivated_departments_go_to_the_grid_worker(
        orm, settings, fake_classifier):
    await apply()
    service = OrderService(settings, fake_classifier)
    lamp = (await service.submit(openid="oResident", text="村口的路灯坏了", location=IN_XA_01)).order
    assert lamp.number.startswith("XA") and lamp.state == "dispatched"
    assert (await models.Grid.get(id=lamp.grid_id)).code == "XA-01"
    straw = await service.submit(openid="oResident", text="有人烧秸秆", location=OUTSIDE)  # huanbao: deactivated
    assert not straw.auto_dispatched and straw.order.department_id is None
    assert straw.order.grid_id is None  # outside every polygon: the township's queue, not the nearest grid


async def test_the_demo_data_is_the_demo_file_applied(orm, settings):
    assert await load_demo_data() == {"departments": 12, "grids": 4, "staff": 18}
    assert await load_demo_data() == {"departments": 0, "grids": 0, "staff": 0}
    assert await read_identity(settings) == ("向家坝镇", "YK", "0870-5550110")
    openids = set(await models.Staff.filter(active=True).values_list("openid", flat=True))
    assert {"demo-admin", "demo-supervisor", "demo-grid_worker", "demo-dept_staff-jianshe"} <= openids
    assert await models.DutyShift.all().count() == 2
