"""The township as data: one TOML file (docs/township.md) describes its name and order prefix, villages, grids,
departments, staff and duty roster; `sidan township apply` checks it (spec.py) and writes it (apply.py); the
name and prefix it sets are read through identity.py."""
from orders.township.identity import IdentityCache, TownshipIdentity, read_identity
from orders.township.spec import Problem, TownshipFileError, TownshipSpec, load_township_file, parse_township

__all__ = ["IdentityCache", "Problem", "TownshipFileError", "TownshipIdentity", "TownshipSpec", "load_township_file",
           "parse_township", "read_identity"]
