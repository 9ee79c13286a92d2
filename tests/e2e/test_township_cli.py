"""A township set up from an empty database in a terminal, as its IT admin would: `sidan township apply`,
`sidan staff invite`, `sidan admin create`, then the invited people bind their WeChat over the API."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from orders import models
from tests.e2e.api_harness import serve_api
from tests.support import REPO, run_sidan as sidan

XINAN = "tests/data/xinan-township.toml"


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier, demo=False) as api:
        yield api


async def test_a_township_set_up_in_a_terminal_binds_its_people_over_the_api(api, database_url):
    applied = sidan(database_url, "township", "apply", XINAN)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith(f"新安镇({XINAN})")
    assert "部门 renshe 人社所:新建(停用)" in applied.stdout and "已写入 24 项变更。" in applied.stdout
    assert "尚未绑定微信的人员 4 名:" in applied.stdout
    again = sidan(database_url, "township", "apply", XINAN)
    assert again.returncode == 0 and "没有变化:数据库已与文件一致。" in again.stdout and "新建" not in again.stdout

    invited = sidan(database_url, "staff", "invite", "钱网格", "--json")
    assert invited.returncode == 0, invited.stderr
    invitation = json.loads(invited.stdout)
    assert invited.stdout.count("\n") == 1 and re.fullmatch(r"[A-Z2-9]{8}", invitation["code"])
    expires = datetime.fromisoformat(invitation["expires_at"])
    assert timedelta(hours=71) < expires - datetime.now(timezone.utc) <= timedelta(hours=72)
    admin = json.loads(sidan(database_url, "admin", "create", "--name", "信息员小周", "--json").stdout)

    api.wechat.codes["wx-qian"] = "oQianWangGe"
    bound = await api.client.post("/api/v1/auth/bind", json={"code": "wx-qian", "invitation": invitation["code"]})
    assert bound.status_code == 200, bound.text
    assert bound.json()["role"] == "grid_worker" and bound.json()["profile"]["grid"]["code"] == "XA-02"
    api.wechat.codes["wx-zhou"] = "oXiaoZhou"
    bound = await api.client.post("/api/v1/auth/bind", json={"code": "wx-zhou", "invitation": admin["code"]})
    assert bound.status_code == 200, bound.text
    assert bound.json()["role"] == "admin"
    staff = await api.get("oXiaoZhou", "/admin/staff")
    assert staff.status_code == 200 and "钱网格" in {item["name"] for item in staff.json()["items"]}
    dashboard = await api.get("oXiaoZhou", "/stats/dashboard")
    assert dashboard.status_code == 200 and dashboard.json()["township"] == "新安镇"
    # each code binds once
    reused = await api.client.post("/api/v1/auth/bind", json={"code": "code-oOther", "invitation": admin["code"]})
    assert reused.status_code == 422

    # the statistics link goes to the township's first supervisor, without naming the demo
    link = sidan(database_url, "dashboard-link")
    assert link.returncode == 0 and "#token=" in link.stdout and "吴主任" in link.stderr
    assert sidan(database_url, "stats", "--period", "30d").stdout.startswith("新安镇 四单统计")


async def test_a_file_with_problems_lists_each_with_its_line_and_writes_nothing(database_url, tmp_path, orm):
    broken = tmp_path / "broken.toml"
    text = (REPO / XINAN).read_text(encoding="utf-8")
    broken.write_text(text.replace('order_prefix = "XA"', 'order_prefix = "xa"')
                      .replace('phone = "13900000003"', 'phone = "139"')
                      .replace('staff = "郑网格"', 'staff = "郑网络"'), encoding="utf-8")
    result = sidan(database_url, "township", "apply", str(broken))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert [re.sub(r":\d+ ", ":N ", line.split(": ")[0]) for line in lines[:3]] == [
        f"{broken}:N township.order_prefix", f"{broken}:N staff[3].phone", f"{broken}:N duty[2].staff"]
    assert lines[0].startswith(f"{broken}:6 ") and lines[3] == "共 3 处错误,未写入任何内容。"
    assert not await models.Department.exists() and not await models.Township.exists()


async def test_invitations_refuse_clearly(database_url, orm):
    assert sidan(database_url, "township", "apply", XINAN).returncode == 0
    missing = sidan(database_url, "staff", "invite", "无此人")
    assert missing.returncode == 2 and "没有这名工作人员:无此人" in missing.stderr
    await models.Staff.filter(name="陈民政").update(active=False)
    retired = sidan(database_url, "staff", "invite", "陈民政")
    assert retired.returncode == 2 and "已停用" in retired.stderr
    by_id = sidan(database_url, "staff", "invite", str((await models.Staff.get(name="周镇长")).id))
    assert by_id.returncode == 0 and "管理员 周镇长" in by_id.stdout and "已绑定微信" in by_id.stdout
    assert await models.Invitation.all().count() == 1
    # a member of a grid the township deactivated takes no invitation (the admin API refuses the same)
    grid_worker = await models.Staff.filter(role="grid_worker", active=True).prefetch_related("grid").first()
    await models.Grid.filter(id=grid_worker.grid_id).update(active=False)
    parked = sidan(database_url, "staff", "invite", grid_worker.name)
    assert parked.returncode == 2 and f"网格 {grid_worker.grid.code}" in parked.stderr and "已停用" in parked.stderr
    assert await models.Invitation.all().count() == 1
