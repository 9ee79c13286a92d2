"""Which grid a location falls in: shapely polygons, round grids, and the nearest centre only without boundaries."""
from __future__ import annotations

from types import SimpleNamespace

from orders.geo import GridLocator, locate_grid


def grid(id: int, polygon=None, lat=None, lng=None, radius_m=None, active=True):
    return SimpleNamespace(id=id, polygon=polygon, center_lat=lat, center_lng=lng, radius_m=radius_m, active=active)


def square(lng: float, lat: float, half: float = 0.005) -> dict:
    ring = [[lng - half, lat - half], [lng + half, lat - half], [lng + half, lat + half], [lng - half, lat + half]]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


TRIANGLE = {"type": "Polygon", "coordinates": [[[103.200, 30.090], [103.220, 30.090], [103.210, 30.099],
                                                [103.200, 30.090]]]}


def test_a_point_inside_a_polygon_finds_it_and_outside_every_polygon_finds_none():
    grids = [grid(1, square(104.0, 28.0), 28.0, 104.0), grid(2, TRIANGLE)]
    assert locate_grid(grids, 28.001, 104.002).id == 1
    assert locate_grid(grids, 30.092, 103.210).id == 2
    # inside the triangle's bounding box but outside the triangle itself
    assert locate_grid(grids, 30.098, 103.201) is None
    # 1.5 km from grid 1's centre: with boundaries drawn, no nearest-centre guess
    assert locate_grid(grids, 28.0135, 104.0) is None


def test_a_point_on_a_shared_edge_belongs_to_a_grid():
    left, right = grid(1, square(104.0, 28.0)), grid(2, square(104.01, 28.0))
    assert locate_grid([left, right], 28.0, 104.005).id in (1, 2)


def test_grids_without_a_boundary_keep_the_nearest_centre_within_20_km():
    grids = [grid(1, lat=28.0, lng=104.0), grid(2, lat=28.1, lng=104.0)]
    assert locate_grid(grids, 28.02, 104.0).id == 1
    assert locate_grid(grids, 28.09, 104.0).id == 2
    assert locate_grid(grids, 29.0, 104.0) is None  # about 100 km away


def test_a_round_grid_holds_what_is_within_its_radius():
    grids = [grid(1, lat=28.0, lng=104.0, radius_m=500), grid(2, lat=28.05, lng=104.0)]
    assert locate_grid(grids, 28.004, 104.0).id == 1  # about 445 m
    assert locate_grid(grids, 28.006, 104.0).id == 2  # outside the radius: the centre-only grid is nearest


def test_a_deactivated_grid_locates_nothing():
    assert locate_grid([grid(1, square(104.0, 28.0), active=False)], 28.0, 104.0) is None


def test_a_multipolygon_and_a_feature_are_read():
    multi = {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [
        square(104.0, 28.0)["coordinates"], square(105.0, 29.0)["coordinates"]]}}
    assert locate_grid([grid(7, multi)], 29.001, 105.001).id == 7


def test_the_same_grid_rows_read_again_answer_with_the_new_objects():
    first = [grid(1, square(104.0, 28.0))]
    again = [grid(1, square(104.0, 28.0))]
    assert locate_grid(first, 28.0, 104.0) is first[0]
    assert locate_grid(again, 28.0, 104.0) is again[0]
    moved = [grid(1, square(105.0, 28.0))]  # a changed boundary is a new grid set
    assert locate_grid(moved, 28.0, 104.0) is None


def test_the_locator_sorts_grids_by_what_they_have():
    locator = GridLocator([grid(1, square(104.0, 28.0)), grid(2, lat=1.0, lng=2.0, radius_m=10.0),
                           grid(3, lat=1.0, lng=2.0), grid(4)])
    assert locator.shaped_ids == [1] and [r[0] for r in locator.round] == [2]
    assert [c[0] for c in locator.centres] == [3]
