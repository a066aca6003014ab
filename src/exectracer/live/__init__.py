"""Tracing running services: the ``/debug/pprof/trace`` endpoint and the flight recorder (standard library only)."""
