"""``wrap()`` and ``instrument()`` take real, typed, documented keyword parameters (IDE completion,
``help(bb.wrap)``, mypy on users' code), and the three places that list them stay in step."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import bedrock_budget as bb
from bedrock_budget.wrapper.configure import OPTION_NAMES, build_meter


def _options(func: object) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(func).parameters)  # type: ignore[arg-type]
    params.pop("client", None)
    return params


def test_wrap_instrument_and_build_meter_take_the_same_keywords() -> None:
    wrap, instrument, meter = _options(bb.wrap), _options(bb.instrument), _options(build_meter)
    assert set(wrap) == OPTION_NAMES
    for other in (instrument, meter):
        assert list(other) == list(wrap)
        for name, param in wrap.items():
            assert (other[name].default, other[name].annotation) == (param.default, param.annotation), name


def test_every_option_is_keyword_only_typed_and_documented() -> None:
    params = _options(bb.wrap)
    assert len(params) >= 20
    doc = inspect.getdoc(bb.wrap) or ""
    for name, param in params.items():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert param.annotation is not inspect.Parameter.empty, name
        assert re.search(rf"^\s+{name}: \S", doc, re.MULTILINE), f"{name} has no line in wrap's docstring"
    kinds = {p.kind for p in inspect.signature(bb.wrap).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds


def test_mypy_checks_users_calls_and_keeps_the_client_type(tmp_path: Path) -> None:
    user_code = tmp_path / "user_code.py"
    user_code.write_text(
        textwrap.dedent(
            """
            import boto3
            import bedrock_budget as bb
            from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

            client: BedrockRuntimeClient = bb.wrap(boto3.client("bedrock-runtime"), reservation_ttl=60.0)
            bb.wrap(boto3.client("bedrock-runtime"), reservation_ttl="soon")
            bb.wrap(boto3.client("bedrock-runtime"), budgetz=[])
            bb.instrument(settle_mode="sometimes")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user_code)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        # An editable install is an import hook mypy cannot follow; point it at the package's folder.
        env={**os.environ, "MYPYPATH": str(Path(bb.__file__).resolve().parent.parent)},
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [int(line.split(":")[1]) for line in errors] == [7, 8, 9], result.stdout
    assert '"reservation_ttl"' in errors[0]
    assert '"budgetz"' in errors[1]
    assert '"settle_mode"' in errors[2]


def test_help_shows_the_options() -> None:
    text = subprocess.run(
        [sys.executable, "-c", "import bedrock_budget as bb; help(bb.wrap)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PAGER": "cat", "TERM": "dumb"},
    ).stdout
    for name in ("store", "budgets", "on_store_error", "listeners", "reservation_ttl", "settle_mode"):
        assert f"{name}:" in text, name
