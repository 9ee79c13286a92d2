"""Demo data for `sidan demo-data`, the tests and the benchmarks: the demo township 向家坝镇 with its staff
(corpus/demo-township.toml, applied by township.py like any township file), and months of made-up order history,
planned (plans.py) and written (history.py).

Not part of the domain core: orders/ never imports it; a real deployment applies its own township file instead.
"""
