"""`sidan wechat check`: does the WeChat account have what this configuration will use? A token, then each
configured template (official account: survey, notify, staff; mini-program: its subscribe template, when there is
one): found or missing among the account's templates, and the fields the notifier fills (wechat.*_template_fields)
against the {{field.DATA}} placeholders of the template's content.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.wechat_api import WeChatAPIError, WeChatClient, WeChatUnavailable
from orders.config import TEMPLATE_ROLES, Template, WechatSection

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*)\.DATA\s*\}\}")
TEMPLATE_LABELS = {"survey": "办结回访(群众)", "notify": "工单通知(群众)", "staff": "工单通知(工作人员·公众号)",
                   "miniapp_notify": "工单通知(工作人员·小程序订阅消息)"}
APP_LABELS = {"mp": "公众号", "miniapp": "小程序"}
# What WeChat's refusals of the token or the list mean for whoever sets the account up.
ERROR_HINTS = {
    40001: "AppSecret 错误,或 access_token 已失效",
    40013: "AppID 无效:核对 AppID",
    40125: "AppSecret 无效:核对 AppSecret(在公众平台重置后旧的作废)",
    40164: "本机出口 IP 不在 IP 白名单:在“设置与开发 → 基本配置”中加入本服务器的公网 IP",
    40243: "AppSecret 已被冻结:在公众平台解冻或重置",
    41002: "缺少 AppID",
    41004: "缺少 AppSecret",
    48001: "接口未授权:该账号没有这项接口权限(模板消息需要已认证的服务号)",
    89503: "此 IP 调用需要管理员确认",
}


def explain(exc: Exception) -> str:
    if isinstance(exc, WeChatAPIError):
        hint = ERROR_HINTS.get(exc.errcode)
        return f"微信拒绝(errcode {exc.errcode}:{exc.errmsg})" + (f"——{hint}" if hint else "")
    return f"连不上微信接口({exc})"


@dataclass
class TemplateReport:
    template: Template
    title: str | None = None  # the account's name of it; None: not found
    template_fields: list[str] = field(default_factory=list)  # the {{…}} of its content, in order
    missing: list[str] = field(default_factory=list)  # fields the notifier fills, absent from the template
    unfilled: list[str] = field(default_factory=list)  # the template's fields the notifier leaves empty

    @property
    def ok(self) -> bool:
        return self.title is not None and not self.missing


@dataclass
class AccountReport:
    app: str  # "mp" | "miniapp"
    appid: str
    error: str | None = None  # the token or the list was refused: nothing else could be checked
    count: int = 0  # templates the account has
    templates: list[TemplateReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth a look, not wrong

    @property
    def ok(self) -> bool:
        return self.error is None and all(report.ok for report in self.templates)


def compare(template: Template, listed: dict[str, tuple[str, str]]) -> TemplateReport:
    """One configured template against the account's ({id: (title, content)})."""
    if template.id not in listed:
        return TemplateReport(template)
    title, content = listed[template.id]
    present = list(dict.fromkeys(PLACEHOLDER.findall(content)))
    filled = template.fields.values()
    return TemplateReport(template, title, present, missing=[name for name in filled if name not in present],
                          unfilled=[name for name in present if name not in filled])


async def check_account(client: WeChatClient, wechat: WechatSection, app: str) -> AccountReport:
    names = ["survey", "notify", "staff"] if app == "mp" else ["miniapp_notify"]
    report = AccountReport(app, wechat.appid if app == "mp" else wechat.miniapp_appid)
    try:
        await client.access_token(app)
        if app == "mp":
            listed = {item["template_id"]: (item.get("title", ""), item.get("content", ""))
                      for item in await client.private_templates()}
        else:
            listed = {item["priTmplId"]: (item.get("title", ""), item.get("content", ""))
                      for item in await client.subscribe_templates()}
    except (WeChatAPIError, WeChatUnavailable) as exc:
        report.error = explain(exc)
        return report
    report.count = len(listed)
    report.templates = [compare(wechat.template(name), listed) for name in names]
    if app == "miniapp" and not wechat.miniapp_notify_template_id:
        report.notes.append("wechat.miniapp_notify_template_id 未设置:订阅消息沿用 wechat.notify_template_id(公众号的模板"
                            "号,小程序里一般没有)")
    return report


async def check_wechat(client: WeChatClient, wechat: WechatSection) -> list[AccountReport]:
    """The official account, and the mini-program when there is one."""
    apps = ["mp", "miniapp"] if wechat.miniapp_appid else ["mp"]
    return [await check_account(client, wechat, app) for app in apps]


def describe(reports: list[AccountReport]) -> list[str]:
    """The reports as lines for a terminal: ✓ fine, ✗ a problem, ! worth a look."""
    lines = []
    for account in reports:
        head = f"{APP_LABELS[account.app]} {account.appid}"
        if account.error:
            lines.append(f"✗ {head}:取得 access_token 或模板列表失败:{account.error}")
            continue
        lines.append(f"✓ {head}:access_token 正常,账号中有 {account.count} 个模板")
        for report in account.templates:
            template = report.template
            key = f"wechat.{template.name}_template_id"
            name = f"{TEMPLATE_LABELS[template.name]} {template.id}"
            if report.title is None:
                lines.append(f"  ✗ {name}:账号中没有这个模板(检查 {key},或在后台添加模板)")
                continue
            fields = "、".join(f"{role}={field}" for role, field in template.fields.items())
            if report.missing:
                lines.append(f"  ✗ {name}“{report.title}”:模板中没有字段 {'、'.join(report.missing)}"
                             f"(通知填写 {fields};模板的字段是 {'、'.join(report.template_fields) or '无'};"
                             f"在 wechat.{template.name}_template_fields 中改成模板的字段名)")
            else:
                lines.append(f"  ✓ {name}“{report.title}”:字段齐全({fields})")
            if report.unfilled:
                lines.append(f"  ! {name}:模板的字段 {'、'.join(report.unfilled)} 通知不填写,消息里会是空的"
                             f"(可填的内容:{'、'.join(f'{role} {what}' for role, what in TEMPLATE_ROLES.items())})")
        lines.extend(f"  ! {note}" for note in account.notes)
    problems = sum(1 for account in reports if account.error) + sum(
        1 for account in reports for report in account.templates if not report.ok)
    lines.append(f"发现 {problems} 处问题。" if problems else "全部正常。")
    return lines
