"""Which grid a location falls in, by geometry: inside a grid's polygon (shapely), within a round grid's radius,
else — only among grids that have no boundary — the nearest centre within 20 km.

With boundaries drawn, a location outside every grid is unlocated (the township's queue), never the nearest grid.
Deactivated grids (removed from the township file, kept for their orders) locate nothing.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy
import shapely
from shapely.geometry import shape

MAX_NEAREST_KM = 20.0  # farther than this from every centre: outside the township, no grid
_CACHE_SIZE = 8  # grid sets: the live one, and a few while a township file is being applied or tested


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def geometry_of(polygon: dict[str, Any] | None):
    """A grid's GeoJSON (a Polygon, MultiPolygon or a Feature holding one) as a prepared shapely geometry, or None."""
    if not isinstance(polygon, dict):
        return None
    geometry = polygon.get("geometry", polygon)
    if geometry.get("type") not in ("Polygon", "MultiPolygon") or not geometry.get("coordinates"):
        return None
    shaped = shape(geometry)
    shapely.prepare(shaped)
    return shaped


class GridLocator:
    """The grids of a township, their shapes built and prepared once; locate() answers a grid id."""

    def __init__(self, grids: Iterable[Any]) -> None:
        shaped: list[tuple[int, Any]] = []
        self.round: list[tuple[int, float, float, float]] = []  # (grid id, lat, lng, radius in km)
        self.centres: list[tuple[int, float, float]] = []  # no boundary: the nearest centre within MAX_NEAREST_KM
        for grid in grids:
            if not getattr(grid, "active", True):
                continue
            geometry = geometry_of(grid.polygon)
            has_centre = grid.center_lat is not None and grid.center_lng is not None
            if geometry is not None:
                shaped.append((grid.id, geometry))
            elif has_centre and getattr(grid, "radius_m", None):
                self.round.append((grid.id, grid.center_lat, grid.center_lng, grid.radius_m / 1000.0))
            elif has_centre:
                self.centres.append((grid.id, grid.center_lat, grid.center_lng))
        self.shaped_ids = [grid_id for grid_id, _ in shaped]
        self.shapes = numpy.array([geometry for _, geometry in shaped], dtype=object)

    def locate(self, latitude: float, longitude: float) -> int | None:
        if len(self.shapes):
            # every polygon at once (on a shared edge, the first in the file's order wins)
            inside = numpy.flatnonzero(shapely.intersects_xy(self.shapes, longitude, latitude))
            if len(inside):
                return self.shaped_ids[inside[0]]
        for grid_id, lat, lng, radius_km in self.round:
            if distance_km(latitude, longitude, lat, lng) <= radius_km:
                return grid_id
        best, best_km = None, MAX_NEAREST_KM
        for grid_id, lat, lng in self.centres:
            km = distance_km(latitude, longitude, lat, lng)
            if km < best_km:
                best, best_km = grid_id, km
        return best


# grid set → (its polygons, its locator): the intake reads the grid rows for each batch of reports, the same rows
# every time; comparing the polygons as read costs far less than building the shapes again
_locators: OrderedDict[tuple, tuple[tuple, GridLocator]] = OrderedDict()


def locator_for(grids: list[Any]) -> GridLocator:
    key = tuple((grid.id, getattr(grid, "active", True), grid.center_lat, grid.center_lng,
                 getattr(grid, "radius_m", None)) for grid in grids)
    polygons = tuple(grid.polygon for grid in grids)
    cached = _locators.get(key)
    if cached is not None and cached[0] == polygons:
        _locators.move_to_end(key)
        return cached[1]
    locator = GridLocator(grids)
    _locators[key] = (polygons, locator)
    while len(_locators) > _CACHE_SIZE:
        _locators.popitem(last=False)
    return locator


def locate_grid(grids: Iterable[Any], latitude: float, longitude: float) -> Any | None:
    """The grid a location falls in (see the module's doc), or None."""
    grids = list(grids)
    grid_id = locator_for(grids).locate(latitude, longitude)
    return next((grid for grid in grids if grid.id == grid_id), None) if grid_id is not None else None
