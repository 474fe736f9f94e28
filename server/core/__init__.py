"""Pure domain code: models, bucketing, conditions, statistics. No I/O, no clock."""
