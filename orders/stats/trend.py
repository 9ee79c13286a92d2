"""The figures over time: per day or week with the empty days and weeks filled in, for the dashboard's charts."""
from __future__ import annotations

from datetime import timedelta

from orders.errors import InvalidInput
from orders.stats.definitions import TREND_DIMENSIONS, Figures, Filters, Period
from orders.stats.summary import SummaryQueries


class TrendQueries(SummaryQueries):
    """The trend: the figures per day or week."""

    async def trend(self, period: Period, filters: Filters = Filters(), by: str = "day",
                    durations: bool = True) -> list[Figures]:
        """Per day (or week) with empty buckets filled, so a chart's x axis has no holes."""
        if by not in TREND_DIMENSIONS:
            raise InvalidInput("趋势只能按日(day)或周(week)")
        found = {figures.key: figures for figures in await self.figures(period, filters, by, durations)}
        step = 1 if by == "day" else 7
        first = period.first_day if by == "day" else period.first_day - timedelta(days=period.first_day.weekday())
        buckets, day = [], first
        while day < period.end_day:
            key = day.isoformat()
            buckets.append(found.get(key) or self._build(key, key if by == "day" else f"{key} 起一周", {}, {}))
            day += timedelta(days=step)
        return buckets
