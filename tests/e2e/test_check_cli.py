"""`sidan check` in a terminal of its own, as an operator runs it before go-live: one Chinese line per missing piece
with what to do and exit 1, or "可以服务群众" and exit 0; notes ("注意:…") never change the exit status."""
from __future__ import annotations

import pytest

from orders import models
from orders.township import load_township_file
from orders.township.apply import apply_township
from tests.e2e.test_readyz import migrate_up_to
from tests.fake_wechat import FakeWeChat
from tests.integration.test_wechat_bot import START
from tests.support import PRODUCTION, REPO, free_port, run_sidan

TEMPLATES = {"SIDAN_WECHAT_SURVEY_TEMPLATE_ID": "tpl-survey", "SIDAN_WECHAT_NOTIFY_TEMPLATE_ID": "tpl-notify"}
XINAN = REPO / "tests" / "data" / "xinan-township.toml"


@pytest.fixture
def wechat():
    fake = FakeWeChat().start()
    yield fake
    fake.stop()


def check(database_url: str, **env: str):
    return run_sidan(database_url, "check", **env)


def problems(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if not line.startswith("注意:")]


def notes(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("注意:")]


async def test_a_fresh_database_cannot_serve_and_says_what_to_do(database_url, tmp_path):
    result = check(database_url, SIDAN_CLASSIFIER_MODEL_PATH=str(tmp_path / "none.pkl"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert problems(result) == [
        "还没有乡镇数据:没有在用的部门,也没有网格员。运行 sidan township apply 乡镇文件.toml(写法见 docs/township.md)",
        f"分类模型不可用({tmp_path / 'none.pkl'} 不存在):运行 sidan classify train 训练(make model)",
    ]
    assert notes(result) == ["注意:用的是开发用的微信凭据:通知和回访不发出,留在待发队列。上线前设置 "
                             "SIDAN_WECHAT_APP_SECRET 等(见 README 的 Production)"]
    assert "共 2 处问题" in result.stderr


async def test_a_township_with_everyone_bound_can_serve_in_production(database_url, orm, wechat, quick_model):
    env = {**PRODUCTION, **TEMPLATES, "SIDAN_WECHAT_API_BASE": wechat.base_url,
           "SIDAN_CLASSIFIER_MODEL_PATH": str(quick_model)}
    await apply_township(load_township_file(XINAN), now=START)
    unbound = check(database_url, **env)
    assert unbound.returncode == 1
    assert [line.split(":")[0] for line in problems(unbound)] == [
        "网格 XA-02 的网格员 钱网格 还没绑定微信,收不到待派的工单", "网格 XA-03 的网格员 孙网格 还没绑定微信,收不到待派的工单",
        "督办员 吴主任 还没绑定微信"]

    for name, openid in (("钱网格", "xa-grid-02"), ("孙网格", "xa-grid-03"), ("吴主任", "xa-supervisor")):
        await models.Staff.filter(name=name).update(openid=openid)
    ready = check(database_url, **env)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert problems(ready) == ["可以服务群众"]
    assert "注意:部门 anjian 应急办 没有绑定微信的工作人员:派到这里的工单没人收到通知,超时后升级督办" in notes(ready)
    asked = {request.query["appid"] for request in wechat.received if request.path == "/cgi-bin/token"}
    assert asked == {PRODUCTION["SIDAN_WECHAT_APPID"], PRODUCTION["SIDAN_WECHAT_MINIAPP_APPID"]}

    # WeChat not reachable from this terminal: the credentials could not be checked; that alone fails nothing
    away = check(database_url, **{**env, "SIDAN_WECHAT_API_BASE": f"http://127.0.0.1:{free_port()}"})
    assert away.returncode == 0 and problems(away) == ["可以服务群众"]
    assert any(line.startswith("注意:连不上微信接口 http://127.0.0.1:") for line in notes(away))

    wechat.refuse_credentials(40125, "invalid appsecret")
    refused = check(database_url, **env)
    assert refused.returncode == 1
    assert problems(refused) == [
        "微信拒绝了公众号的凭据(40125 invalid appsecret):核对 SIDAN_WECHAT_APPID 和 SIDAN_WECHAT_APP_SECRET,"
        "并在微信后台把服务器的 IP 加入白名单",
        "微信拒绝了小程序的凭据(40125 invalid appsecret):核对 SIDAN_WECHAT_MINIAPP_APPID 和 "
        "SIDAN_WECHAT_MINIAPP_SECRET,并在微信后台把服务器的 IP 加入白名单"]


async def test_production_lists_development_secrets_and_unset_templates_instead_of_refusing(database_url, orm,
                                                                                          quick_model):
    await apply_township(load_township_file(XINAN), now=START)
    env = {**PRODUCTION, "SIDAN_AUTH_JWT_SECRET": "sidan-dev-jwt-secret-change-me-in-production",
           "SIDAN_CLASSIFIER_MODEL_PATH": str(quick_model)}
    result = check(database_url, **env)
    assert result.returncode == 1
    lines = problems(result)
    assert any(line.startswith("生产环境拒绝启动:") and "SIDAN_AUTH_JWT_SECRET" in line for line in lines)
    assert sum("SIDAN_WECHAT_SURVEY_TEMPLATE_ID" in line or "SIDAN_WECHAT_NOTIFY_TEMPLATE_ID" in line
               for line in lines) == 2
    assert "配置错误" not in result.stdout + result.stderr  # listed, not refused


async def test_a_database_behind_its_migrations_says_to_migrate(tmp_path):
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    await migrate_up_to(url, "0003_outbox_claim")
    result = check(url, SIDAN_CLASSIFIER_MODEL_PATH=str(tmp_path / "none.pkl"))
    assert result.returncode == 1
    assert problems(result)[0].startswith("数据库缺少 ") and "请运行 `sidan migrate`" in problems(result)[0]


async def test_a_database_that_does_not_answer_is_one_line(tmp_path):
    result = check(f"postgres://postgres@127.0.0.1:{free_port()}/sidan_away",
                   SIDAN_CLASSIFIER_MODEL_PATH=str(tmp_path / "none.pkl"))
    assert result.returncode == 1
    assert problems(result)[0].startswith("数据库连不上(") and "SIDAN_DATABASE_URL" in problems(result)[0]
