"""Resilience: error classification, retries, circuit breakers and error telemetry (the 2.x
import paths ``hyperhttp.errors.retry``, ``.classifier``, ``.circuit_breaker``, ``.telemetry``)."""
