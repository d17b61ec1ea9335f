"""Fixtures shared by every test directory."""

from __future__ import annotations

from fake_bedrock_fixtures import fake, fake_server, records
from service_fixtures import cluster_url, redis_server_binary, redis_url

__all__ = ["cluster_url", "fake", "fake_server", "records", "redis_server_binary", "redis_url"]
