"""The pytest plugin, exercised in a child pytest run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
import pytest
from bedrock_budget.testing import UsageSpec

def test_uses_the_fixtures(fake_bedrock, fake_bedrock_client):
    fake_bedrock.set_usage("anthropic", UsageSpec(input_tokens=5, output_tokens=2))
    r = fake_bedrock_client.converse(
        modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    assert r["usage"]["totalTokens"] == 7
    assert fake_bedrock.requests[-1].operation == "Converse"

def test_readme_example(fake_bedrock, fake_bedrock_client):
    fake_bedrock.set_usage("anthropic", UsageSpec(input_tokens=100, output_tokens=20, cache_read_tokens=900))
    fake_bedrock.fail_next("converse", "ThrottlingException")
    r = fake_bedrock_client.converse(
        modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    assert r["usage"]["cacheReadInputTokens"] == 900
    assert r["ResponseMetadata"]["RetryAttempts"] == 1
    assert [c.status for c in fake_bedrock.calls("converse")] == [429, 200]

def test_each_test_gets_a_fresh_fake(fake_bedrock):
    assert fake_bedrock.requests == []

def test_crashing_usage_callable_fails_at_teardown(fake_bedrock):
    def broken(context):
        raise ValueError("oops")
    fake_bedrock.set_usage("*", broken)
    client = fake_bedrock.client()
    with pytest.raises(client.exceptions.InternalServerException):
        client.converse(modelId="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": []}])
"""


def test_plugin_fixtures_in_a_user_suite(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "bedrock_budget.testing.pytest_plugin",
            "-W",
            "error",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "4 passed, 1 error" in result.stdout, result.stdout + result.stderr
    assert "fake Bedrock raised while answering: ValueError('oops')" in result.stdout
