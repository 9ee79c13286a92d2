from __future__ import annotations

import io
import json
import logging
import logging.config

from api.observability import Redactor, log_config, request_id_var, secret_values
from orders.config import load_settings


def test_redactor_masks_secrets_tokens_and_phone_numbers():
    redact = Redactor(["super-secret-token", "jwt-secret-value-long"])
    line = ("token super-secret-token GET /cgi-bin/token?appid=wx&secret=abc123&access_token=TOKEN-9 "
            "Authorization: Bearer eyJhbGciOi.payload.sig 电话13812345678 jwt-secret-value-long")
    masked = redact(line)
    for leaked in ("super-secret-token", "abc123", "TOKEN-9", "eyJhbGciOi", "13812345678", "jwt-secret-value-long"):
        assert leaked not in masked
    assert "138****5678" in masked and "access_token=***" in masked


def test_json_log_lines_carry_the_request_id_and_no_secret():
    settings = load_settings(env={"SIDAN_ENV": "test", "SIDAN_WECHAT_TOKEN": "tok-should-not-leak"})
    stream = io.StringIO()
    config = log_config(settings, stream=stream)
    config["loggers"] = {"sidan.testlog": {"handlers": ["json"], "level": "INFO", "propagate": False}}
    logging.config.dictConfig(config)
    token = request_id_var.set("req-12345678")
    try:
        logging.getLogger("sidan.testlog").info("verifying with %s for 13900001111", settings.wechat.token)
    finally:
        request_id_var.reset(token)
    entry = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert entry["request_id"] == "req-12345678" and entry["level"] == "INFO"
    assert "tok-should-not-leak" not in entry["msg"] and "139****1111" in entry["msg"]
    assert settings.auth.jwt_secret in secret_values(settings)
