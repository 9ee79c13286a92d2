"""What the configuration alone says about readiness (orders.readiness.configuration_findings): production lists what
it would refuse and the WeChat template ids still unset; development only notes that nothing is sent."""
from __future__ import annotations

import pytest

from orders.config import ConfigError, load_settings
from orders.readiness import Severity, configuration_findings
from tests.support import PRODUCTION

TEMPLATES = {"SIDAN_WECHAT_SURVEY_TEMPLATE_ID": "tpl-survey", "SIDAN_WECHAT_NOTIFY_TEMPLATE_ID": "tpl-notify"}


def findings_of(env: dict[str, str]):
    return configuration_findings(load_settings(env=env, refuse_production_problems=False))


def test_production_with_real_secrets_and_templates_lacks_nothing():
    assert findings_of({**PRODUCTION, **TEMPLATES}) == []


@pytest.mark.parametrize("placeholder", ["", "SURVEY_TEMPLATE"])
def test_production_names_each_template_id_still_unset(placeholder):
    found = findings_of({**PRODUCTION, **TEMPLATES, "SIDAN_WECHAT_SURVEY_TEMPLATE_ID": placeholder})
    assert [(f.code, f.severity) for f in found] == [("wechat_template_unset", Severity.GAP)]
    assert "SIDAN_WECHAT_SURVEY_TEMPLATE_ID" in found[0].message and "回访" in found[0].message
    both = findings_of(PRODUCTION)  # config.toml's placeholders, both
    assert [f.message.split(" ")[2] for f in both] == ["wechat.survey_template_id", "wechat.notify_template_id"]


def test_production_lists_the_development_secrets_it_would_refuse_instead_of_stopping_at_the_first():
    env = {**PRODUCTION, **TEMPLATES, "SIDAN_AUTH_JWT_SECRET": "sidan-dev-jwt-secret-change-me-in-production",
           "SIDAN_WECHAT_APP_SECRET": "sidan-dev-app-secret"}
    with pytest.raises(ConfigError):
        load_settings(env=env)  # what `sidan serve` does
    found = findings_of(env)
    assert {f.code for f in found} == {"production_refuses"} and all(f.is_problem for f in found)
    messages = "\n".join(f.message for f in found)
    assert "SIDAN_AUTH_JWT_SECRET" in messages and "SIDAN_WECHAT_APP_SECRET" in messages
    assert all(f.message.startswith("生产环境拒绝启动") for f in found)


def test_development_notes_that_nothing_is_sent_and_fails_on_an_empty_secret():
    [note] = findings_of({})
    assert (note.code, note.severity, note.is_problem) == ("wechat_development", Severity.NOTE, False)
    [empty] = findings_of({"SIDAN_WECHAT_APP_SECRET": ""})
    assert empty.code == "wechat_credentials_unset" and empty.is_problem
    assert findings_of({"SIDAN_ENV": "test"}) == []  # the tests send to the fake WeChat with the development secret
