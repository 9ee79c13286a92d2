"""Which grid a location falls in: point in the grid's GeoJSON polygon, else the nearest grid centre."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MAX_NEAREST_KM = 20.0  # farther than this from every centre: outside the township, no grid


def _rings(polygon: dict[str, Any]) -> list[Sequence[Sequence[float]]]:
    if not isinstance(polygon, dict):
        return []
    geometry = polygon.get("geometry", polygon)
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        return [coords[0]] if coords else []
    if kind == "MultiPolygon":
        return [part[0] for part in coords if part]
    return []


def point_in_ring(lng: float, lat: float, ring: Sequence[Sequence[float]]) -> bool:
    """Ray casting; GeoJSON order is [lng, lat]."""
    inside = False
    count = len(ring)
    for i in range(count):
        x1, y1 = ring[i][0], ring[i][1]
        x2, y2 = ring[(i + 1) % count][0], ring[(i + 1) % count][1]
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lng < x_cross:
                inside = not inside
    return inside


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def locate_grid(grids: Iterable[Any], latitude: float, longitude: float) -> Any | None:
    grids = list(grids)
    for grid in grids:
        if grid.polygon and any(point_in_ring(longitude, latitude, ring) for ring in _rings(grid.polygon)):
            return grid
    best, best_km = None, MAX_NEAREST_KM
    for grid in grids:
        if grid.center_lat is None or grid.center_lng is None:
            continue
        km = distance_km(latitude, longitude, grid.center_lat, grid.center_lng)
        if km < best_km:
            best, best_km = grid, km
    return best
