"""Fixtures shared by every test directory."""

from __future__ import annotations

from service_fixtures import cluster_url, redis_server_binary, redis_url

__all__ = ["cluster_url", "redis_server_binary", "redis_url"]
