"""The pieces of `sidan backup` / `sidan restore` that need no database: connection arguments, media location,
migration levels, how data at risk is named."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from api.backup.manifest import BackupError, DatabaseState, check_migrations, describe_rows, known_migrations
from api.backup.media import media_location
from api.backup.postgres import Target


def test_the_password_goes_to_the_environment_and_nowhere_else():
    target = Target.from_url("postgres://sidan:p%40ss%3Aword@db.example:6543/sidan_prod?minsize=1")
    assert (target.host, target.port, target.user, target.database) == ("db.example", 6543, "sidan", "sidan_prod")
    assert target.tool_environment()["PGPASSWORD"] == "p@ss:word"
    arguments = " ".join(target.tool_arguments())
    assert "p@ss" not in arguments and "p%40ss" not in arguments and "--no-password" in arguments
    assert "p@ss" not in target.describe() and target.describe() == "postgres://sidan@db.example:6543/sidan_prod"


def test_a_url_without_a_database_name_is_refused_without_showing_the_password():
    with pytest.raises(BackupError) as refused:
        Target.from_url("postgres://sidan:hunter2@db:5432/")
    assert "数据库名" in str(refused.value) and "hunter2" not in str(refused.value)


def test_defaults_of_a_short_url():
    target = Target.from_url("postgresql://db/sidan")
    assert (target.port, target.user, target.password) == (5432, "postgres", None)
    assert target.tool_environment().get("PGPASSWORD") == os.environ.get("PGPASSWORD")  # libpq's own ways stand


@pytest.mark.parametrize(("configured", "path"), [
    (None, "var/media"), ("", "var/media"), ("/srv/sidan/media", "/srv/sidan/media"),
    ("file:///srv/media", "/srv/media"), ("s3://sidan-evidence/prod", None),
])
def test_where_the_media_live(configured, path):
    settings = SimpleNamespace() if configured is None else SimpleNamespace(media=SimpleNamespace(url=configured))
    location = media_location(settings)
    assert (str(location.path) if location.path else None) == path
    if path is None:
        assert location.summary(0)["store"] == "remote" and "版本控制" in location.summary(0)["note"]


def test_a_backup_from_a_newer_version_is_refused_and_an_older_one_lists_what_migrate_will_do():
    known = known_migrations()
    assert known[0] == "0001_initial" and known == sorted(known)
    with pytest.raises(BackupError, match="0099_future"):
        check_migrations({"migrations": [*known, "0099_future"], "sidan_version": "9.0"})
    assert check_migrations({"migrations": known[:-1]}) == known[-1:]
    assert check_migrations({"migrations": known}) == []
    with pytest.raises(BackupError, match="没有迁移记录"):
        check_migrations({"migrations": []})


def test_data_at_risk_is_named_orders_first_and_migrations_are_not_data():
    state = DatabaseState({"staff": 3, "orders": 12, "tortoise_migrations": 4, "rating": 0, "zzz_new": 2})
    assert state.data_rows() == {"staff": 3, "orders": 12, "zzz_new": 2}
    assert describe_rows(state.data_rows()) == "工单 12 行、工作人员 3 行、zzz_new 2 行"
