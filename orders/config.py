"""Configuration: config.toml defaults, overridden by SIDAN_<SECTION>_<KEY> environment variables.

Validated once at start; a missing or malformed value fails with a message naming the key.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config.toml"

# Development values that production must not run with.
DEV_SECRETS = {
    ("wechat", "token"): "sidan-dev-token",
    ("wechat", "app_secret"): "sidan-dev-app-secret",
    ("wechat", "miniapp_secret"): "sidan-dev-miniapp-secret",
    ("auth", "jwt_secret"): "sidan-dev-jwt-secret-change-me-in-production",
}
DEV_APPIDS = {("wechat", "appid"): "wx0000000000000000", ("wechat", "miniapp_appid"): "wx1111111111111111"}


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the key."""


def http_base(value: str) -> str:
    """A base URL that paths are appended to: http(s), without its last slash."""
    if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
        raise ValueError("must be an http:// or https:// base URL, e.g. https://sidan.example.gov.cn")
    return value.rstrip("/")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSection(_Section):
    env: Literal["development", "test", "production"]
    host: str
    port: int = Field(ge=1, le=65535)
    workers: int = Field(ge=1, le=64)
    township: str = Field(min_length=1)
    order_prefix: str = Field(pattern=r"^[A-Z]{1,6}$")
    timezone: str
    run_background_tasks: bool
    # where residents and staff reach this server from outside: the base of links in messages, menus, redirects
    # and media URLs
    public_url: str = "http://127.0.0.1:8000"

    @field_validator("public_url")
    @classmethod
    def _public_http_base(cls, value: str) -> str:
        return http_base(value)


class DatabaseSection(_Section):
    url: str

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://")):
            raise ValueError("must start with sqlite:// or postgres://")
        return value


class RedisSection(_Section):
    url: str

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty or start with redis://")
        return value


# What the notifier can put in a template's fields (the "role"), and what each is.
TEMPLATE_ROLES = {
    "title": "通知标题(如“新工单待接单”)",
    "number": "工单编号",
    "detail": "诉求内容(回访:办理结果)",
    "time": "发送时间",
    "remark": "下一步(如“请在一小时内接单”)",
}
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")  # {{thing1.DATA}} in the template's content
# Today's templates: the classic official-account layout, and a subscribe-style one (named keys) for staff.
CLASSIC_FIELDS = {"title": "first", "number": "keyword1", "detail": "keyword2", "time": "keyword3", "remark": "remark"}
NAMED_FIELDS = {"number": "character_string1", "title": "thing2", "detail": "thing3", "time": "time4"}


def _template_fields(value: Any) -> dict[str, str]:
    """role → field name, from a TOML table or, in an environment variable, "number=character_string1,title=thing2"."""
    if isinstance(value, str):
        pairs = [item.partition("=") for item in re.split(r"[,\s]+", value.strip()) if item]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError('expected "role=field,…", e.g. "number=character_string1,title=thing2"')
        value = {role.strip(): field.strip() for role, _, field in pairs}
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a table of role = field name")
    unknown = sorted(set(value) - set(TEMPLATE_ROLES))
    if unknown:
        raise ValueError(f"unknown role {', '.join(unknown)} (roles: {', '.join(TEMPLATE_ROLES)})")
    bad = sorted(str(field) for field in value.values() if not isinstance(field, str) or not _FIELD_NAME.match(field))
    if bad:
        raise ValueError(f"not a template field name: {', '.join(bad)} (letters, digits and _, like thing1)")
    if len(set(value.values())) < len(value):
        raise ValueError("two roles fill the same field")
    return dict(value)


@dataclass(frozen=True)
class Template:
    """One message template of an account: its id and which field each role fills."""

    name: str  # survey | notify | staff | miniapp_notify
    app: str  # "mp": the official account's template message; "miniapp": the mini-program's subscribe message
    id: str
    fields: dict[str, str]


class WechatSection(_Section):
    token: str = Field(min_length=3, max_length=32)
    appid: str = Field(min_length=1)
    aes_key: str
    # The account's message mode (消息加解密方式); empty: safe with an AES key, plain without (see `encoding`).
    encoding_mode: Literal["", "plain", "compatible", "safe"]
    app_secret: str
    miniapp_appid: str
    miniapp_secret: str
    api_base: str
    api_timeout_seconds: float = Field(gt=0)
    # the official account's web authorisation page (网页授权, /connect/oauth2/authorize): the workbench's login
    oauth_base: str = "https://open.weixin.qq.com"
    # Official-account template messages to residents (ids kept from before the field names were configuration)
    survey_template_id: str
    notify_template_id: str
    survey_template_fields: dict[str, str] = CLASSIC_FIELDS
    notify_template_fields: dict[str, str] = CLASSIC_FIELDS
    # Official-account template messages to staff who bound the account ("绑定 <邀请码>")
    staff_template_id: str = "STAFF_TEMPLATE"
    staff_template_fields: dict[str, str] = NAMED_FIELDS
    # Mini-program subscribe messages to staff bound only through it; an empty id: notify_template_id, as before
    miniapp_notify_template_id: str = ""
    miniapp_notify_template_fields: dict[str, str] = NAMED_FIELDS

    @field_validator("survey_template_fields", "notify_template_fields", "staff_template_fields",
                     "miniapp_notify_template_fields", mode="before")
    @classmethod
    def _role_fields(cls, value: Any) -> dict[str, str]:
        return _template_fields(value)

    def template(self, name: str) -> Template:
        """survey, notify, staff or miniapp_notify."""
        app = "miniapp" if name == "miniapp_notify" else "mp"
        template_id = getattr(self, f"{name}_template_id")
        if name == "miniapp_notify" and not template_id:
            template_id = self.notify_template_id
        return Template(name, app, template_id, getattr(self, f"{name}_template_fields"))

    @field_validator("aes_key")
    @classmethod
    def _aes_key_length(cls, value: str) -> str:
        if value and len(value) != 43:
            raise ValueError("EncodingAESKey must be exactly 43 characters (or empty)")
        return value

    @field_validator("api_base", "oauth_base")
    @classmethod
    def _http_base(cls, value: str) -> str:
        return http_base(value)

    @field_validator("encoding_mode")
    @classmethod
    def _encrypted_modes_need_the_key(cls, value: str, info: ValidationInfo) -> str:
        if value in ("compatible", "safe") and not info.data.get("aes_key"):
            raise ValueError(f"{value} mode needs the EncodingAESKey; set SIDAN_WECHAT_AES_KEY (43 characters)")
        return value

    @property
    def encoding(self) -> str:
        """The mode the /wechat door enforces: plain, compatible or safe."""
        return self.encoding_mode or ("safe" if self.aes_key else "plain")


class AuthSection(_Section):
    jwt_secret: str = Field(min_length=32)
    access_minutes: int = Field(gt=0)
    refresh_days: int = Field(gt=0)
    dashboard_link_hours: int = Field(gt=0)


class ClassifierSection(_Section):
    model_path: str
    confidence_threshold: float = Field(ge=0, le=1)


class BotSection(_Section):
    rate_limit_per_minute: int = Field(gt=0)
    max_body_bytes: int = Field(gt=0)
    dedup_ttl_seconds: int = Field(gt=0)
    image_attach_minutes: int = Field(ge=0)
    replay_window_seconds: int = Field(gt=0)
    # "对了,…" this soon after the resident's last open order is a note on it (bot.additions); 0: never
    addition_minutes: int = Field(10, ge=0)


class SurveySection(_Section):
    window_days: int = Field(gt=0)
    reminder_hours: int = Field(gt=0)
    max_reopens: int = Field(ge=0)


class OutboxSection(_Section):
    poll_seconds: float = Field(gt=0)
    batch_size: int = Field(gt=0)
    max_attempts: int = Field(gt=0)
    backoff_base_seconds: float = Field(gt=0)
    backoff_max_seconds: float = Field(gt=0)


class DeadlinesSection(_Section):
    model_config = ConfigDict(extra="allow", frozen=True)  # per-urgency overrides: 急难事 = 1
    sweep_seconds: float = Field(gt=0)
    working_days: bool
    holidays: list[str]
    mediation_days: list[int]
    # 即将超期 (GET /api/v1/orders?due_soon=true): an open order whose accept or resolve deadline falls this soon
    due_soon_hours: float = Field(24.0, gt=0, le=24 * 30)

    def resolve_days_override(self, urgency: str) -> float | None:
        extra = self.model_extra or {}
        value = extra.get(urgency)
        return float(value) if value is not None else None


class MediaSection(_Section):
    url: str  # file://… or a folder (default var/media), or s3://bucket/prefix?endpoint=http://…
    max_upload_bytes: int = Field(gt=0, le=100 * 1024 * 1024)
    link_minutes: int = Field(gt=0, le=7 * 24 * 60)
    fetch_poll_seconds: float = Field(gt=0)
    fetch_max_attempts: int = Field(gt=0)
    fetch_backoff_base_seconds: float = Field(gt=0)
    fetch_backoff_max_seconds: float = Field(gt=0)

    @field_validator("url")
    @classmethod
    def _media_location(cls, value: str) -> str:
        from orders.media_store import parse_media_url

        parse_media_url(value)  # a ValueError names what is wrong with it
        return value


class MetricsSection(_Section):
    token: str  # empty: /metrics is open; otherwise scrapers send it as a bearer token


class PrivacySection(_Section):
    purge_after_days: int = Field(ge=0)  # personal data of orders closed this long ago is masked; 0 = never


class HotspotsSection(_Section):
    """热点诉求: several reports of one matter in one village within hours (orders/hotspots.py)."""

    window_hours: int = Field(default=6, ge=1, le=168)  # reports this recent are clustered
    min_reports: int = Field(default=3, ge=2, le=100)  # a cluster this large is a hot spot, and alerts
    similarity: float = Field(default=0.15, gt=0, le=1)  # the least average likeness of two groups' texts to join
    top_terms: int = Field(default=5, ge=1, le=20)  # words shown per hot spot
    alert: bool = True  # tell the supervisors (once per hot spot) from the periodic sweep


class DuplicatesSection(_Section):
    """合并工单: which open orders an order's view lists as `similar` (likely the same matter)."""

    threshold: float = Field(default=0.3, gt=0, le=1)  # the texts' cosine on the router's features
    distance_m: float = Field(default=500.0, ge=0)  # within this distance (else: the same grid)
    window_hours: float = Field(default=72.0, gt=0)  # reported at most this long before
    max_listed: int = Field(default=5, gt=0, le=20)


class Settings(_Section):
    app: AppSection
    database: DatabaseSection
    redis: RedisSection
    wechat: WechatSection
    auth: AuthSection
    classifier: ClassifierSection
    bot: BotSection
    survey: SurveySection
    outbox: OutboxSection
    deadlines: DeadlinesSection
    metrics: MetricsSection
    privacy: PrivacySection
    media: MediaSection
    hotspots: HotspotsSection = HotspotsSection()
    duplicates: DuplicatesSection = DuplicatesSection()

    @property
    def is_production(self) -> bool:
        return self.app.env == "production"

    @property
    def sends_wechat(self) -> bool:
        """Outgoing WeChat calls need real credentials: with the development secret nothing is sent (the outbox
        keeps the messages), so a demo never calls out."""
        return self.wechat.app_secret != DEV_SECRETS[("wechat", "app_secret")] or self.app.env == "test"

    def model_path(self) -> Path:
        path = Path(self.classifier.model_path)
        return path if path.is_absolute() else REPO_ROOT / path

    def with_overrides(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys replaced, validated again (used by tests and the CLI)."""
        data = self.model_dump()
        for section, values in sections.items():
            data[section] = {**data[section], **values}
        return _validate(data)


def _coerce(raw: str, current: Any, key: str) -> Any:
    if isinstance(current, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"config key {key}: expected true/false, got {raw!r}")
    if isinstance(current, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw  # pydantic converts numbers and names the key if it cannot


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, raw in env.items():
        if not name.startswith("SIDAN_"):
            continue
        rest = name[len("SIDAN_"):].lower()
        if rest == "env":
            data.setdefault("app", {})["env"] = raw
            continue
        section, _, key = rest.partition("_")
        if section not in Settings.model_fields:
            continue  # other SIDAN_* variables (test settings, model path) are not config keys
        if not key:
            raise ConfigError(f"environment variable {name}: no key after the section")
        values = data.setdefault(section, {})
        values[key] = _coerce(raw, values.get(key), f"{section}.{key} ({name})")


def _validate(data: dict[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            variable = f" ({env_name(*error['loc'])})" if len(error["loc"]) == 2 else ""
            problems.append(f"config key {key}{variable}: {error['msg']}")
        raise ConfigError("; ".join(problems)) from None


def load_settings(path: Path | str | None = None, env: Mapping[str, str] | None = None, *,
                  refuse_production_problems: bool = True) -> Settings:
    """The settings, validated. Production refuses its problems (production_problems) unless told not to: `sidan
    check` lists them instead."""
    env = os.environ if env is None else env
    path = Path(path or env.get("SIDAN_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    _apply_env(data, env)
    settings = _validate(data)
    if settings.is_production and refuse_production_problems:
        from orders.production import production_problems  # it reads Settings: imported here, not at the top

        problems = production_problems(settings)
        if problems:
            raise ConfigError("; ".join(problems))
    return settings


def env_name(section: str, key: str) -> str:
    return "SIDAN_ENV" if (section, key) == ("app", "env") else f"SIDAN_{section.upper()}_{key.upper()}"


def workers_advice(settings: Settings, workers: int) -> str | None:
    """A warning for a configuration that starts but serves worse than a simpler one, or None."""
    if workers > 1 and settings.database.url.startswith("sqlite"):
        return (f"SQLite 上 {workers} 个 worker 轮流等同一把写锁,比 1 个 worker 更慢;要扩容请改用 PostgreSQL / "
                f"{workers} workers on SQLite queue for its one write lock and serve slower than one: "
                "use --workers 1, or PostgreSQL to scale out")
    return None


def check_workers(settings: Settings, workers: int) -> None:
    """The in-process store lives in one process: more workers would each see their own."""
    if workers > 1 and not settings.redis.url:
        raise ConfigError(
            f"config key app.workers: {workers} workers need a shared store; "
            "set SIDAN_REDIS_URL (redis://…) or run with --workers 1"
        )
