"""Packages out of range fail at wrap() time with a typed error that says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bedrock_budget
from bedrock_budget.dependencies import check_version, version_tuple
from bedrock_budget.errors import BedrockBudgetError, DependencyVersionError


@pytest.mark.parametrize(
    ("package", "found"),
    [
        ("wrapt", "1.13.3"),
        ("wrapt", "1.10.10"),
        ("wrapt", None),
        ("botocore", "1.37.38"),
        ("aiobotocore", "2.24.2"),
        ("aiobotocore", "2.25.0"),
        ("aiobotocore", "4.0.0"),
        ("aiobotocore", "not-a-version"),
    ],
)
def test_out_of_range(package: str, found: str | None) -> None:
    with pytest.raises(DependencyVersionError) as caught:
        check_version(package, found)
    error = caught.value
    assert (error.package, error.found) == (package, found)
    assert error.needed.startswith(">=")
    assert isinstance(error, BedrockBudgetError)
    assert isinstance(error, ImportError)
    assert package in str(error)


@pytest.mark.parametrize(
    ("package", "found"),
    [
        ("wrapt", "1.14.0"),
        ("wrapt", "1.17.3"),
        ("wrapt", "2.0.0"),
        ("wrapt", "2.5.2"),
        ("botocore", "1.40.61"),
        ("botocore", "1.43.117"),
        ("aiobotocore", "2.25.1"),
        ("aiobotocore", "3.0.0rc1"),
    ],
)
def test_in_range(package: str, found: str) -> None:
    check_version(package, found)


def test_version_tuple() -> None:
    assert version_tuple("2.0.1rc1") == (2, 0, 1)
    assert version_tuple("3") == (3,)
    assert version_tuple("dev") is None


def test_old_wrapt_fails_at_wrap_with_the_versions_not_an_attribute_error(tmp_path: Path) -> None:
    """A wrapt older than any the proxies were tested with."""
    fake_wrapt = tmp_path / "wrapt"
    fake_wrapt.mkdir()
    (fake_wrapt / "__init__.py").write_text('__version__ = "1.13.3"\nclass ObjectProxy:\n    pass\n')
    script = textwrap.dedent(
        """
        import boto3
        import bedrock_budget as bb
        client = boto3.client("bedrock-runtime", region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="y")
        for attempt in range(2):
            try:
                bb.wrap(client)
            except bb.BedrockBudgetError as exc:
                print(type(exc).__name__, exc.package, exc.found, exc.needed)
                print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        # The fake wrapt first, then the source under test (not whichever copy the venv has installed).
        env={"PYTHONPATH": f"{tmp_path}:{Path(bedrock_budget.__file__).parents[1]}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "DependencyVersionError wrapt 1.13.3 >=1.14"
    assert "pip install -U wrapt" in lines[1]
    assert lines[2] == lines[0]  # every attempt fails the same way, never with an AttributeError
