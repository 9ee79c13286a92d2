"""`sidan wechat menu` and `sidan wechat check` against the fake WeChat API on loopback, as a township's IT person
runs them before announcing the account."""
from __future__ import annotations

import json
import os

import pytest

from api.cli import main
from bot.wechat_menu import MENU_PATH, load_menu
from tests.fake_wechat import FakeWeChat

PUBLIC = "https://sidan.example.gov.cn"
# Today's templates name their fields (thing1, time2…); the account's ids and field names, as an operator sets them.
ACCOUNT = {
    "SIDAN_WECHAT_SURVEY_TEMPLATE_ID": "tmpl-survey",
    "SIDAN_WECHAT_SURVEY_TEMPLATE_FIELDS": "title=thing1,number=character_string2,detail=thing3,time=time4",
    "SIDAN_WECHAT_NOTIFY_TEMPLATE_ID": "tmpl-notify",
    "SIDAN_WECHAT_NOTIFY_TEMPLATE_FIELDS": "number=character_string1,title=thing2,detail=thing3,time=time4",
    "SIDAN_WECHAT_STAFF_TEMPLATE_ID": "tmpl-staff",
    "SIDAN_WECHAT_MINIAPP_NOTIFY_TEMPLATE_ID": "tmpl-subscribe",
}
SURVEY = FakeWeChat.template("tmpl-survey", "服务评价提醒", "thing1", "character_string2", "thing3", "time4")
NOTIFY = FakeWeChat.template("tmpl-notify", "工单进度通知", "character_string1", "thing2", "thing3", "time4")
STAFF = FakeWeChat.template("tmpl-staff", "工单待办提醒", "character_string1", "thing2", "thing3", "time4")
SUBSCRIBE = FakeWeChat.template("tmpl-subscribe", "工单提醒", "character_string1", "thing2", "thing3", "time4",
                                key="priTmplId")


@pytest.fixture
def terminal(monkeypatch, fake_wechat):
    """The operator's shell: SIDAN_* of the account, WeChat's API at the fake; `terminal(*args)` runs `sidan wechat
    ARGS` and gives its exit status (its output: capsys)."""
    for name in [name for name in os.environ if name.startswith("SIDAN_")]:
        monkeypatch.delenv(name)
    for name, value in {"SIDAN_ENV": "test", "SIDAN_WECHAT_API_BASE": fake_wechat.base_url,
                        "SIDAN_APP_PUBLIC_URL": PUBLIC, **ACCOUNT}.items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> int:
        return main(["wechat", *args])

    return run


def test_dry_run_prints_the_menu_and_calls_nothing(terminal, fake_wechat, capsys):
    assert terminal("menu", "--dry-run") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == load_menu(MENU_PATH, public_url=PUBLIC)
    assert printed["button"][2]["sub_button"][2]["url"] == f"{PUBLIC}/m/"
    assert fake_wechat.received == [] and fake_wechat.token_issued == 0


def test_the_menu_is_pushed_with_menu_create(terminal, fake_wechat, capsys):
    assert terminal("menu") == 0
    out = capsys.readouterr().out
    assert "菜单已更新:点单 · 我的工单 · 更多(评价、使用帮助、工作台)" in out
    [pushed] = fake_wechat.messages("/cgi-bin/menu/create")
    assert pushed.body == load_menu(MENU_PATH, public_url=PUBLIC)
    assert pushed.query["access_token"] == fake_wechat.current_token


def test_a_menu_linking_to_this_machine_is_not_pushed(terminal, fake_wechat, capsys, monkeypatch):
    monkeypatch.setenv("SIDAN_APP_PUBLIC_URL", "http://127.0.0.1:8000")
    assert terminal("menu") == 2
    assert "SIDAN_APP_PUBLIC_URL" in capsys.readouterr().err
    assert fake_wechat.received == [] and fake_wechat.token_issued == 0


def test_a_refused_token_leaves_the_menu_as_it_was_and_says_why(terminal, fake_wechat, capsys):
    fake_wechat.refuse_token(40164, "invalid ip 203.0.113.7, not in whitelist")
    assert terminal("menu") == 1
    err = capsys.readouterr().err
    assert "菜单未更新" in err and "errcode 40164" in err and "IP 白名单" in err
    assert fake_wechat.messages("/cgi-bin/menu/create") == []


def test_check_passes_when_every_template_is_there_with_its_fields(terminal, fake_wechat, capsys):
    fake_wechat.templates = [SURVEY, NOTIFY, STAFF]
    fake_wechat.subscribe_templates = [SUBSCRIBE]
    assert terminal("check") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✓ 公众号 wx0000000000000000:access_token 正常,账号中有 3 个模板"
    assert out[1].startswith("  ✓ 办结回访(群众) tmpl-survey“服务评价提醒”:字段齐全(title=thing1、")
    assert sum(line.startswith("  ✓ ") for line in out) == 4 and out[-1] == "全部正常。"
    assert "✓ 小程序 wx1111111111111111:access_token 正常,账号中有 1 个模板" in out
    listed = [r.path for r in fake_wechat.received if r.path != "/cgi-bin/token"]
    assert listed == ["/cgi-bin/template/get_all_private_template", "/wxaapi/newtmpl/gettemplate"]


def test_check_names_a_missing_template_and_a_template_without_a_field(terminal, fake_wechat, capsys):
    lacking = FakeWeChat.template("tmpl-notify", "工单进度通知", "character_string1", "thing2", "time4", "thing5")
    fake_wechat.templates = [SURVEY, lacking]  # no staff template
    fake_wechat.subscribe_templates = [SUBSCRIBE]
    assert terminal("check") == 1
    out = capsys.readouterr().out
    assert ("  ✗ 工单通知(群众) tmpl-notify“工单进度通知”:模板中没有字段 thing3(通知填写 number=character_string1、"
            "title=thing2、detail=thing3、time=time4;模板的字段是 character_string1、thing2、time4、thing5;"
            "在 wechat.notify_template_fields 中改成模板的字段名)") in out
    assert "  ! 工单通知(群众) tmpl-notify:模板的字段 thing5 通知不填写,消息里会是空的" in out
    assert "  ✗ 工单通知(工作人员·公众号) tmpl-staff:账号中没有这个模板(检查 wechat.staff_template_id" in out
    assert out.rstrip().endswith("发现 2 处问题。")


def test_todays_defaults_against_a_template_with_named_keys_fail_the_check(terminal, fake_wechat, capsys,
                                                                          monkeypatch):
    """The classic first/keyword1/remark fields of the defaults are not in a template added today."""
    monkeypatch.delenv("SIDAN_WECHAT_SURVEY_TEMPLATE_FIELDS")
    fake_wechat.templates = [SURVEY, NOTIFY, STAFF]
    fake_wechat.subscribe_templates = [SUBSCRIBE]
    assert terminal("check") == 1
    assert "模板中没有字段 first、keyword1、keyword2、keyword3、remark" in capsys.readouterr().out


def test_a_refused_token_is_reported_and_nothing_else_is_asked(terminal, fake_wechat, capsys, monkeypatch):
    monkeypatch.setenv("SIDAN_WECHAT_MINIAPP_APPID", "")
    fake_wechat.refuse_token(40125, "invalid appsecret")
    assert terminal("check") == 1
    out = capsys.readouterr().out
    assert "✗ 公众号 wx0000000000000000:取得 access_token 或模板列表失败:微信拒绝(errcode 40125:invalid appsecret)" in out
    assert "AppSecret 无效" in out and "发现 1 处问题。" in out and "小程序" not in out
    assert fake_wechat.received == []


def test_with_the_development_secret_nothing_is_called(terminal, fake_wechat, capsys, monkeypatch):
    monkeypatch.setenv("SIDAN_ENV", "development")
    assert terminal("check") == 2 and terminal("menu") == 2
    assert "SIDAN_WECHAT_APP_SECRET" in capsys.readouterr().err
    assert fake_wechat.received == [] and fake_wechat.token_issued == 0
