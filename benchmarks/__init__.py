"""kmagic's benchmarks: each bench_*.py module has run(quick=False) -> list of result rows."""
