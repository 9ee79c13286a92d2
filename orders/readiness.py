"""Ready or not: what this deployment lacks to serve residents. One list, read by `sidan check` (every finding on a
line, exit 1 on any problem) and by /readyz (503 only for an outage), so the two never disagree.

How bad a finding is decides what an operator's load balancer should do about it:
- OUTAGE: no resident can be served: the schema is behind (`sidan migrate`), no township at all (no department and no
  grid worker), the database does not answer. /readyz answers 503; `sidan check` fails.
- GAP: some residents or some orders are not served: a grid without a grid worker, a category no department takes,
  nobody to hear of an urgent report, WeChat credentials or template ids missing in production. `sidan check` fails;
  /readyz stays 200 and lists it under warnings: one grid's missing worker must not take every resident's service
  out of the load balancer.
- NOTE: worth knowing, serves anyway (a department nobody has bound yet, WeChat not reachable from the terminal).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orders import db, models
from orders.config import DEV_SECRETS, Settings, env_name
from orders.production import production_problems
from orders.lifecycle import Role
from orders.taxonomy import Taxonomy

TEMPLATE_PLACEHOLDERS = {"survey_template_id": "SURVEY_TEMPLATE", "notify_template_id": "NOTIFY_TEMPLATE"}
TEMPLATE_USES = {"survey_template_id": "48 小时后才办结的工单发不出回访",
                 "notify_template_id": "工作人员收不到新工单和急难事的订阅消息,48 小时外的群众收不到进展通知"}
APPLY = "sidan township apply"


class Severity(StrEnum):
    OUTAGE = "outage"
    GAP = "gap"
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    code: str  # short, English: for dashboards and alerts
    message: str  # Chinese, for the operator: what is missing and what to do
    severity: Severity

    @property
    def is_problem(self) -> bool:
        """`sidan check` fails on it."""
        return self.severity is not Severity.NOTE

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def database_unavailable(error: BaseException) -> Finding:
    return Finding("database_unavailable", f"数据库连不上({type(error).__name__}),请检查数据库服务和 SIDAN_DATABASE_URL",
                   Severity.OUTAGE)


def migrations_pending(pending: list[str]) -> Finding:
    return Finding("migrations_pending", f"数据库缺少 {len(pending)} 个迁移({', '.join(pending)}),请运行 `sidan migrate`",
                   Severity.OUTAGE)


def routing_model_missing(detail: str) -> Finding:
    return Finding("routing_model_missing", f"分类模型不可用({detail}):运行 sidan classify train 训练(make model)",
                   Severity.OUTAGE)


async def findings(settings: Settings, taxonomy: Taxonomy) -> list[Finding]:
    """Everything the configuration and the database say (the database open): the township is read only once the
    schema is up to date."""
    pending = await db.pending_migrations()
    found = [migrations_pending(pending)] if pending else await township_findings(taxonomy)
    return found + configuration_findings(settings)


def configuration_findings(settings: Settings) -> list[Finding]:
    found = []
    if settings.is_production:
        found += [Finding("production_refuses", f"生产环境拒绝启动:{problem}", Severity.GAP)
                  for problem in production_problems(settings)]
        for key, placeholder in TEMPLATE_PLACEHOLDERS.items():
            value = getattr(settings.wechat, key)
            if value in ("", placeholder):
                found.append(Finding("wechat_template_unset", f"微信模板 ID wechat.{key} 未设置(现为“{value}”):"
                                     f"{TEMPLATE_USES[key]}。在公众号后台添加模板后设置 {env_name('wechat', key)}",
                                     Severity.GAP))
        return found
    if not settings.wechat.app_secret:
        found.append(Finding("wechat_credentials_unset", "公众号 AppSecret 为空:发不出任何通知和回访。设置 "
                                                         "SIDAN_WECHAT_APP_SECRET", Severity.GAP))
    elif settings.wechat.app_secret == DEV_SECRETS[("wechat", "app_secret")] and not settings.sends_wechat:
        found.append(Finding("wechat_development", "用的是开发用的微信凭据:通知和回访不发出,留在待发队列。上线前设置 "
                                                   "SIDAN_WECHAT_APP_SECRET 等(见 README 的 Production)", Severity.NOTE))
    return found


async def township_findings(taxonomy: Taxonomy) -> list[Finding]:
    """What the township's own data lacks: departments for each category, a grid worker for each grid, someone to
    hear of urgent reports. Five small queries."""
    departments = await models.Department.filter(active=True).order_by("id").values("id", "code", "name")
    grids = await models.Grid.filter(active=True).order_by("id").values("id", "code", "name")
    staff = await models.Staff.filter(active=True).order_by("id").values("id", "name", "role", "department_id",
                                                                         "grid_id", "openid", "oa_openid")
    for person in staff:  # reachable on either channel (staff_channels): the mini-program or the official account
        person["bound"] = bool(person["openid"] or person["oa_openid"])
    roster = await models.DutyShift.all().order_by("position", "id").values_list("staff_id", flat=True)
    township = await models.Township.filter(id=1).first()
    grid_workers = [person for person in staff if person["role"] == Role.GRID_WORKER]
    if not departments and not grid_workers:
        return [Finding("township_not_set_up", f"还没有乡镇数据:没有在用的部门,也没有网格员。运行 {APPLY} 乡镇文件.toml"
                                               "(写法见 docs/township.md)", Severity.OUTAGE)]
    return (_category_findings(taxonomy, {row["code"] for row in departments})
            + _grid_findings(grids, grid_workers)
            + _urgent_findings(staff, roster, township)
            + _department_findings(departments, staff))


def _invite(people: list[dict]) -> str:
    return ";".join(f"sidan staff invite {person['name']}" for person in people)


BIND_HOW = "在小程序里用邀请码绑定,或向公众号发送“绑定 邀请码”"


def _category_findings(taxonomy: Taxonomy, active_codes: set[str]) -> list[Finding]:
    found = []
    for category, codes in taxonomy.categories.items():
        if not active_codes.intersection(codes):
            can = "、".join(f"{code} {taxonomy.departments[code].name}" for code in codes)
            found.append(Finding("no_department_for_category",
                                 f"类别“{category}”没有在用的承办部门(可承办:{can}):在乡镇文件 [[departments]] 里启用"
                                 f"其中一个后运行 {APPLY}", Severity.GAP))
    return found


def _grid_findings(grids: list[dict], grid_workers: list[dict]) -> list[Finding]:
    if not grid_workers and not grids:
        return [Finding("no_grid_worker", "没有网格员:拿不准分类的工单没人派单。在乡镇文件 [[staff]] 里加 role = "
                                          f"\"grid_worker\" 的人员后运行 {APPLY}", Severity.GAP)]
    found = []
    for grid in grids:
        workers = [person for person in grid_workers if person["grid_id"] == grid["id"]]
        if not workers:
            found.append(Finding("grid_without_worker", f"网格 {grid['code']} 没有网格员:在乡镇文件 [[staff]] 里加一名 "
                                                        f"grid_worker 后运行 {APPLY}", Severity.GAP))
        elif not any(person["bound"] for person in workers):
            names = "、".join(person["name"] for person in workers)
            found.append(Finding("grid_worker_unbound", f"网格 {grid['code']} 的网格员 {names} 还没绑定微信,收不到待派的"
                                                        f"工单:运行 {_invite(workers)},{BIND_HOW}",
                                 Severity.GAP))
    return found


def _urgent_findings(staff: list[dict], roster: list[int], township: models.Township | None) -> list[Finding]:
    """Urgent reports go to the staff on duty, else every supervisor: the supervisors must be reachable; with nobody
    reachable the reply gives the township's duty phone."""
    supervisors = [person for person in staff if person["role"] == Role.SUPERVISOR]
    found = []
    if not supervisors:
        found.append(Finding("no_supervisor", "没有督办员:值班表之外的急难事没人接报,逾期升级也没人收到。在乡镇文件 "
                                              f"[[staff]] 里加 role = \"supervisor\" 的人员后运行 {APPLY}", Severity.GAP))
    elif not any(person["bound"] for person in supervisors):
        names = "、".join(person["name"] for person in supervisors)
        found.append(Finding("supervisor_unbound", f"督办员 {names} 还没绑定微信:值班表之外的急难事没人接报。运行 "
                                                   f"{_invite(supervisors)},{BIND_HOW}", Severity.GAP))
    by_id = {person["id"]: person for person in staff}
    unbound = [by_id[staff_id] for staff_id in dict.fromkeys(roster)
               if staff_id in by_id and not by_id[staff_id]["bound"]]
    if unbound:
        names = "、".join(person["name"] for person in unbound)
        found.append(Finding("duty_member_unbound", f"值班表里的 {names} 还没绑定微信:其值班时段的急难事改发督办员。运行 "
                                                    f"{_invite(unbound)}", Severity.NOTE))
    if township is None or not township.duty_phone:
        found.append(Finding("no_duty_phone", "乡镇没有值班电话:急难事无人可通知时,回复只能请群众拨打 110/119/120。"
                                              f"在乡镇文件 [township] 里写 duty_phone 后运行 {APPLY}", Severity.NOTE))
    return found


def _department_findings(departments: list[dict], staff: list[dict]) -> list[Finding]:
    bound = {person["department_id"] for person in staff if person["role"] == Role.DEPT_STAFF and person["bound"]}
    return [Finding("department_unstaffed", f"部门 {row['code']} {row['name']} 没有绑定微信的工作人员:派到这里的工单"
                                            "没人收到通知,超时后升级督办", Severity.NOTE)
            for row in departments if row["id"] not in bound]
