"""`sidan wechat menu [--dry-run]` and `sidan wechat check`: the official account set up from this configuration
(docs/wechat-setup.md). Both call WeChat through the runtime client (bot.wechat_api) and its shared token cache."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any


def _with_client(work: Callable[[Any], Awaitable[Any]], settings) -> Any:
    """`work(client)` with the WeChat client the servers use: in production its token comes from (and goes to) the
    shared store, so a command does not replace the token the running servers hold."""
    from api import resources

    async def run() -> Any:
        store = resources.start_store(settings)
        client = resources.start_wechat_client(settings, store)
        try:
            return await work(client)
        finally:
            await client.close()
            await store.close()

    return asyncio.run(run())


def _refuse_development_secret(settings) -> bool:
    if settings.sends_wechat:
        return False
    print("错误: wechat.app_secret 还是开发用的值,不能调用微信接口;请设置 SIDAN_WECHAT_APP_SECRET(以及 "
          "SIDAN_WECHAT_APPID)", file=sys.stderr)
    return True


def cmd_wechat_menu(args: argparse.Namespace) -> int:
    """The custom menu from its file: printed (--dry-run) or pushed with cgi-bin/menu/create."""
    from api.cli import _settings
    from bot.wechat_check import explain
    from bot.wechat_menu import MENU_PATH, MenuError, load_menu, loopback_links
    from bot.wechat_api import WeChatAPIError, WeChatUnavailable

    settings = _settings()
    try:
        menu = load_menu(args.file or MENU_PATH, public_url=settings.app.public_url)
    except MenuError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    local = loopback_links(menu)
    if args.dry_run:
        print(json.dumps(menu, ensure_ascii=False, indent=2))
        if local:
            print(f"注意: 链接 {'、'.join(local)} 指向本机,手机打不开;推送前设置 SIDAN_APP_PUBLIC_URL", file=sys.stderr)
        return 0
    if local:
        print(f"错误: 链接 {'、'.join(local)} 指向本机(app.public_url = {settings.app.public_url}),手机打不开;"
              "请把 SIDAN_APP_PUBLIC_URL 设为本系统的公网地址,如 https://sidan.example.gov.cn", file=sys.stderr)
        return 2
    if _refuse_development_secret(settings):
        return 2
    try:
        _with_client(lambda client: client.create_menu(menu), settings)
    except (WeChatAPIError, WeChatUnavailable) as exc:
        print(f"错误: 菜单未更新:{explain(exc)}", file=sys.stderr)
        return 1
    names = " · ".join(button["name"] + (f"({'、'.join(sub['name'] for sub in button['sub_button'])})"
                                         if "sub_button" in button else "") for button in menu["button"])
    print(f"菜单已更新:{names}\n(关注者最迟约 5 分钟后看到新菜单;重新进入公众号即可刷新)")
    return 0


def cmd_wechat_check(args: argparse.Namespace) -> int:
    """A token, then the configured templates against the account's: 0 when all is well, 1 on any problem."""
    from api.cli import _settings
    from bot.wechat_check import check_wechat, describe

    settings = _settings()
    if _refuse_development_secret(settings):
        return 2
    reports = _with_client(lambda client: check_wechat(client, settings.wechat), settings)
    print("\n".join(describe(reports)))
    return 0 if all(report.ok for report in reports) else 1


def add_parsers(sub) -> dict[str, Callable[[argparse.Namespace], int]]:
    """`sidan wechat …` on the `sidan` parser; returns its handler."""
    wechat = sub.add_parser("wechat", help="the official account: its menu, and a check of its templates")
    wechat_sub = wechat.add_subparsers(dest="wechat_command", required=True)
    menu = wechat_sub.add_parser("menu", help="push the custom menu (corpus/wechat-menu.toml) to the account")
    menu.add_argument("--dry-run", action="store_true", help="print the menu's JSON, call nothing")
    menu.add_argument("--file", help="another menu file (default corpus/wechat-menu.toml)")
    wechat_sub.add_parser("check", help="a token, then each configured template: found, with the fields filled")
    handlers = {"menu": cmd_wechat_menu, "check": cmd_wechat_check}
    return {"wechat": lambda args: handlers[args.wechat_command](args)}
