"""`sidan stats` and `sidan dashboard-link` in a terminal, on the fixed history (SQLite file)."""
from __future__ import annotations

import re

import pytest

from api.auth import decode
from orders import db
from tests.integration.stats_history import build_history
from tests.support import make_settings, run_sidan as sidan


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
