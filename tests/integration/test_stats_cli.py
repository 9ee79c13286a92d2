"""`sidan stats`, `sidan dashboard-link` and `sidan privacy purge` in a terminal, on the fixed history (SQLite
file)."""
from __future__ import annotations

import re

import pytest
from openpyxl import load_workbook

from api.auth import decode
from orders import db, models
from orders.clock import FrozenClock
from orders.services import Actor, OrderService
from tests.integration.stats_history import at, build_history
from tests.support import PRODUCTION, make_settings, run_sidan as sidan


@pytest.fixture
async def history_file(sqlite_url, fake_classifier):
    """The terminal commands run the same queries as the API (tested on both backends): SQLite is enough."""
    await db.init_db(sqlite_url)
    try:
        await build_history(make_settings(sqlite_url), fake_classifier)
    finally:
        await db.close_db()
    return sqlite_url


async def test_stats_prints_the_rates_with_their_fractions(history_file):
    result = sidan(history_file, "stats", "--period", "2026-03")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "2026 年 3 月" in lines[0]
    assert re.search(r"响应率\s+71\.4%\s+5\s+7", result.stdout)
    assert re.search(r"满意率\s+40\.0%\s+2\s+5", result.stdout)
    assert "受理 8" in result.stdout
    by_department = sidan(history_file, "stats", "--period", "2026-03", "--by", "department",
                          "--department", "weijian")
    assert re.search(r"卫健办\s+1\s+0\s+0\s+100\.0%\s+100\.0%\s+—\s+—", by_department.stdout), by_department.stdout


async def test_stats_refuses_a_bad_period_clearly(history_file):
    result = sidan(history_file, "stats", "--period", "last week")
    assert result.returncode == 2 and "时间段格式不对" in result.stderr and "Traceback" not in result.stderr


async def test_dashboard_link_is_signed_and_expires(history_file):
    settings = make_settings(history_file)
    result = sidan(history_file, "dashboard-link", "--hours", "3")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("http://127.0.0.1:8000/dashboard#token=")
    claims = decode(settings, url.split("#token=", 1)[1], "dashboard")
    assert claims["role"] == "supervisor" and claims["exp"] - claims["iat"] == 3 * 3600
    refused = sidan(history_file, "dashboard-link", "--openid", "demo-grid_worker")
    assert refused.returncode == 2 and "不是督办员或管理员" in refused.stderr


async def test_workbench_link_signs_in_a_staff_member_outside_production_only(history_file):
    settings = make_settings(history_file)
    result = sidan(history_file, "workbench-link", "--openid", "demo-dept_staff-jianshe")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("http://127.0.0.1:8000/m/#/signed-in?access_token=")
    token = url.split("access_token=", 1)[1].split("&", 1)[0]
    assert decode(settings, token, "access")["role"] == "dept_staff"
    unknown = sidan(history_file, "workbench-link", "--openid", "nobody")
    assert unknown.returncode == 2 and "没有在职的 nobody" in unknown.stderr
    production = sidan(history_file, "workbench-link", **PRODUCTION)
    assert production.returncode == 2 and "生产环境不发放登录链接" in production.stderr
    assert "access_token" not in production.stdout


def test_definitions_say_what_is_counted_apart_and_kept_out_of_the_rates(sqlite_url):
    result = sidan(sqlite_url, "stats", "--definitions")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rates = [line for line in lines if " ÷ " in line]
    assert len(rates) == 6 and all("不含不予受理" in line for line in rates)
    assert any(line.startswith("办结率(completion) = 已办结的工单(不含办结(未解决))") for line in rates)
    invalid = next(line for line in lines if line.startswith("不予受理(invalid)"))
    assert "不进入任何比率的分子和分母" in invalid
    unresolved = next(line for line in lines if line.startswith("办结(未解决)(closed_unresolved)"))
    assert "重办次数用完" in unresolved and "不计入办结" in unresolved


@pytest.fixture
async def with_phone(history_file, fake_classifier):
    """One more March order, cancelled, whose resident left a phone number and an ID card number."""
    await db.init_db(history_file)
    try:
        service = OrderService(make_settings(history_file), fake_classifier, clock=FrozenClock(at(3, 10, 9)))
        number = (await service.submit(openid="resident-P", text="路灯坏了 联系139-1234-5678 身份证110101199003071234")
                  ).order.number
        await service.cancel(number, Actor.of_resident(await models.Resident.get(openid="resident-P")))
    finally:
        await db.close_db()
    return history_file, number


async def test_the_exported_workbook_carries_no_personal_data(with_phone, tmp_path):
    database, number = with_phone
    path = tmp_path / "report.xlsx"
    result = sidan(database, "stats", "--period", "2026-03", "--xlsx", str(path))
    assert result.returncode == 0, result.stderr
    texts = {row[0]: row[-1] for row in load_workbook(path)["工单"].iter_rows(values_only=True)}
    assert texts[number] == "路灯坏了 联系139****5678 身份证1101**********1234"


async def test_privacy_purge_is_off_by_default_and_says_what_it_masks(with_phone):
    database, number = with_phone
    off = sidan(database, "privacy", "purge")
    assert off.returncode == 0 and "未开启" in off.stdout and "purge_after_days = 0" in off.stdout
    # March 2026 is long past on this machine's clock: with 30 days every closed order of the history goes.
    dry = sidan(database, "privacy", "purge", "--dry-run", SIDAN_PRIVACY_PURGE_AFTER_DAYS="30")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert [line for line in lines if line.startswith(number)] == [
        line for line in lines if "诉求内容" in line]  # only that order held personal data
    assert "试运行" in lines[-1] and "将清除 1 张工单" in lines[-1]
    assert "13912345678" not in dry.stdout and "139-1234-5678" not in dry.stdout  # the report names no number
    done = sidan(database, "privacy", "purge", SIDAN_PRIVACY_PURGE_AFTER_DAYS="30")
    assert done.returncode == 0 and "已清除 1 张工单" in done.stdout, done.stdout
    again = sidan(database, "privacy", "purge", SIDAN_PRIVACY_PURGE_AFTER_DAYS="30")
    assert "已清除 0 张工单的个人信息(已关闭超过 30 天的工单共 0 张)" in again.stdout
    bad = sidan(database, "privacy", "purge", SIDAN_PRIVACY_PURGE_AFTER_DAYS="-1")
    assert bad.returncode != 0 and "privacy.purge_after_days" in bad.stderr
