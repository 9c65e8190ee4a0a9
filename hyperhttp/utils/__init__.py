"""Helpers with 2.x import paths (``hyperhttp.utils.backoff``)."""
