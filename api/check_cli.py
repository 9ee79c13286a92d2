"""`sidan check`: can this deployment serve residents? One Chinese line per problem, saying what to do, and exit 1;
"可以服务群众" and exit 0 when nothing is missing. Notes (worth knowing, not missing) are printed as "注意:…" lines and
do not change the exit status.

The findings are orders.readiness's, the same /readyz reads, plus what only a terminal can afford: loading the
routing model, and asking WeChat for an access token (refused: a problem; WeChat unreachable from here: a note).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from orders.config import ConfigError, Settings, load_settings
from orders.readiness import Finding, Severity, database_unavailable, findings, routing_model_missing

READY = "可以服务群众"
WECHAT_APPS = {  # the access token of each: its label, the variables that set its credentials
    "mp": ("公众号", "SIDAN_WECHAT_APPID", "SIDAN_WECHAT_APP_SECRET"),
    "miniapp": ("小程序", "SIDAN_WECHAT_MINIAPP_APPID", "SIDAN_WECHAT_MINIAPP_SECRET"),
}


def routing_model_findings(settings: Settings) -> list[Finding]:
    path = settings.model_path()
    if not path.exists():
        return [routing_model_missing(f"{path} 不存在")]
    try:
        from classifiers import Router

        Router.load(path)
    except Exception as exc:  # noqa: BLE001 - whatever stops it loading stops the server starting
        return [routing_model_missing(f"{path} 读不出来:{type(exc).__name__}")]
    return []


async def wechat_findings(settings: Settings) -> list[Finding]:
    """Ask WeChat for each access token through the bot's own client and the deployment's store (a token the servers
    cached is reused, one fetched here is cached for them, so the check does not replace theirs)."""
    if not settings.sends_wechat or not settings.wechat.app_secret:
        return []  # development credentials send nothing; an empty secret is a configuration finding already
    from api import resources
    from bot.wechat_api import WeChatAPIError, WeChatClient, WeChatUnavailable

    apps = ["mp", "miniapp"] if settings.wechat.miniapp_appid else ["mp"]
    store = resources.start_store(settings)
    client = WeChatClient(settings, store)
    found = []
    try:
        for app in apps:
            label, appid_variable, secret_variable = WECHAT_APPS[app]
            try:
                await client.access_token(app)
            except WeChatAPIError as exc:
                found.append(Finding("wechat_credentials_refused",
                                     f"微信拒绝了{label}的凭据({exc.errcode} {exc.errmsg}):核对 {appid_variable} 和 "
                                     f"{secret_variable},并在微信后台把服务器的 IP 加入白名单", Severity.GAP))
            except WeChatUnavailable as exc:
                found.append(Finding("wechat_unreachable", f"连不上微信接口 {settings.wechat.api_base}({exc}):"
                                                           f"没能核对{label}的凭据", Severity.NOTE))
                break  # the other app's token goes to the same server
    finally:
        await client.close()
        await store.close()
    return found


async def deployment_findings(settings: Settings) -> list[Finding]:
    from orders import db
    from orders.taxonomy import load_taxonomy

    await db.init_db(settings.database.url)
    try:
        try:
            await db.ping()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
            return [database_unavailable(exc)]
        return await findings(settings, load_taxonomy())
    finally:
        await db.close_db()


def cmd_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(refuse_production_problems=False)
    except ConfigError as exc:
        print(f"配置错误:{exc}")
        return 1

    async def run() -> list[Finding]:
        return (await deployment_findings(settings)) + routing_model_findings(settings) \
            + await wechat_findings(settings)

    found = asyncio.run(run())
    problems = sorted((finding for finding in found if finding.is_problem),
                      key=lambda finding: finding.severity is not Severity.OUTAGE)
    for finding in problems:
        print(finding.message)
    for finding in found:
        if not finding.is_problem:
            print(f"注意:{finding.message}")
    if problems:
        print(f"共 {len(problems)} 处问题,还不能完全服务群众。", file=sys.stderr)
        return 1
    print(READY)
    return 0


def add_parser(sub) -> dict[str, Callable[[argparse.Namespace], int]]:
    sub.add_parser("check", help="can this deployment serve residents? one line per problem (exit 1), "
                                 "or 可以服务群众 (exit 0)")
    return {"check": cmd_check}
