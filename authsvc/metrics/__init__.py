"""Prometheus metrics of the server: the per-app counters and their snapshots shared by every
process of `authsvc serve`."""
