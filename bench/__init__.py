"""Load benchmarks for Frontdesk: `python -m bench` (or `make bench`).

Each measured figure stands beside a ceiling measured in the same run on the same machine, so
that the ratio, not the absolute number, is what a reader compares across machines
(performance.md §6: this host is noisy; ratios are stable, absolute numbers are not).
"""
