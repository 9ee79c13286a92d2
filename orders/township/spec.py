"""The township file (TOML, docs/township.md): read and checked as a whole before anything is written.

Every problem is reported with the line of its key — "文件:行 键: 说明" — and all of them at once. tomllib keeps no
positions, so the lines come from the text itself (KeyLines: the n-th `[[grids]]` header, the key under it).
"""
from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from orders.taxonomy import Taxonomy, load_taxonomy

ORDER_PREFIX = re.compile(r"^[A-Z]{1,6}$")  # as config's app.order_prefix
GRID_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
PERSON_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")  # a mobile, or a landline with its area code
SERVICE_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?|\d{3,5})$")  # also an extension, or 12345
HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLES = ("admin", "supervisor", "grid_worker", "dept_staff")
ROLE_NAMES = {"admin": "管理员", "supervisor": "督办员", "grid_worker": "网格员", "dept_staff": "部门工作人员"}
ARRAYS = ("villages", "grids", "departments", "staff", "duty")


# ------------------------------------------------------------------------------------------ problems
@dataclass(frozen=True)
class Problem:
    line: int
    key: str  # township.order_prefix, grids[2].polygon (1-based: the 2nd [[grids]])
    message: str

    def format(self, file: str) -> str:
        return f"{file}:{self.line} {self.key}: {self.message}"


class TownshipFileError(Exception):
    """The file cannot be applied: every problem found, in the file's order."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [problem.format(self.file) for problem in self.problems]


class KeyLines:
    """Where each key of the file is: (table, index of the [[table]] or None, key or None) → line number."""

    HEADER_ARRAY = re.compile(r"^\[\[\s*([A-Za-z0-9_-]+)\s*\]\]")
    HEADER_TABLE = re.compile(r"^\[\s*([A-Za-z0-9_-]+)\s*\]")
    KEY = re.compile(r"""^([A-Za-z0-9_-]+|"[^"]*")\s*=""")

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str | None, int | None, str | None], int] = {}
        counts: Counter[str] = Counter()
        table: str | None = None
        index: int | None = None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if match := self.HEADER_ARRAY.match(line):
                table, index = match[1], counts[match[1]]
                counts[table] += 1
                self.lines.setdefault((table, index, None), number)
            elif match := self.HEADER_TABLE.match(line):
                table, index = match[1], None
                self.lines.setdefault((table, None, None), number)
            elif match := self.KEY.match(line):
                self.lines.setdefault((table, index, match[1].strip('"')), number)

    def of(self, table: str | None, index: int | None = None, key: str | None = None) -> int:
        return (self.lines.get((table, index, key)) or self.lines.get((table, index, None))
                or self.lines.get((None, None, table)) or 1)


# ------------------------------------------------------------------------------------------ one model per table
def _custom(message: str) -> PydanticCustomError:
    return PydanticCustomError("township", message)


def _phone_checker(pattern: re.Pattern[str]):
    def check(value: str | None) -> str | None:
        if value is not None and not pattern.match(value):
            raise _custom(f"电话号码格式不对:“{value}”(手机 11 位,座机如 0870-1234567)")
        return value

    return AfterValidator(check)


PersonPhone = Annotated[str | None, _phone_checker(PERSON_PHONE)]
ServicePhone = Annotated[str | None, _phone_checker(SERVICE_PHONE)]


def _check_point(point: list[float], where: str) -> list[float]:
    if len(point) != 2:
        raise _custom(f"{where}应为 [经度, 纬度] 两个数")
    lng, lat = point
    if not -180 <= lng <= 180 or not -90 <= lat <= 90:
        swapped = -180 <= lat <= 180 and -90 <= lng <= 90
        hint = "(顺序应为 [经度, 纬度])" if swapped else ""
        raise _custom(f"{where}超出范围:经度 -180–180,纬度 -90–90{hint}")
    return [float(lng), float(lat)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class TownshipTable(_Table):
    name: str = Field(min_length=1, max_length=64)
    order_prefix: str
    duty_phone: ServicePhone = None

    @field_validator("order_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not ORDER_PREFIX.match(value):
            raise _custom(f"工单号前缀应为 1–6 个大写英文字母,如 YK(现为“{value}”)")
        return value


class VillageTable(_Table):
    name: str = Field(min_length=1, max_length=64)


class GridTable(_Table):
    code: str
    name: str = Field(min_length=1, max_length=64)
    village: str = Field(min_length=1, max_length=64)
    polygon: list[list[float]] | None = None  # [lng, lat] pairs; closed here when the file leaves it open
    center: list[float] | None = None  # [lng, lat]
    radius_m: float | None = Field(None, gt=0, le=20000)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not GRID_CODE.match(value):
            raise _custom(f"网格代码只能用字母、数字、- 和 _,最多 32 个(现为“{value}”)")
        return value

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        if value is None:
            return None
        ring = [_check_point(point, f"第 {n} 个点") for n, point in enumerate(value, 1)]
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring = ring[:-1]
        if len({tuple(point) for point in ring}) < 3:
            raise _custom("边界至少要有 3 个不同的点")
        ring.append(ring[0])
        shape = Polygon(ring)
        if not shape.is_valid:
            reason = explain_validity(shape)
            where = re.search(r"\[([-\d.]+) ([-\d.]+)\]", reason)
            at = f",在 [{where[1]}, {where[2]}] 附近" if where else ""
            raise _custom(f"边界自相交或重叠{at}:请按顺序(顺时针或逆时针)列出各点")
        return ring

    @field_validator("center")
    @classmethod
    def _center(cls, value: list[float] | None) -> list[float] | None:
        return _check_point(value, "中心点") if value is not None else None


class DepartmentTable(_Table):
    code: str
    active: bool = True
    name: str | None = Field(None, min_length=1, max_length=64)  # default: the taxonomy's
    duties: list[str] | None = None  # default: the taxonomy's
    phone: ServicePhone = None


class StaffTable(_Table):
    name: str = Field(min_length=1, max_length=32)
    role: Literal["admin", "supervisor", "grid_worker", "dept_staff"]
    department: str | None = None
    grid: str | None = None
    phone: PersonPhone = None
    openid: str | None = Field(None, min_length=1, max_length=64)


class DutyTable(_Table):
    staff: str = Field(min_length=1)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    hours: str

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        match = HOURS.match(value)
        valid = match is not None and all(int(match[i]) < 60 for i in (2, 4))
        valid = valid and int(match[1]) < 24 and (int(match[3]) < 24 or match.group(3, 4) == ("24", "00"))
        if not valid:
            raise _custom(f"时段格式应为 HH:MM-HH:MM,如 08:00-20:00(现为“{value}”)")
        if match.group(1, 2) == match.group(3, 4):
            raise _custom("时段的开始和结束不能相同")
        return value

    @property
    def starts(self) -> str:
        return self.hours.split("-")[0]

    @property
    def ends(self) -> str:
        return self.hours.split("-")[1]


TABLE_MODELS: dict[str, type[_Table]] = {"villages": VillageTable, "grids": GridTable, "departments": DepartmentTable,
                                         "staff": StaffTable, "duty": DutyTable}


# ------------------------------------------------------------------------------------------ the file
@dataclass
class TownshipSpec:
    """A checked township file: its tables in the file's order, and where each key is (for later problems)."""

    file: str
    township: TownshipTable
    villages: list[VillageTable] = field(default_factory=list)
    grids: list[GridTable] = field(default_factory=list)
    departments: list[DepartmentTable] = field(default_factory=list)
    staff: list[StaffTable] = field(default_factory=list)
    duty: list[DutyTable] = field(default_factory=list)
    lines: KeyLines | None = None

    def problem(self, table: str, index: int | None, key: str | None, message: str) -> Problem:
        return _problem(self.lines, table, index, key, message)


def _key_name(table: str, index: int | None, key: str | None) -> str:
    name = table if index is None else f"{table}[{index + 1}]"
    return f"{name}.{key}" if key else name


def _problem(lines: KeyLines | None, table: str, index: int | None, key: str | None, message: str) -> Problem:
    return Problem(lines.of(table, index, key) if lines else 1, _key_name(table, index, key), message)


def _message(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    messages = {
        "missing": "缺少这一项",
        "extra_forbidden": "不认识这个键(拼写错误?)",
        "string_type": "应为文字(加引号)",
        "bool_type": "应为 true 或 false",
        "list_type": "应为列表 […]",
        "float_type": "应为数字",
        "int_type": "应为整数",
        "model_type": "应为一个表",
        "string_too_short": "不能为空",
        "string_too_long": f"太长(最多 {ctx.get('max_length')} 个字)",
        "too_short": f"至少要有 {ctx.get('min_length')} 项",
        "literal_error": f"应为 {ctx.get('expected')} 之一",
        "greater_than": f"应大于 {ctx.get('gt')}",
        "less_than_equal": f"不能超过 {ctx.get('le')}",
    }
    return error["msg"] if kind == "township" else messages.get(kind, error["msg"])


def _validated(model: type[_Table], data: Any, table: str, index: int | None, lines: KeyLines,
               problems: list[Problem]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else None
            problems.append(_problem(lines, table, index, key, _message(error)))
        return None


def parse_township(text: str, file: str = "township.toml", taxonomy: Taxonomy | None = None) -> TownshipSpec:
    """The file checked as a whole; TownshipFileError lists every problem (nothing is written on any)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"line (\d+)", str(exc))
        raise TownshipFileError(file, [Problem(int(at[1]) if at else 1, "TOML", f"文件格式错误:{exc}")]) from None
    lines = KeyLines(text)
    problems: list[Problem] = []
    for key in sorted(set(data) - {"township", *ARRAYS}):
        problems.append(_problem(lines, key, None, None, "不认识这个表(拼写错误?)"))
    township = _validated(TownshipTable, data.get("township"), "township", None, lines, problems) \
        if "township" in data else None
    if "township" not in data:
        problems.append(Problem(1, "township", "缺少 [township] 表(name、order_prefix)"))
    tables: dict[str, list[Any]] = {}
    for table in ARRAYS:
        rows = data.get(table, [])
        if not isinstance(rows, list):
            problems.append(_problem(lines, table, None, None, f"应写成 [[{table}]] 表的数组"))
            rows = []
        tables[table] = [_validated(TABLE_MODELS[table], row, table, index, lines, problems)
                         for index, row in enumerate(rows)]
    spec = TownshipSpec(file, township, lines=lines, **tables)
    # what the entries call themselves, even those with problems of their own: no second problem for a reference
    named = {(table, key): {row.get(key) for row in data.get(table, []) if isinstance(row, dict)}
             for table, key in (("villages", "name"), ("grids", "code"), ("departments", "code"), ("staff", "name"))
             if isinstance(data.get(table, []), list)}
    problems += _cross_checks(spec, taxonomy or load_taxonomy(), named)
    if problems:
        raise TownshipFileError(file, problems)
    return spec


def load_township_file(path: str | Path, taxonomy: Taxonomy | None = None) -> TownshipSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TownshipFileError(str(path), [Problem(1, "文件", f"读不了这个文件:{exc}")]) from None
    return parse_township(text, str(path), taxonomy)


# ------------------------------------------------------------------------------------------ across tables
def _duplicates(rows: list[Any], attribute: str) -> list[int]:
    """Indexes of the rows whose attribute repeats an earlier row's."""
    seen: set[Any] = set()
    repeated = []
    for index, row in enumerate(rows):
        value = getattr(row, attribute) if row is not None else None
        if value is None:
            continue
        if value in seen:
            repeated.append(index)
        seen.add(value)
    return repeated


def _cross_checks(spec: TownshipSpec, taxonomy: Taxonomy, named: dict[tuple[str, str], set[Any]]) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    for table, attribute, label in (("villages", "name", "村名"), ("grids", "code", "网格代码"),
                                    ("grids", "name", "网格名称"), ("departments", "code", "部门代码"),
                                    ("staff", "name", "姓名"), ("staff", "openid", "openid")):
        rows = getattr(spec, table)
        for index in _duplicates(rows, attribute):
            add(spec.problem(table, index, attribute, f"{label}“{getattr(rows[index], attribute)}”重复"))
    villages = named.get(("villages", "name"), set())
    for index, grid in enumerate(spec.grids):
        if grid is None:
            continue
        if grid.village not in villages:
            add(spec.problem("grids", index, "village", f"村“{grid.village}”不在 [[villages]] 中"))
        if grid.polygon is None and grid.center is None and grid.radius_m is None:
            add(spec.problem("grids", index, None, "须有边界 polygon,或中心点 center(可加半径 radius_m)"))
        if grid.radius_m is not None and grid.center is None:
            add(spec.problem("grids", index, "radius_m", "有半径就要有中心点 center"))
    codes = ", ".join(taxonomy.departments)
    for index, department in enumerate(spec.departments):
        if department is not None and department.code not in taxonomy.departments:
            add(spec.problem("departments", index, "code",
                             f"部门代码“{department.code}”不是分类表中的 12 个之一({codes})"))
    departments = named.get(("departments", "code"), set())
    grids = named.get(("grids", "code"), set())
    for index, person in enumerate(spec.staff):
        if person is not None:
            problems += _staff_checks(spec, index, person, departments, grids)
    names = named.get(("staff", "name"), set())
    for index, shift in enumerate(spec.duty):
        if shift is not None and shift.staff not in names:
            add(spec.problem("duty", index, "staff", f"值班人员“{shift.staff}”不在 [[staff]] 中"))
    return problems


def _staff_checks(spec: TownshipSpec, index: int, person: StaffTable, departments: set[str],
                  grids: set[str]) -> list[Problem]:
    problems = []
    role = ROLE_NAMES[person.role]
    if person.role == "dept_staff":
        if person.department is None:
            problems.append(spec.problem("staff", index, "role", "部门工作人员须填写部门 department(部门代码)"))
        elif person.department not in departments:
            problems.append(spec.problem("staff", index, "department",
                                         f"部门“{person.department}”不在 [[departments]] 中"))
    elif person.department is not None:
        problems.append(spec.problem("staff", index, "department", f"{role}不属于某个部门:请删去 department"))
    if person.role == "grid_worker":
        if person.grid is None:
            problems.append(spec.problem("staff", index, "role", "网格员须填写网格 grid(网格代码)"))
        elif person.grid not in grids:
            problems.append(spec.problem("staff", index, "grid", f"网格“{person.grid}”不在 [[grids]] 中"))
    elif person.grid is not None:
        problems.append(spec.problem("staff", index, "grid", f"{role}不负责某个网格:请删去 grid"))
    return problems
