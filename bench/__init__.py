"""Benchmarks: scripts run as ``python bench/<name>.py`` (README "Performance")."""
