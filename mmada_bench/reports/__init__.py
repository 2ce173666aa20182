"""Reports over run folders: the run summary, sweeps, stage tables, leaderboards and the regression gate.

Every report reads finished runs through :mod:`mmada_bench.results.reader` only (never a model), so a
table can be rebuilt from folders at any time; the sweep and stage commands also make the runs.
"""
