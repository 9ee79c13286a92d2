"""`sidan`: serve, migrate, demo-data, classify, chat, worker, stats, dashboard-link, privacy, backup, restore
(api/backup/); township, staff, admin (api/township_cli.py); wechat (api/wechat_cli.py); check (api/check_cli.py);
workbench-link (api/workbench_cli.py)."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from functools import partial
from pathlib import Path

from orders.config import ConfigError, check_workers, load_settings, workers_advice


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        raise SystemExit(f"配置错误 / configuration error: {exc}") from None


def _refuse_unmigrated(settings) -> None:
    """Production runs only on a migrated database: the code expects the schema of every migration it ships."""
    if not settings.is_production:
        return
    from orders import db

    try:
        pending = asyncio.run(db.pending_migrations_at(settings.database.url))
    except Exception as exc:  # noqa: BLE001 - a database away at start is /readyz's to report, not a refusal
        print(f"注意 / note: 数据库暂时连不上 / database not reachable at start ({type(exc).__name__}); "
              "/readyz answers 503 until it does", file=sys.stderr)
        return
    if pending:
        raise SystemExit(f"拒绝启动 / refusing to start: config key database.url (SIDAN_DATABASE_URL): 数据库尚未迁移 / "
                         f"the database lacks {len(pending)} migration(s) ({', '.join(pending)}); "
                         "run `sidan migrate` first")


def cmd_serve(args: argparse.Namespace) -> int:
    # With uvloop, connections that arrive while a worker starts and are dropped by the client leave the worker
    # answering nothing afterwards (seen with sanic 25.12 + uvloop 0.23); asyncio's own loop does not. WeChat
    # sends traffic during restarts, so correctness wins over uvloop's speed. (Not reproduced since serve_single
    # serves one worker: requests dropped before, during and after sending, 1 and 2 workers; uvloop measured ~8 %
    # more messages/s at saturation and no better p99 at 1,000 msg/s.) Set before Sanic is imported; its workers
    # inherit it.
    os.environ.setdefault("SANIC_USE_UVLOOP", "false")
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
    _refuse_unmigrated(settings)
    advice = workers_advice(settings, workers)
    if advice:
        print(f"注意 / note: {advice}", file=sys.stderr)
    settings = settings.with_overrides(app={"workers": workers})
    loader = AppLoader(factory=partial(create_app, settings, name="sidan"))
    app = loader.load()
    app.prepare(host=host, port=port, workers=workers, access_log=False, single_process=workers == 1)
    if workers == 1:
        Sanic.serve_single(primary=app)
    else:
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
    from api.demo.township import load_demo_data
    from orders import db

    settings = _settings()

    async def run() -> dict:
        await db.init_db(settings.database.url)
        try:
            counts = await load_demo_data()
            if args.orders:
                from api.demo.history import generate_history
                from orders import models

                if args.if_empty and await models.Order.exists():
                    counts["orders"] = 0  # `make run` twice keeps the history it made the first time
                else:
                    counts["orders"] = await generate_history(settings, args.orders, seed=args.seed)
            return counts
        finally:
            await db.close_db()

    counts = asyncio.run(run())
    print("demo data: " + ", ".join(f"{k} +{v}" for k, v in counts.items()))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """The outbox dispatcher, the deadline sweep and the media downloads without the web server (until SIGTERM)."""
    import signal

    from api import resources
    from bot.notifier import Notifier
    from orders import db
    from orders.background import BackgroundTasks
    from orders.services import OrderService

    settings = _settings()
    if not settings.sends_wechat:
        raise SystemExit("sidan worker 需要真实的微信凭据 / needs real WeChat credentials: set SIDAN_WECHAT_APP_SECRET "
                         "(with the development secret nothing may be sent)")
    _refuse_unmigrated(settings)

    class NoClassifier:  # the worker never submits orders
        def predict(self, text: str):
            raise RuntimeError("sidan worker does not classify requests")

    async def run() -> int:
        await db.init_db(settings.database.url)
        store = resources.start_store(settings)
        wechat = resources.start_wechat_client(settings, store)
        # the router's features tell which reports are one matter (合并工单, 热点诉求); without a model, neither
        similarity = resources.load_similarity(resources.load_classifier(settings)) \
            if settings.model_path().exists() else None
        service = OrderService(settings, NoClassifier(), similarity=similarity)
        tasks = BackgroundTasks.for_service(service, Notifier(wechat, settings), store, similarity=similarity)
        media = resources.start_media_store(settings)
        tasks.fetcher = resources.media_fetcher(settings, wechat, media)
        tasks.lookups = resources.unionid_lookups(wechat)
        try:
            if args.once:
                sweep = await tasks.sweeper.run_once()
                sent = await tasks.dispatcher.run_until_idle()
                fetched = await tasks.fetcher.run_until_idle()
                looked_up = await tasks.lookups.run_until_idle()
                print(f"sweep: {sweep}\noutbox: {sent}\nmedia: {fetched}\nunionid: {looked_up}")
                return 0
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, tasks.request_stop)
            print(f"sidan worker {tasks.dispatcher.name}: outbox every {tasks.dispatcher.poll_seconds}s, "
                  f"sweep every {tasks.sweeper.interval}s (Ctrl-C to stop)", file=sys.stderr)
            tasks.start()
            await tasks.wait()
            await tasks.stop()
            return 0
        finally:
            await wechat.close()
            await resources.stop_media_store(media)
            await store.close()
            await db.close_db()

    return asyncio.run(run())


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


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(rows: list[list[str]]) -> str:
    """A plain text table that lines up Chinese (two columns a character) and digits."""
    widths = [max(_width(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell) + " " * (widths[i] - _width(str(cell))) for i, cell in enumerate(row)).rstrip()
                     for row in rows)


def cmd_stats(args: argparse.Namespace) -> int:
    """The statistics in the terminal: 三率 with numerator/denominator, counts, times; --by for a breakdown."""
    from orders import db
    from orders.errors import DomainError
    from orders.stats import COUNT_DEFINITIONS, COUNT_LABELS, DIMENSION_LABELS, RATE_DEFINITIONS, Filters, Stats
    from orders.township import read_identity

    settings = _settings()
    if args.definitions:
        for name, (label, numerator, denominator) in RATE_DEFINITIONS.items():
            print(f"{label}({name}) = {numerator} ÷ {denominator}")
        for name, meaning in COUNT_DEFINITIONS.items():
            print(f"{COUNT_LABELS[name]}({name}):{meaning}")
        return 0

    async def run() -> str:
        await db.init_db(settings.database.url)
        try:
            stats = Stats(settings.app.timezone)
            township = (await read_identity(settings)).name
            period = stats.period(args.period)
            filters = Filters(args.category, args.department, args.grid, args.urgency)
            if args.xlsx or args.csv:
                from api.stats import build_summary_csv, build_workbook

                if args.xlsx:
                    Path(args.xlsx).write_bytes(await build_workbook(stats, period, township))
                if args.csv:
                    Path(args.csv).write_bytes(await build_summary_csv(stats, period))
            span = period.to_dict()
            title = f"{township} 四单统计 · {period.label}({span['start']} 至 {span['end']})"
            if args.by:
                groups = await stats.figures(period, filters, by=args.by)
                rows = [[DIMENSION_LABELS[args.by], "受理", "在办", "超期", "响应率", "办结率", "解决率", "满意率"]]
                rows += [[g.label, g.counts["received"], g.counts["open"], g.counts["overdue"]]
                         + [g.rates[name].display for name in ("response", "completion", "resolution", "satisfaction")]
                         for g in groups]
                return title + "\n" + _table(rows)
            whole = await stats.summary(period, filters)
            rows = [["指标", "比率", "分子", "分母"]]
            rows += [[RATE_DEFINITIONS[name][0], rate.display, rate.numerator, rate.denominator]
                     for name, rate in whole.rates.items()]
            counts = " · ".join(f"{COUNT_LABELS[name]} {value}" for name, value in whole.counts.items())
            times = " · ".join(f"{label} 中位数 {whole.durations[key].to_dict()['median_display']}"
                               f" / P90 {whole.durations[key].to_dict()['p90_display']}"
                               for key, label in (("accept", "接单"), ("resolve", "办结")))
            return f"{title}\n{_table(rows)}\n\n{counts}\n{times}"
        finally:
            await db.close_db()

    try:
        print(asyncio.run(run()))
    except DomainError as exc:
        print(f"错误: {exc.message}", file=sys.stderr)
        return 2
    return 0


def cmd_dashboard_link(args: argparse.Namespace) -> int:
    """A signed, expiring link to /dashboard for --openid (a supervisor or admin), else the first active supervisor."""
    from api.auth import dashboard_token
    from api.stats import dashboard_url
    from orders import db, models

    settings = _settings()
    if args.hours is not None and not 1 <= args.hours <= 24 * 31:
        print("错误: --hours 应在 1 到 744 之间", file=sys.stderr)
        return 2

    async def run():
        await db.init_db(settings.database.url)
        try:
            if args.openid:
                return await models.Staff.get_or_none(openid=args.openid, active=True)
            return await models.Staff.filter(role="supervisor", active=True).order_by("id").first()
        finally:
            await db.close_db()

    staff = asyncio.run(run())
    if staff is None and not args.openid:
        print("错误: 还没有在职的督办员(在乡镇文件中登记 role = \"supervisor\",sidan township apply;"
              "或用 --openid 指定管理员)", file=sys.stderr)
        return 2
    if staff is None:
        print(f"错误: 没有在职的工作人员 {args.openid}(演示数据: 先运行 sidan demo-data)", file=sys.stderr)
        return 2
    if staff.role not in ("supervisor", "admin"):
        print(f"错误: {args.openid}({staff.name})不是督办员或管理员,不能看一屏总览", file=sys.stderr)
        return 2
    hours = args.hours or settings.auth.dashboard_link_hours
    print(dashboard_url(settings, dashboard_token(settings, staff, hours), args.base))
    print(f"({staff.name},{hours} 小时内有效)", file=sys.stderr)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from api.backup import backup_command

    return backup_command(_settings(), args.dir, keep=args.keep)


def cmd_restore(args: argparse.Namespace) -> int:
    from api.backup import restore_command

    return restore_command(_settings(), args.dir, force=args.force, check_only=args.check)


def cmd_privacy(args: argparse.Namespace) -> int:
    """`sidan privacy purge [--dry-run]`: mask the personal data of orders closed longer than
    [privacy] purge_after_days ago (0 = never: says so and changes nothing)."""
    from orders import db
    from orders.privacy_records import Purge

    settings = _settings()
    purge = Purge(settings)
    if not purge.enabled:
        print("个人信息清除未开启([privacy] purge_after_days = 0),没有做任何改动。"
              "开启:在 config.toml 设置天数或设置 SIDAN_PRIVACY_PURGE_AFTER_DAYS。")
        return 0

    async def run():
        await db.init_db(settings.database.url)
        try:
            return await purge.run(dry_run=args.dry_run)
        finally:
            await db.close_db()

    print("\n".join(asyncio.run(run()).lines()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidan", description="四单: 点单·派单·接单·验单")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("makemigrations", help="write migrations for model changes (developers)")
    demo = sub.add_parser("demo-data", help="apply the demo township file corpus/demo-township.toml (departments, "
                                           "grids, staff with the demo logins), and orders with --orders N")
    demo.add_argument("--orders", type=int, default=0, help="also generate N orders with months of history")
    demo.add_argument("--if-empty", action="store_true", help="generate orders only when there are none yet")
    demo.add_argument("--seed", type=int, default=20261124)
    worker = sub.add_parser("worker", help="run the outbox, deadline sweep and media downloads without the server")
    worker.add_argument("--once", action="store_true", help="one sweep, deliver what is due, then exit")
    stats = sub.add_parser("stats", help="响应率·办结率·解决率·满意率 for a period (a table)")
    stats.add_argument("--period", default="30d", help="30d, month, last-month, 2026-03, 2026-03-01..2026-03-31, …")
    stats.add_argument("--by", choices=["category", "department", "grid", "urgency", "day", "week", "month"])
    stats.add_argument("--category")
    stats.add_argument("--department", help="department code, e.g. jianshe")
    stats.add_argument("--grid", help="grid code, e.g. XJB-01")
    stats.add_argument("--urgency")
    stats.add_argument("--xlsx", help="also write the report workbook to this file")
    stats.add_argument("--csv", help="also write the summary CSV to this file")
    stats.add_argument("--definitions", action="store_true", help="print how each rate is computed")
    link = sub.add_parser("dashboard-link", help="print a signed, expiring link to the dashboard")
    link.add_argument("--hours", type=int)
    link.add_argument("--openid", help="whose link (a supervisor or admin); default: the first active supervisor")
    link.add_argument("--base", help="public base URL, e.g. https://sidan.example.gov.cn")
    backup = sub.add_parser("backup", help="back up the database and the local media into DIR (a dated folder)")
    backup.add_argument("dir", help="where backups are kept, e.g. /srv/backups/sidan")
    backup.add_argument("--keep", type=int, help="then keep only the newest N backups in DIR")
    restore = sub.add_parser("restore", help="restore a backup folder into the configured database")
    restore.add_argument("dir", help="one backup folder, e.g. /srv/backups/sidan/sidan-backup-20261124-030000")
    restore.add_argument("--force", action="store_true", help="replace a database that already holds data")
    restore.add_argument("--check", action="store_true", help="only verify the backup (checksums, version)")
    privacy = sub.add_parser("privacy", help="personal data: purge what closed orders hold ([privacy])")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True)
    purge = privacy_sub.add_parser("purge", help="mask phone, ID and bank card numbers of orders closed longer than "
                                                 "[privacy] purge_after_days ago (0 = never)")
    purge.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    sub.add_parser("classify", help="train / evaluate / predict (sidan classify --help)", add_help=False)
    sub.add_parser("chat", help="talk to a running server as a WeChat resident (sidan chat --help)", add_help=False)
    from api import township_cli, wechat_cli, workbench_cli
    from api.check_cli import add_parser as add_check_parser

    parser.set_defaults(module_handlers={**township_cli.add_parsers(sub), **wechat_cli.add_parsers(sub),
                                         **add_check_parser(sub), **workbench_cli.add_parsers(sub)})
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["classify"]:
        return cmd_classify(argparse.Namespace(), argv[1:])
    if argv[:1] == ["chat"]:
        from bot.chat import main as chat_main

        return chat_main(argv[1:])
    args = build_parser().parse_args(argv)
    handlers = {
        "serve": cmd_serve,
        "migrate": cmd_migrate,
        "makemigrations": cmd_makemigrations,
        "demo-data": cmd_demo_data,
        "worker": cmd_worker,
        "stats": cmd_stats,
        "dashboard-link": cmd_dashboard_link,
        "backup": cmd_backup,
        "restore": cmd_restore,
        "privacy": cmd_privacy,
        **args.module_handlers,
    }
    return handlers[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
