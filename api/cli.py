"""`sidan`: serve, migrate, demo-data, classify, chat, worker, stats, dashboard-link."""
from __future__ import annotations

import argparse
import asyncio
import sys
from functools import partial

from orders.config import ConfigError, check_workers, load_settings


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        raise SystemExit(f"配置错误 / configuration error: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from api.app import create_app

    settings = _settings()
    host = args.host or settings.app.host
    port = args.port or settings.app.port
    workers = args.workers or settings.app.workers
    try:
        check_workers(settings, workers)
    except ConfigError as exc:
        raise SystemExit(f"拒绝启动 / refusing to start: {exc}") from None
    settings = settings.with_overrides(app={"workers": workers})
    loader = AppLoader(factory=partial(create_app, settings, name="sidan"))
    app = loader.load()
    app.prepare(host=host, port=port, workers=workers, access_log=False, single_process=workers == 1)
    Sanic.serve(primary=app, app_loader=loader)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from orders import db

    settings = _settings()
    applied = asyncio.run(db.migrate(settings.database.url))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_makemigrations(args: argparse.Namespace) -> int:
    from orders import db

    written = asyncio.run(db.make_migrations())
    print("\n".join(written) if written else "No changes detected")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from orders import db
    from orders.demo import load_demo_data

    settings = _settings()

    async def run() -> dict:
        await db.init_db(settings.database.url)
        try:
            counts = await load_demo_data()
            if args.orders:
                from orders.demo_history import generate_history

                counts["orders"] = await generate_history(settings, args.orders, seed=args.seed)
            return counts
        finally:
            await db.close_db()

    counts = asyncio.run(run())
    print("demo data: " + ", ".join(f"{k} +{v}" for k, v in counts.items()))
    return 0


def _corrections(settings) -> list[tuple[str, str, str]]:
    """Grid workers' corrections from the database: labelled examples for the next training."""
    from orders import db, models

    async def run() -> list[tuple[str, str, str]]:
        await db.init_db(settings.database.url)
        try:
            rows = await models.Correction.all().order_by("id").values_list("text", "category", "department")
            return [tuple(row) for row in rows]
        finally:
            await db.close_db()

    try:
        return asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - no database yet: train from the corpus alone, and say so
        print(f"(no corrections loaded from the database: {type(exc).__name__}: {exc})", file=sys.stderr)
        return []


def cmd_classify(args: argparse.Namespace, rest: list[str]) -> int:
    from classifiers.cli import main as classify_main

    extra = None
    if rest[:1] == ["train"] and "--data" not in rest:
        settings = _settings()
        extra = _corrections(settings)
        print(f"{len(extra)} corrections from the database", file=sys.stderr)
    return classify_main(rest, extra_examples=extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidan", description="四单: 点单·派单·接单·验单")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("makemigrations", help="write migrations for model changes (developers)")
    demo = sub.add_parser("demo-data", help="load demo departments, grids and staff (and orders with --orders N)")
    demo.add_argument("--orders", type=int, default=0)
    demo.add_argument("--seed", type=int, default=20261124)
    sub.add_parser("classify", help="train / evaluate / predict (sidan classify --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["classify"]:
        return cmd_classify(argparse.Namespace(), argv[1:])
    args = build_parser().parse_args(argv)
    handlers = {
        "serve": cmd_serve,
        "migrate": cmd_migrate,
        "makemigrations": cmd_makemigrations,
        "demo-data": cmd_demo_data,
    }
    return handlers[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
