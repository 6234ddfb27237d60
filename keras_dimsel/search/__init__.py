"""Dimension search: temperature schedules, the alternating update and DimensionPlan."""
