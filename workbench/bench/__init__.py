"""The timing harness, its statistics, and the worker process it runs in."""
