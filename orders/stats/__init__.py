"""Statistics (read side): the 三率 and the figures around them, as SQL aggregates on SQLite and PostgreSQL.

- definitions: what each rate and count means (RATE_DEFINITIONS, written once), periods, the value types;
- base: the settings and the SQL every query shares (filters, group keys, timestamps, overdue);
- summary: the figures for a period, in total or by a dimension;
- trend: the figures per day or week, without holes;
- lists: the overdue board, the newest-orders feed, the export;
- hotspots: the recent reports of one matter from one village (热点诉求).

`Stats` is the one object callers use: the queries of all the parts, over one set of settings.
"""
from __future__ import annotations

from orders.stats.definitions import (COUNT_DEFINITIONS, COUNT_LABELS, DASH, DIMENSION_LABELS, DIMENSIONS,
                                      DURATION_LABELS, MAX_PERIOD_DAYS, PERIOD_HELP, RATE_DEFINITIONS,
                                      TREND_DIMENSIONS, Figures, Filters, Period, Rate, Spread, format_duration,
                                      parse_period)
from orders.stats.hotspots import HotspotQueries
from orders.stats.lists import ListQueries
from orders.stats.trend import TrendQueries

__all__ = ["COUNT_DEFINITIONS", "COUNT_LABELS", "DASH", "DIMENSION_LABELS", "DIMENSIONS", "DURATION_LABELS",
           "MAX_PERIOD_DAYS", "PERIOD_HELP", "RATE_DEFINITIONS", "TREND_DIMENSIONS", "Figures", "Filters", "Period",
           "Rate", "Spread", "Stats", "format_duration", "parse_period"]


class Stats(TrendQueries, ListQueries, HotspotQueries):
    """The statistics queries. One instance per process is fine: it holds no state but its settings."""
