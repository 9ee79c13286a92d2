"""The demo township 向家坝镇 and its staff: corpus/demo-township.toml, applied like any township file.

Idempotent: running it twice changes nothing. Demo staff openids are a contract (the file lists them):
demo-admin, demo-supervisor, demo-grid_worker, demo-dept_staff-<department code>.
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone

from orders.config import REPO_ROOT
from orders.taxonomy import Taxonomy
from orders.township import TownshipSpec, load_township_file
from orders.township.apply import apply_township

DEMO_TOWNSHIP_PATH = REPO_ROOT / "corpus" / "demo-township.toml"


@functools.cache
def demo_township() -> TownshipSpec:
    return load_township_file(DEMO_TOWNSHIP_PATH)


async def load_demo_data(taxonomy: Taxonomy | None = None) -> dict[str, int]:
    """Apply the demo township file; the counts of departments, grids and staff it created."""
    result = await apply_township(demo_township(), now=datetime.now(timezone.utc), taxonomy=taxonomy)
    return {table: result.created[table] for table in ("departments", "grids", "staff")}
