"""The mini-program REST door, /api/v1, and its OpenAPI document at /docs/openapi.json (Swagger UI at /docs)."""
from __future__ import annotations

from sanic import Sanic
from sanic_ext.extensions.openapi.extension import OpenAPIExtension

from api.v1 import (  # noqa: F401 - declares the routes
    admin_routes, auth_routes, docs, media_routes, orders_routes, qr_routes, reference_routes,
)
from api.v1.http import routes

# Only the OpenAPI extension: sanic-ext's CORS, automatic HEAD/OPTIONS/TRACE and dependency injection would add
# routes and behaviour to every door (the WeChat callback included) that nobody asked for.
SANIC_EXT_CONFIG = {
    "oas": True,
    "oas_url_prefix": "/docs",
    "oas_uri_to_json": "/openapi.json",
    "oas_ui_default": "swagger",
    "oas_ui_redoc": False,
    "oas_ui_swagger": True,
    "oas_autodoc": False,
    "cors": False,
    "http_auto_head": False,
    "http_auto_options": False,
    "http_auto_trace": False,
    "http_all_methods": False,
    "health": False,
    "logging": False,
}


def register(app: Sanic) -> None:
    app.config.OAS_URL_PREFIX = "/docs"
    if not hasattr(app, "_ext"):
        app.extend(extensions=[OpenAPIExtension], built_in_extensions=False, config=SANIC_EXT_CONFIG)
    docs.install(app)
    app.blueprint(routes.blueprint("api_v1"))
