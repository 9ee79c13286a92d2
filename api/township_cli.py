"""`sidan township apply`, `sidan staff invite`, `sidan admin create`: a township set up from an empty database."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from orders.clock import SHANGHAI, Clock
from orders.invitations import DEFAULT_INVITATION_HOURS
from orders.township.spec import ROLE_NAMES


def _with_database(work: Callable[[], Awaitable[Any]]) -> Any:
    from api.cli import _settings
    from orders import db

    settings = _settings()

    async def run() -> Any:
        await db.init_db(settings.database.url)
        try:
            return await work()
        finally:
            await db.close_db()

    return asyncio.run(run())


# ------------------------------------------------------------------------------------------ township apply
def cmd_township_apply(args: argparse.Namespace) -> int:
    from orders.township import TownshipFileError, load_township_file
    from orders.township.apply import apply_township

    try:
        spec = load_township_file(args.file)
        result = _with_database(lambda: apply_township(spec, now=Clock().now(), dry_run=args.dry_run))
    except TownshipFileError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        print(f"共 {len(exc.problems)} 处错误,未写入任何内容。", file=sys.stderr)
        return 2
    print(f"{spec.township.name}({args.file})" + (" — 试运行,不写入" if args.dry_run else ""))
    if not result.changed:
        print("没有变化:数据库已与文件一致。")
    for change in result.changes:
        print(f"  {change}")
    if result.changed:
        print(f"{'将有' if args.dry_run else '已写入'} {len(result.changes)} 项变更。")
    if result.overridden:
        print(f"{'将覆盖' if args.dry_run else '已覆盖'}管理员在工作台的 {len(result.overridden)} 处修改(以文件为准):")
        for item in result.overridden:
            print(f"  {item}")
    if result.uninvited:
        print(f"尚未绑定微信的人员 {len(result.uninvited)} 名:{'、'.join(result.uninvited)}"
              f"(逐一发放邀请码:sidan staff invite 姓名)")
    return 0


# ------------------------------------------------------------------------------------------ invitations
def _print_invitation(invitation, staff, as_json: bool) -> None:
    from orders.invitations import bind_payload

    expires = invitation.expires_at.astimezone(SHANGHAI)
    payload = bind_payload(invitation.code)
    if as_json:
        print(json.dumps({"code": invitation.code, "expires_at": expires.isoformat(timespec="seconds"),
                          "staff_id": staff.id, "name": staff.name, "payload": payload}, ensure_ascii=False))
        return
    print(f"邀请码:{invitation.code}")
    print(f"({ROLE_NAMES.get(staff.role, staff.role)} {staff.name},编号 {staff.id};"
          f"{expires:%Y-%m-%d %H:%M} 前有效,只能使用一次)")
    print(f"小程序绑定页(二维码内容):{payload}")
    if staff.openid:
        print("注意:此人已绑定微信,用新邀请码绑定后改为新的微信。")


class _Refused(Exception):
    pass


async def _invite(staff, hours: int):
    from tortoise.transactions import in_transaction

    from orders.invitations import issue_invitation

    from orders.errors import InvalidInput

    try:
        async with in_transaction() as conn:
            return await issue_invitation(staff, now=Clock().now(), hours=hours, conn=conn)
    except InvalidInput as exc:  # a member of a deactivated department or grid
        raise _Refused(exc.message) from None


def cmd_staff_invite(args: argparse.Namespace) -> int:
    """An invitation for a staff member named in the township file (or created over the API), by name or id."""
    from orders import models

    async def work():
        who = args.who.strip()
        query = models.Staff.filter(id=int(who)) if who.isdigit() else models.Staff.filter(name=who)
        found = await query.order_by("id")
        if not found:
            raise _Refused(f"没有这名工作人员:{who}(先在乡镇文件中登记,sidan township apply)")
        active = [person for person in found if person.active]
        if not active:
            raise _Refused(f"工作人员 {who} 已停用")
        if len(active) > 1:
            ids = "、".join(f"{person.id}({ROLE_NAMES.get(person.role, person.role)})" for person in active)
            raise _Refused(f"有 {len(active)} 名在职人员叫 {who}:请用编号,{ids}")
        return await _invite(active[0], args.hours), active[0]

    return _issue(work, args.json)


def cmd_admin_create(args: argparse.Namespace) -> int:
    """The first admin (or another): a staff member with role admin, and their invitation."""
    from orders import models

    async def work():
        name = args.name.strip()
        if not 1 <= len(name) <= 32:
            raise _Refused("姓名应为 1–32 个字")
        admin = await models.Staff.filter(name=name, role="admin", active=True).order_by("id").first()
        if admin is None:
            admin = await models.Staff.create(name=name, role="admin", active=True)
        return await _invite(admin, args.hours), admin

    return _issue(work, args.json)


def _issue(work: Callable[[], Awaitable[Any]], as_json: bool) -> int:
    try:
        invitation, staff = _with_database(work)
    except _Refused as exc:
        print(f"错误: {exc}", file=sys.stderr)
        return 2
    _print_invitation(invitation, staff, as_json)
    return 0


# ------------------------------------------------------------------------------------------ the parsers
def _hours(value: str) -> int:
    hours = int(value)
    if not 1 <= hours <= 720:
        raise argparse.ArgumentTypeError("有效时长应在 1 到 720 小时之间")
    return hours


def add_parsers(sub) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The township's commands on the `sidan` parser; returns their handlers by command."""
    township = sub.add_parser("township", help="a township's own set-up from its file (docs/township.md)")
    township_sub = township.add_subparsers(dest="township_command", required=True)
    apply = township_sub.add_parser("apply", help="check the file, then create or update everything it describes")
    apply.add_argument("file")
    apply.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")

    staff = sub.add_parser("staff", help="staff accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    invite = staff_sub.add_parser("invite", help="an invitation code that binds a staff member's WeChat")
    invite.add_argument("who", metavar="NAME|ID")
    invite.add_argument("--hours", type=_hours, default=DEFAULT_INVITATION_HOURS)
    invite.add_argument("--json", action="store_true", help='one line {"code": …, "expires_at": …}')

    admin = sub.add_parser("admin", help="administrators")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create", help="an admin account and its invitation code (the first admin)")
    create.add_argument("--name", required=True)
    create.add_argument("--hours", type=_hours, default=DEFAULT_INVITATION_HOURS)
    create.add_argument("--json", action="store_true", help='one line {"code": …, "expires_at": …}')
    return {"township": cmd_township_apply, "staff": cmd_staff_invite, "admin": cmd_admin_create}
