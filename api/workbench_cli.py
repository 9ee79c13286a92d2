"""`sidan workbench-link`: the workbench signed in as a staff member, for trying it on this machine (`make run`).

In WeChat the workbench signs in through the official account's web authorisation, and on a PC by scanning its QR
code with a bound phone; neither works against a development server no phone can reach. This prints the link the
authorisation would end on (tokens in the fragment). Development and test only: production refuses."""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Callable
from urllib.parse import urlencode


def cmd_workbench_link(args: argparse.Namespace) -> int:
    from api.auth import issue_tokens
    from api.cli import _settings
    from orders import db, models

    settings = _settings()
    if settings.is_production:
        print("错误: 生产环境不发放登录链接:请在公众号菜单里打开工作台,电脑上扫码登录", file=sys.stderr)
        return 2

    async def staff_member():
        await db.init_db(settings.database.url)
        try:
            if args.openid:
                return await models.Staff.filter(openid=args.openid, active=True).first() or \
                    await models.Staff.filter(oa_openid=args.openid, active=True).first()
            return await models.Staff.filter(role="dept_staff", active=True).order_by("id").first()
        finally:
            await db.close_db()

    staff = asyncio.run(staff_member())
    if staff is None:
        who = args.openid or "部门工作人员"
        print(f"错误: 没有在职的 {who}(演示数据: 先运行 sidan demo-data)", file=sys.stderr)
        return 2
    tokens = issue_tokens(settings, staff)
    fragment = urlencode({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
                          "next": "/m/"})
    print(f"{(args.base or settings.app.public_url).rstrip('/')}/m/#/signed-in?{fragment}")
    print(f"({staff.name},{tokens['role']};仅限开发环境)", file=sys.stderr)
    return 0


def add_parsers(sub) -> dict[str, Callable[[argparse.Namespace], int]]:
    link = sub.add_parser("workbench-link", help="development: print a link to the workbench signed in as a staff "
                                                 "member (production refuses)")
    link.add_argument("--openid", help="whose (a staff openid); default: the first active department member")
    link.add_argument("--base", help="the server's base URL; default app.public_url")
    return {"workbench-link": cmd_workbench_link}
