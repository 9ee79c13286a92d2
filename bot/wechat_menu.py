"""The official account's custom menu as data (corpus/wechat-menu.toml): read, checked against WeChat's rules and
the keys the bot answers (bot.conversation's click events), its links filled from app.public_url, then pushed with
cgi-bin/menu/create by `sidan wechat menu`.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from orders.config import REPO_ROOT

MENU_PATH = REPO_ROOT / "corpus" / "wechat-menu.toml"
# The click keys bot.conversation answers (any other key gets the help text, so a typo would go unnoticed).
BOT_KEYS = {"REPORT": "怎样反映问题", "MY_ORDERS": "我的工单", "RATE": "待评价的工单", "HELP": "使用帮助"}
MAX_BUTTONS, MAX_SUB_BUTTONS = 3, 5
# WeChat counts a name's bytes: 16 for a button (5 汉字), 60 for one of its sub-buttons
NAME_BYTES = {"button": 16, "sub_button": 60}
MAX_URL_BYTES = 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0", "::1")


class MenuError(Exception):
    """The menu file is not one WeChat would take or the bot could answer; each problem names its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_menu(path: Path | str = MENU_PATH, *, public_url: str) -> dict[str, Any]:
    """The menu as WeChat wants it ({"button": […]}), every problem of the file raised at once."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MenuError([f"{path}: 文件不存在"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise MenuError([f"{path}: 不是有效的 TOML:{exc}"]) from None
    problems: list[str] = []
    buttons = data.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        raise MenuError([f"{path}: 需要 1–{MAX_BUTTONS} 个 [[button]]"])
    menu = {"button": [_button(button, f"button[{i}]", "button", public_url, problems)
                       for i, button in enumerate(buttons, 1)]}
    if problems:
        raise MenuError([f"{path} {problem}" for problem in problems])
    return menu


def _button(button: Any, where: str, level: str, public_url: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(button, dict):
        problems.append(f"{where}: 应是一个表")
        return {}
    name = str(button.get("name") or "")
    if not name or len(name.encode("utf-8")) > NAME_BYTES[level]:
        problems.append(f"{where}.name: 名称应为 1–{NAME_BYTES[level]} 字节(约 {NAME_BYTES[level] // 3} 个汉字)")
    subs = button.get("sub_button")
    if subs is not None:
        if level == "sub_button":
            problems.append(f"{where}.sub_button: 子菜单不能再有子菜单")
            return {}
        if not isinstance(subs, list) or not 1 <= len(subs) <= MAX_SUB_BUTTONS:
            problems.append(f"{where}.sub_button: 需要 1–{MAX_SUB_BUTTONS} 个子菜单")
            return {"name": name}
        return {"name": name, "sub_button": [_button(sub, f"{where}.sub_button[{i}]", "sub_button", public_url,
                                                     problems) for i, sub in enumerate(subs, 1)]}
    kind = button.get("type")
    if kind == "click":
        key = button.get("key")
        if key not in BOT_KEYS:
            problems.append(f"{where}.key: 机器人不认识 {key!r}(可用:{'、'.join(BOT_KEYS)})")
        return {"type": "click", "name": name, "key": key}
    if kind == "view":
        url = str(button.get("url") or "").replace("{public_url}", public_url)
        if urlparse(url).scheme not in ("http", "https") or len(url.encode("utf-8")) > MAX_URL_BYTES:
            problems.append(f"{where}.url: 应是 http(s) 网址,不超过 {MAX_URL_BYTES} 字节")
        return {"type": "view", "name": name, "url": url}
    problems.append(f"{where}.type: 应为 click 或 view(或用 sub_button 组成子菜单)")
    return {"name": name}


def loopback_links(menu: dict[str, Any]) -> list[str]:
    """Links only this machine can open (app.public_url left at its development value): useless on a phone."""
    buttons = [sub for button in menu["button"] for sub in [button, *button.get("sub_button", [])]]
    return [button["url"] for button in buttons
            if button.get("type") == "view" and urlparse(button["url"]).hostname in LOOPBACK_HOSTS]
