"""What the database says about readiness (orders.readiness.findings, read by `sidan check` and /readyz), on both
backends: each missing piece found, with the line that says what to do, and how bad it is."""
from __future__ import annotations

from orders import db, models
from orders.readiness import Severity, findings
from orders.taxonomy import load_taxonomy
from orders.township import load_township_file
from orders.township.apply import apply_township
from tests.e2e.test_readyz import unmigrated_url  # noqa: F401 - a fixture
from tests.integration.test_wechat_bot import START
from tests.support import REPO, make_settings

XINAN = REPO / "tests" / "data" / "xinan-township.toml"


async def found_now() -> dict[str, list]:
    """{code: [(message, severity), …]} (the test settings: no configuration finding)."""
    by_code: dict[str, list] = {}
    for finding in await findings(make_settings("sqlite://:memory:"), load_taxonomy()):
        by_code.setdefault(finding.code, []).append((finding.message, finding.severity))
    return by_code


async def test_an_empty_database_is_one_outage_saying_to_apply_a_township_file(orm):
    assert await found_now() == {"township_not_set_up": [
        ("还没有乡镇数据:没有在用的部门,也没有网格员。运行 sidan township apply 乡镇文件.toml(写法见 docs/township.md)",
         Severity.OUTAGE)]}


async def test_a_database_behind_its_migrations_says_to_migrate(unmigrated_url):  # noqa: F811
    await db.init_db(unmigrated_url)
    try:
        [(message, severity)] = (await found_now())["migrations_pending"]
    finally:
        await db.close_db()
    assert severity is Severity.OUTAGE and "0004_rating_at_index" in message and "sidan migrate" in message


async def test_a_township_with_people_not_yet_bound_has_gaps_named_with_what_to_do(orm):
    await apply_township(load_township_file(XINAN), now=START)
    found = await found_now()
    assert {code: [severity for _, severity in items] for code, items in found.items()} == {
        "grid_worker_unbound": [Severity.GAP, Severity.GAP],
        "supervisor_unbound": [Severity.GAP],
        "duty_member_unbound": [Severity.NOTE],  # 吴主任 is on the roster too: his hours go to the supervisors
        "department_unstaffed": [Severity.NOTE] * 7,  # eight active departments, only jianshe has someone bound
    }
    assert [message for message, _ in found["grid_worker_unbound"]] == [
        "网格 XA-02 的网格员 钱网格 还没绑定微信,收不到待派的工单:运行 sidan staff invite 钱网格,在小程序里用邀请码绑定,"
        "或向公众号发送“绑定 邀请码”",
        "网格 XA-03 的网格员 孙网格 还没绑定微信,收不到待派的工单:运行 sidan staff invite 孙网格,在小程序里用邀请码绑定,"
        "或向公众号发送“绑定 邀请码”",
    ]
    assert "sidan staff invite 吴主任" in found["supervisor_unbound"][0][0]

    for name, openid in (("钱网格", "xa-grid-02"), ("孙网格", "xa-grid-03"), ("吴主任", "xa-supervisor")):
        await models.Staff.filter(name=name).update(openid=openid)
    assert set(await found_now()) == {"department_unstaffed"}  # notes only: `sidan check` passes

    await models.Staff.filter(name="孙网格").update(active=False)
    await models.Department.filter(code="nongye").update(active=False)
    await models.Staff.filter(role="supervisor").update(active=False)
    await models.Township.filter(id=1).update(duty_phone=None)
    found = await found_now()
    assert found["grid_without_worker"] == [
        ("网格 XA-03 没有网格员:在乡镇文件 [[staff]] 里加一名 grid_worker 后运行 sidan township apply", Severity.GAP)]
    assert found["no_department_for_category"] == [(
        "类别“生态环境”没有在用的承办部门(可承办:huanbao 生态环境站、zhifa 综合执法队、nongye 农业服务中心):"
        "在乡镇文件 [[departments]] 里启用其中一个后运行 sidan township apply", Severity.GAP)]
    assert found["no_supervisor"][0][1] is Severity.GAP and "role = \"supervisor\"" in found["no_supervisor"][0][0]
    assert found["no_duty_phone"][0][1] is Severity.NOTE


async def test_departments_without_any_grid_worker_is_a_gap_not_an_outage(orm):
    await apply_township(load_township_file(XINAN), now=START)
    await models.Staff.filter(role="grid_worker").update(active=False)
    await models.Grid.all().update(active=False)
    found = await found_now()
    assert found["no_grid_worker"][0][1] is Severity.GAP and "township_not_set_up" not in found


async def test_staff_bound_through_the_official_account_only_are_reachable(orm):
    """"绑定 <邀请码>" sent to the account binds oa_openid: their notices go there (staff_channels), so they count."""
    await apply_township(load_township_file(XINAN), now=START)
    for name, oa_openid in (("钱网格", "oa-grid-02"), ("孙网格", "oa-grid-03"), ("吴主任", "oa-supervisor"),
                            ("陈民政", "oa-minzheng")):
        await models.Staff.filter(name=name).update(oa_openid=oa_openid)
    found = await found_now()
    assert set(found) == {"department_unstaffed"}  # notes only: `sidan check` passes
    assert not any("社会事务办" in message for message, _ in found["department_unstaffed"])
