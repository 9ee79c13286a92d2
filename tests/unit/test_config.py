from __future__ import annotations

import pytest

from orders.config import ConfigError, check_workers, load_settings, workers_advice
from tests.support import PRODUCTION

BASE = {"SIDAN_ENV": "test"}


def test_defaults_are_the_embedded_setup():
    settings = load_settings(env={})
    assert settings.database.url.startswith("sqlite://")
    assert settings.redis.url == ""
    assert settings.app.port == 8000 and settings.app.host == "127.0.0.1"


def test_environment_overrides_each_section_key():
    settings = load_settings(env={
        "SIDAN_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "SIDAN_REDIS_URL": "redis://127.0.0.1:6379/0",
        "SIDAN_WECHAT_TOKEN": "abc123",
        "SIDAN_WECHAT_AES_KEY": "a" * 43,
        "SIDAN_WECHAT_API_BASE": "http://127.0.0.1:9999/",
        "SIDAN_APP_PORT": "8123",
        "SIDAN_DEADLINES_WORKING_DAYS": "true",
        "SIDAN_ENV": "test",
    })
    assert settings.database.url == "postgres://postgres@127.0.0.1:5432/test"
    assert settings.redis.url == "redis://127.0.0.1:6379/0"
    assert settings.wechat.token == "abc123" and settings.wechat.aes_key == "a" * 43
    assert settings.wechat.api_base == "http://127.0.0.1:9999"
    assert settings.app.port == 8123 and settings.deadlines.working_days is True
    assert settings.app.env == "test"


@pytest.mark.parametrize("name,value,key", [
    ("SIDAN_APP_PORT", "eighty", "app.port"),
    ("SIDAN_APP_PORT", "70000", "app.port"),
    ("SIDAN_DATABASE_URL", "mysql://x", "database.url"),
    ("SIDAN_WECHAT_AES_KEY", "short", "wechat.aes_key"),
    ("SIDAN_CLASSIFIER_CONFIDENCE_THRESHOLD", "1.5", "classifier.confidence_threshold"),
    ("SIDAN_DEADLINES_WORKING_DAYS", "maybe", "deadlines.working_days"),
    ("SIDAN_ENV", "staging", "app.env"),
])
def test_malformed_values_fail_naming_the_key(name, value, key):
    with pytest.raises(ConfigError) as error:
        load_settings(env={**BASE, name: value})
    assert key in str(error.value)


def test_unknown_key_in_a_known_section_fails_naming_it():
    with pytest.raises(ConfigError) as error:
        load_settings(env={**BASE, "SIDAN_DATABASE_URLL": "sqlite://x.sqlite3"})
    assert "database.urll" in str(error.value)


def test_missing_key_in_the_file_fails_naming_it(tmp_path):
    from orders.config import DEFAULT_CONFIG_PATH

    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").replace('url = "sqlite://var/sidan.sqlite3"\n', "")
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path, env={})
    assert "database.url" in str(error.value)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[app\nport = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, env={})


def test_production_refuses_development_secrets():
    with pytest.raises(ConfigError) as error:
        load_settings(env={"SIDAN_ENV": "production"})
    assert "SIDAN_WECHAT_TOKEN" in str(error.value) or "SIDAN_AUTH_JWT_SECRET" in str(error.value)


AES_KEY = "k" * 43


def test_production_starts_with_real_secrets():
    settings = load_settings(env=PRODUCTION)
    assert settings.is_production and settings.wechat.encoding == "safe"


# ------------------------------------------------------------------------------------------ wechat.encoding_mode
@pytest.mark.parametrize("aes_key, mode, encoding", [
    ("", "", "plain"),  # the default without a key
    (AES_KEY, "", "safe"),  # the default with one
    ("", "plain", "plain"),
    (AES_KEY, "plain", "plain"),
    (AES_KEY, "compatible", "compatible"),
    (AES_KEY, "safe", "safe"),
])
def test_the_encoding_mode_is_configured_or_follows_the_aes_key(aes_key, mode, encoding):
    settings = load_settings(env={**BASE, "SIDAN_WECHAT_AES_KEY": aes_key, "SIDAN_WECHAT_ENCODING_MODE": mode})
    assert settings.wechat.encoding == encoding
    assert settings.with_overrides(app={"port": 8001}).wechat.encoding == encoding  # survives a copy


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_compatible_and_safe_modes_need_the_aes_key(mode):
    with pytest.raises(ConfigError) as error:
        load_settings(env={**BASE, "SIDAN_WECHAT_ENCODING_MODE": mode})
    assert "wechat.encoding_mode" in str(error.value) and "SIDAN_WECHAT_AES_KEY" in str(error.value)


def test_an_unknown_encoding_mode_fails_naming_the_key():
    with pytest.raises(ConfigError) as error:
        load_settings(env={**BASE, "SIDAN_WECHAT_ENCODING_MODE": "aes"})
    assert "wechat.encoding_mode" in str(error.value)


def test_production_refuses_to_run_without_the_aes_key_unless_plain_is_chosen():
    without_key = {**PRODUCTION, "SIDAN_WECHAT_AES_KEY": ""}
    with pytest.raises(ConfigError) as error:
        load_settings(env=without_key)
    assert "wechat.aes_key" in str(error.value)
    assert "SIDAN_WECHAT_AES_KEY" in str(error.value) and "SIDAN_WECHAT_ENCODING_MODE" in str(error.value)
    plain = load_settings(env={**without_key, "SIDAN_WECHAT_ENCODING_MODE": "plain"})
    assert plain.wechat.encoding == "plain" and plain.wechat.aes_key == ""
    compatible = load_settings(env={**PRODUCTION, "SIDAN_WECHAT_ENCODING_MODE": "compatible"})
    assert compatible.wechat.encoding == "compatible"


def test_production_without_a_mini_program_starts_and_needs_no_mini_program_secret():
    env = {key: value for key, value in PRODUCTION.items() if key != "SIDAN_WECHAT_MINIAPP_SECRET"}
    settings = load_settings(env={**env, "SIDAN_WECHAT_MINIAPP_APPID": ""})
    assert settings.wechat.miniapp_appid == ""


@pytest.mark.parametrize("name,value,key", [
    ("SIDAN_AUTH_JWT_SECRET", "a" * 32, "auth.jwt_secret"),  # long enough, one character
    ("SIDAN_AUTH_JWT_SECRET", "abcd" * 12, "auth.jwt_secret"),  # long enough, four characters
    ("SIDAN_AUTH_JWT_SECRET", "sidan-dev-jwt-secret-change-me-in-production", "auth.jwt_secret"),
    ("SIDAN_WECHAT_APP_SECRET", "", "wechat.app_secret"),
    ("SIDAN_WECHAT_APP_SECRET", "sidan-dev-app-secret", "wechat.app_secret"),
    ("SIDAN_WECHAT_APPID", "wx0000000000000000", "wechat.appid"),
    ("SIDAN_WECHAT_MINIAPP_APPID", "wx1111111111111111", "wechat.miniapp_appid"),
    ("SIDAN_WECHAT_MINIAPP_SECRET", "", "wechat.miniapp_secret"),  # a mini-program without its secret
    ("SIDAN_WECHAT_MINIAPP_SECRET", "sidan-dev-miniapp-secret", "wechat.miniapp_secret"),
    ("SIDAN_WECHAT_TOKEN", "sidan-dev-token", "wechat.token"),
    ("SIDAN_APP_PUBLIC_URL", "http://127.0.0.1:8000", "app.public_url"),  # config.toml's default
    ("SIDAN_APP_PUBLIC_URL", "https://localhost", "app.public_url"),
    ("SIDAN_APP_PUBLIC_URL", "https://api.localhost:8443", "app.public_url"),
    ("SIDAN_APP_PUBLIC_URL", "https://[::1]", "app.public_url"),
    ("SIDAN_APP_PUBLIC_URL", "https://0.0.0.0", "app.public_url"),
    ("SIDAN_APP_PUBLIC_URL", "http://sidan.example.gov.cn", "app.public_url"),  # plain http
])
def test_production_refuses_naming_the_key_and_the_variable(name, value, key):
    with pytest.raises(ConfigError) as error:
        load_settings(env={**PRODUCTION, name: value})
    assert key in str(error.value) and name in str(error.value)
    load_settings(env={**PRODUCTION, name: value, "SIDAN_ENV": "development"})  # a refusal of production only


def test_production_refuses_a_public_address_phones_cannot_use_and_says_which_to_set():
    unset = {key: value for key, value in PRODUCTION.items() if key != "SIDAN_APP_PUBLIC_URL"}
    with pytest.raises(ConfigError) as error:
        load_settings(env=unset)
    assert "app.public_url" in str(error.value) and "SIDAN_APP_PUBLIC_URL" in str(error.value)
    assert "phones cannot reach" in str(error.value) and "https://" in str(error.value)
    with pytest.raises(ConfigError, match="plain http"):
        load_settings(env={**PRODUCTION, "SIDAN_APP_PUBLIC_URL": "http://10.2.3.4:8000"})
    for fine in ("https://sidan.example.gov.cn", "https://sidan.example.gov.cn:8443/sidan", "https://119.6.8.30"):
        assert load_settings(env={**PRODUCTION, "SIDAN_APP_PUBLIC_URL": fine}).app.public_url == fine


def test_a_short_jwt_secret_is_refused_naming_the_variable():
    with pytest.raises(ConfigError) as error:
        load_settings(env={**PRODUCTION, "SIDAN_AUTH_JWT_SECRET": "Kx8#q2Lm9$Zt4"})
    assert "auth.jwt_secret" in str(error.value) and "SIDAN_AUTH_JWT_SECRET" in str(error.value)


def test_production_names_every_refused_key_at_once():
    with pytest.raises(ConfigError) as error:
        load_settings(env={**PRODUCTION, "SIDAN_WECHAT_APPID": "wx0000000000000000", "SIDAN_WECHAT_APP_SECRET": "",
                           "SIDAN_AUTH_JWT_SECRET": "z" * 40})
    for name in ("SIDAN_WECHAT_APPID", "SIDAN_WECHAT_APP_SECRET", "SIDAN_AUTH_JWT_SECRET"):
        assert name in str(error.value)


def test_the_metrics_token_comes_from_its_own_variable():
    assert load_settings(env=BASE).metrics.token == ""  # empty: /metrics open, as before
    assert load_settings(env={**BASE, "SIDAN_METRICS_TOKEN": "scrape-me"}).metrics.token == "scrape-me"


def test_more_than_one_worker_needs_the_shared_store():
    settings = load_settings(env=BASE)
    check_workers(settings, 1)
    with pytest.raises(ConfigError) as error:
        check_workers(settings, 2)
    assert "SIDAN_REDIS_URL" in str(error.value)
    check_workers(load_settings(env={**BASE, "SIDAN_REDIS_URL": "redis://127.0.0.1:6379/0"}), 4)


def test_several_workers_on_sqlite_start_with_advice_and_postgres_needs_none():
    shared = {**BASE, "SIDAN_REDIS_URL": "redis://127.0.0.1:6379/0"}
    sqlite = load_settings(env={**shared, "SIDAN_DATABASE_URL": "sqlite://var/x.sqlite3"})
    assert workers_advice(sqlite, 1) is None
    advice = workers_advice(sqlite, 2)
    assert advice and "PostgreSQL" in advice and "--workers 1" in advice
    postgres = load_settings(env={**shared, "SIDAN_DATABASE_URL": "postgres://u@127.0.0.1:5432/sidan"})
    assert workers_advice(postgres, 4) is None


# ---------------------------------------------------------------- templates and the public address (issue #16)
def test_the_template_defaults_are_todays_layouts():
    wechat = load_settings(env=BASE).wechat
    survey = wechat.template("survey")
    assert survey.id == "SURVEY_TEMPLATE" and survey.app == "mp"
    assert survey.fields == {"title": "first", "number": "keyword1", "detail": "keyword2", "time": "keyword3",
                             "remark": "remark"}
    assert wechat.template("staff").fields == {"number": "character_string1", "title": "thing2", "detail": "thing3",
                                               "time": "time4"}
    # no mini-program template of its own: the id it used before there was one
    assert wechat.template("miniapp_notify").id == "NOTIFY_TEMPLATE"
    assert wechat.template("miniapp_notify").app == "miniapp"


def test_each_template_id_and_its_fields_come_from_the_environment():
    wechat = load_settings(env={
        **BASE, "SIDAN_WECHAT_STAFF_TEMPLATE_ID": "tmpl-staff-1",
        "SIDAN_WECHAT_STAFF_TEMPLATE_FIELDS": "number=character_string2, title=thing1 time=time3",
        "SIDAN_WECHAT_MINIAPP_NOTIFY_TEMPLATE_ID": "tmpl-sub-9"}).wechat
    assert wechat.template("staff").id == "tmpl-staff-1"
    assert wechat.template("staff").fields == {"number": "character_string2", "title": "thing1", "time": "time3"}
    assert wechat.template("miniapp_notify").id == "tmpl-sub-9"
    assert wechat.survey_template_id == "SURVEY_TEMPLATE"  # the keys of before keep working


@pytest.mark.parametrize("value, says", [
    ("number", "role=field"),
    ("colour=thing1", "unknown role colour"),
    ("number=thing 1", "role=field"),
    ("number=1thing", "not a template field name: 1thing"),
    ("number=thing1,title=thing1", "two roles fill the same field"),
])
def test_a_malformed_field_map_fails_naming_the_key_and_the_variable(value, says):
    with pytest.raises(ConfigError) as error:
        load_settings(env={**BASE, "SIDAN_WECHAT_NOTIFY_TEMPLATE_FIELDS": value})
    message = str(error.value)
    assert "wechat.notify_template_fields" in message and "SIDAN_WECHAT_NOTIFY_TEMPLATE_FIELDS" in message
    assert says in message


def test_the_public_url_is_an_http_base_without_its_last_slash():
    assert load_settings(env=BASE).app.public_url == "http://127.0.0.1:8000"
    settings = load_settings(env={**BASE, "SIDAN_APP_PUBLIC_URL": "https://sidan.example.gov.cn/"})
    assert settings.app.public_url == "https://sidan.example.gov.cn"
    with pytest.raises(ConfigError, match="app.public_url"):
        load_settings(env={**BASE, "SIDAN_APP_PUBLIC_URL": "sidan.example.gov.cn"})
