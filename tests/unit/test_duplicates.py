"""Which open orders are listed as `similar` (合并工单): alike texts at the same place, most alike first."""
from __future__ import annotations

from types import SimpleNamespace

from orders.config import DuplicatesSection
from orders.duplicates import pick_similar, same_place

RULES = DuplicatesSection(threshold=0.3, distance_m=500, window_hours=72, max_listed=2)


def order(number: str, grid_id: int | None = None, latitude: float | None = None, longitude: float | None = None):
    return SimpleNamespace(number=number, grid_id=grid_id, latitude=latitude, longitude=longitude)


def test_the_same_grid_or_near_enough_is_one_place():
    new = order("N", grid_id=1, latitude=28.6410, longitude=104.4060)
    assert same_place(new, order("A", grid_id=1), RULES) == (True, None)  # no location: the grid decides
    near, distance = same_place(new, order("B", grid_id=2, latitude=28.6420, longitude=104.4060), RULES)
    assert near and 100 < distance < 120  # about 111 m, across a grid border
    far, distance = same_place(new, order("C", grid_id=2, latitude=28.6600, longitude=104.4060), RULES)
    assert not far and distance > 2000
    assert same_place(order("D"), order("E"), RULES) == (False, None)  # nowhere: never one place


def test_only_alike_texts_at_the_same_place_are_listed_most_alike_first_and_at_most_max_listed():
    new = order("N", grid_id=1, latitude=28.6410, longitude=104.4060)
    candidates = [order("A", grid_id=1), order("B", grid_id=1, latitude=28.6410, longitude=104.4061),
                  order("C", grid_id=3, latitude=28.70, longitude=104.50), order("D", grid_id=1),
                  order("E", grid_id=1)]
    picked = pick_similar(new, candidates, [0.45, 0.8, 0.9, 0.29, 0.6], RULES)
    assert picked == [{"number": "B", "score": 0.8, "distance_m": 10},
                      {"number": "E", "score": 0.6, "distance_m": None}]
    assert pick_similar(new, [], [], RULES) == []
