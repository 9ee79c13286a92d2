"""The township file checked before anything is written: every problem with its line and key, all at once."""
from __future__ import annotations

import pytest

from orders.township import TownshipFileError, parse_township
from orders.township.apply import grid_geometry, mask_phone
from orders.township.spec import KeyLines
from tests.support import REPO

XINAN = REPO / "tests" / "data" / "xinan-township.toml"
DEMO = REPO / "corpus" / "demo-township.toml"

GOOD = """\
[township]
name = "测试镇"
order_prefix = "CS"

[[villages]]
name = "一村"

[[grids]]
code = "G1"
name = "一村网格"
village = "一村"
polygon = [[104.0, 28.0], [104.01, 28.0], [104.01, 28.01], [104.0, 28.01]]

[[departments]]
code = "jianshe"

[[staff]]
name = "张三"
role = "grid_worker"
grid = "G1"
phone = "13812345678"

[[duty]]
staff = "张三"
days = ["mon"]
hours = "08:00-20:00"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(TownshipFileError) as caught:
        parse_township(text, "t.toml")
    return caught.value.lines()


def one_problem(text: str) -> str:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    lines = [number for number, line in enumerate(text.splitlines(), 1) if fragment in line]
    return lines[occurrence - 1]


def test_the_demo_and_the_test_township_files_are_valid():
    demo = parse_township(DEMO.read_text(encoding="utf-8"), "demo")
    assert demo.township.name == "向家坝镇" and demo.township.order_prefix == "YK"
    assert len(demo.departments) == 12 and len(demo.grids) == 4 and len(demo.staff) == 18
    assert {person.openid for person in demo.staff} >= {"demo-admin", "demo-supervisor", "demo-grid_worker",
                                                          "demo-dept_staff-jianshe"}
    xinan = parse_township(XINAN.read_text(encoding="utf-8"), "xinan")
    assert [grid.code for grid in xinan.grids] == ["XA-01", "XA-02", "XA-03"]
    assert sum(d.active for d in xinan.departments) == 8 and len(xinan.departments) == 12
    # an open ring is closed; a closed one is kept as written
    assert xinan.grids[1].polygon[0] == xinan.grids[1].polygon[-1] and len(xinan.grids[1].polygon) == 5
    assert len(xinan.grids[0].polygon) == 5


def test_a_good_file_parses_and_its_duty_hours_split():
    spec = parse_township(GOOD)
    assert spec.duty[0].starts == "08:00" and spec.duty[0].ends == "20:00"


@pytest.mark.parametrize("old, new, fragment, key, words", [
    ('order_prefix = "CS"', 'order_prefix = "cs1"', "order_prefix", "township.order_prefix", "大写英文字母"),
    ('order_prefix = "CS"', 'order_prefix = "CS"\nduty_phone = "12"', "duty_phone", "township.duty_phone",
     "电话号码格式不对"),
    ('village = "一村"', 'village = "二村"', 'village = "二村"', "grids[1].village", "不在 [[villages]] 中"),
    ("polygon = [[104.0, 28.0], [104.01, 28.0], [104.01, 28.01], [104.0, 28.01]]",
     "polygon = [[104.0, 28.0], [104.01, 28.0], [104.0, 28.0]]", "polygon", "grids[1].polygon", "至少要有 3 个"),
    ("polygon = [[104.0, 28.0], [104.01, 28.0], [104.01, 28.01], [104.0, 28.01]]",
     "polygon = [[28.0, 104.0], [28.0, 104.01], [28.01, 104.01]]", "polygon", "grids[1].polygon",
     "顺序应为 [经度, 纬度]"),
    ("polygon = [[104.0, 28.0], [104.01, 28.0], [104.01, 28.01], [104.0, 28.01]]",
     "polygon = [[104.0, 28.0], [104.01, 28.01], [104.01, 28.0], [104.0, 28.01]]", "polygon", "grids[1].polygon",
     "自相交"),
    ("polygon = [[104.0, 28.0], [104.01, 28.0], [104.01, 28.01], [104.0, 28.01]]",
     "polygon = [[104.0], [104.01, 28.0], [104.01, 28.01]]", "polygon", "grids[1].polygon", "两个数"),
    ("polygon = [[104.0, 28.0], [104.01, 28.0], [104.01, 28.01], [104.0, 28.01]]", "radius_m = 300",
     "radius_m", "grids[1].radius_m", "中心点"),
    ('code = "jianshe"', 'code = "chengguan"', 'code = "chengguan"', "departments[1].code", "12 个之一"),
    ('role = "grid_worker"', 'role = "mayor"', "role", "staff[1].role", "'admin'"),
    ('grid = "G1"', 'grid = "G9"', "grid = ", "staff[1].grid", "不在 [[grids]] 中"),
    ('role = "grid_worker"\ngrid = "G1"', 'role = "dept_staff"', "role", "staff[1].role", "须填写部门"),
    ('role = "grid_worker"\ngrid = "G1"', 'role = "dept_staff"\ndepartment = "minzheng"', 'department = "',
     "staff[1].department", "不在 [[departments]] 中"),
    ('role = "grid_worker"', 'role = "supervisor"', "grid = ", "staff[1].grid", "请删去 grid"),
    ('phone = "13812345678"', 'phone = "1381234"', "phone", "staff[1].phone", "电话号码格式不对"),
    ('staff = "张三"', 'staff = "李四"', 'staff = "李四"', "duty[1].staff", "不在 [[staff]] 中"),
    ('hours = "08:00-20:00"', 'hours = "8点到20点"', "hours", "duty[1].hours", "HH:MM-HH:MM"),
    ('hours = "08:00-20:00"', 'hours = "25:00-20:00"', "hours", "duty[1].hours", "HH:MM-HH:MM"),
    ('days = ["mon"]', 'days = ["monday"]', "days", "duty[1].days", "'mon'"),
    ('name = "张三"', 'name = "张三"\nphnoe = "13812345678"', "phnoe", "staff[1].phnoe", "拼写错误"),
    ('name = "测试镇"', 'name = 5', 'name = 5', "township.name", "应为文字"),
])
def test_each_kind_of_problem_is_reported_at_its_line(old, new, fragment, key, words):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    problem = one_problem(text)
    assert problem.startswith(f"t.toml:{line_of(text, fragment)} {key}: "), problem
    assert words in problem, problem


def test_duplicates_point_at_the_repeated_entry():
    text = GOOD + '\n[[villages]]\nname = "一村"\n\n[[grids]]\ncode = "G1"\nname = "二号"\nvillage = "一村"\ncenter = [104.1, 28.1]\n'
    village, grid = line_of(text, 'name = "一村"', 2), line_of(text, 'code = "G1"', 2)
    assert problems_of(text) == [f"t.toml:{village} villages[2].name: 村名“一村”重复",
                                 f"t.toml:{grid} grids[2].code: 网格代码“G1”重复"]


def test_a_file_with_three_problems_lists_all_three_in_line_order():
    text = (GOOD.replace('order_prefix = "CS"', 'order_prefix = "toolong"')
            .replace('code = "jianshe"', 'code = "nowhere"').replace('hours = "08:00-20:00"', 'hours = "x"'))
    found = problems_of(text)
    assert [p.split(" ")[1].rstrip(":") for p in found] == ["township.order_prefix", "departments[1].code",
                                                            "duty[1].hours"]
    assert [int(p.split(" ")[0].split(":")[1]) for p in found] == [
        line_of(text, "order_prefix"), line_of(text, 'code = "nowhere"'), line_of(text, "hours")]


def test_a_grid_needs_a_boundary_or_a_centre_and_a_missing_key_is_named():
    text = GOOD.replace("polygon = [[104.0, 28.0], [104.01, 28.0], [104.01, 28.01], [104.0, 28.01]]\n", "")
    assert one_problem(text) == f"t.toml:{line_of(text, '[[grids]]')} grids[1]: 须有边界 polygon,或中心点 center(可加半径 radius_m)"
    text = GOOD.replace('order_prefix = "CS"\n', "")
    assert one_problem(text) == f"t.toml:{line_of(text, '[township]')} township.order_prefix: 缺少这一项"


def test_syntax_errors_unknown_tables_and_a_missing_township_are_reported():
    UNCLOSED = 'name = "一村'  # noqa: N806
    broken = GOOD.replace('name = "一村"', 'name = "一村')
    problem = one_problem(broken)
    assert problem.startswith(f"t.toml:{line_of(broken, UNCLOSED)} TOML: 文件格式错误")
    found = problems_of(GOOD.replace("[township]", "[town]"))
    assert "t.toml:1 town: 不认识这个表(拼写错误?)" in found and any("缺少 [township] 表" in p for p in found)


def test_key_lines_count_array_headers_and_ignore_comments_and_continuation_lines():
    lines = KeyLines('# name = "x"\n[[grids]]\ncode = "A"\npolygon = [\n  [1, 2],\n]\n\n[[grids]]\n  code = "B"\n')
    assert lines.of("grids", 0, "code") == 3 and lines.of("grids", 0, "polygon") == 4
    assert lines.of("grids", 1, "code") == 9 and lines.of("grids", 1, "name") == 8 and lines.of("nowhere") == 1


def test_a_grid_becomes_geojson_with_its_centre_and_phones_are_masked():
    spec = parse_township(GOOD)
    columns = grid_geometry(spec.grids[0])
    assert columns["polygon"]["type"] == "Polygon" and columns["polygon"]["coordinates"][0][0] == [104.0, 28.0]
    assert columns["center_lng"] == pytest.approx(104.005) and columns["center_lat"] == pytest.approx(28.005)
    assert mask_phone("13812345678") == "138****5678" and mask_phone("0831-7650112") == "083****0112"
    assert mask_phone(None) is None
