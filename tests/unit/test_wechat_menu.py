"""The official account's menu as data: the shipped file, WeChat's rules and the bot's keys, the public address."""
from __future__ import annotations

import pytest

from bot.wechat_menu import BOT_KEYS, MENU_PATH, MenuError, load_menu, loopback_links

PUBLIC = "https://sidan.example.gov.cn"


def test_the_shipped_menu_offers_report_my_orders_rating_and_the_workbench():
    menu = load_menu(MENU_PATH, public_url=PUBLIC)
    buttons = menu["button"]
    assert [button["name"] for button in buttons] == ["点单", "我的工单", "更多"]
    flat = [sub for button in buttons for sub in [button, *button.get("sub_button", [])]]
    keys = {button["key"] for button in flat if button.get("type") == "click"}
    assert keys == {"REPORT", "MY_ORDERS", "RATE", "HELP"} and keys <= set(BOT_KEYS)
    [workbench] = [button for button in flat if button.get("type") == "view"]
    assert workbench == {"type": "view", "name": "工作台", "url": f"{PUBLIC}/m/"}
    assert loopback_links(menu) == []
    assert loopback_links(load_menu(MENU_PATH, public_url="http://127.0.0.1:8000")) == ["http://127.0.0.1:8000/m/"]


def test_every_problem_of_a_menu_file_is_named_at_once(tmp_path):
    path = tmp_path / "menu.toml"
    path.write_text('''
[[button]]
name = "点单"
type = "click"
key = "REPORT_PROBLEM"

[[button]]
name = "我的全部工单列表"
type = "click"
key = "MY_ORDERS"

[[button]]
name = "更多"
  [[button.sub_button]]
  name = "网页"
  type = "view"
  url = "ftp://example.com/"
  [[button.sub_button]]
  name = "小程序"
  type = "miniprogram"
''', encoding="utf-8")
    with pytest.raises(MenuError) as error:
        load_menu(path, public_url=PUBLIC)
    problems = error.value.problems
    assert len(problems) == 4
    assert "button[1].key: 机器人不认识 'REPORT_PROBLEM'" in problems[0]
    assert "button[2].name: 名称应为 1–16 字节" in problems[1]
    assert "button[3].sub_button[1].url" in problems[2]
    assert "button[3].sub_button[2].type: 应为 click 或 view" in problems[3]


def test_more_than_three_buttons_or_five_sub_buttons_are_refused(tmp_path):
    path = tmp_path / "menu.toml"
    path.write_text("".join(f'[[button]]\nname = "键{i}"\ntype = "click"\nkey = "HELP"\n' for i in range(4)),
                    encoding="utf-8")
    with pytest.raises(MenuError, match=r"需要 1–3 个 \[\[button\]\]"):
        load_menu(path, public_url=PUBLIC)
    subs = "".join(f'  [[button.sub_button]]\n  name = "子{i}"\n  type = "click"\n  key = "HELP"\n' for i in range(6))
    path.write_text(f'[[button]]\nname = "更多"\n{subs}', encoding="utf-8")
    with pytest.raises(MenuError, match=r"button\[1\].sub_button: 需要 1–5 个子菜单"):
        load_menu(path, public_url=PUBLIC)
    with pytest.raises(MenuError, match="文件不存在"):
        load_menu(tmp_path / "missing.toml", public_url=PUBLIC)


def test_the_dry_run_shows_the_workbench_entry_with_the_public_address(monkeypatch, capsys):
    import json

    from api.cli import main

    monkeypatch.setenv("SIDAN_ENV", "test")
    monkeypatch.setenv("SIDAN_APP_PUBLIC_URL", PUBLIC)
    assert main(["wechat", "menu", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    entries = [sub for button in printed["button"] for sub in button.get("sub_button", [])]
    assert {"type": "view", "name": "工作台", "url": f"{PUBLIC}/m/"} in entries
