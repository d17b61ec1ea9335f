"""The versions of the packages the wrapper builds on, checked when a client is wrapped or instrumented.

pip keeps them in range when it installs bedrock-budget, but a later ``pip install`` of something else can
move them out of it. Then the wrapper would fail on first use with an ``AttributeError`` deep inside; this
check fails first, with a :class:`~bedrock_budget.errors.DependencyVersionError` that names the package,
the version found and the range needed.

The ranges are the ones the test suites run against: wrapt 1.14 to 2.x (the proxies' base class takes
either line, :mod:`bedrock_budget.wrapper.proxy_base`), and aiobotocore 2.25.1 (what aioboto3 up to 15.5
pins, with wrapt 1.x and botocore 1.40) to 3.x.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Final

from bedrock_budget.errors import DependencyVersionError

#: package -> (lowest version, first version too new or None, the range as pip writes it)
_RANGES: Final[dict[str, tuple[tuple[int, ...], tuple[int, ...] | None, str]]] = {
    "wrapt": ((1, 14), None, ">=1.14"),
    "botocore": ((1, 38), None, ">=1.38"),
    "aiobotocore": ((2, 25, 1), (4, 0), ">=2.25.1,<4"),
}
_ASYNC_HINT: Final = "install the async extra: pip install 'bedrock-budget[async]'"
_HINTS: Final = {
    "wrapt": "pip install -U wrapt",
    "botocore": "pip install -U boto3 botocore",
    "aiobotocore": _ASYNC_HINT,
}
_NUMBERS: Final = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def version_tuple(text: str) -> tuple[int, ...] | None:
    """The leading release numbers of a version string (``"2.0.1rc1"`` -> ``(2, 0, 1)``)."""
    match = _NUMBERS.match(text.strip())
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def installed_version(package: str) -> str | None:
    """The version of ``package`` as imported (its ``__version__``), else its distribution's metadata."""
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(package)
    except PackageNotFoundError:
        return None


def check_version(package: str, found: str | None) -> None:
    """Raise :class:`DependencyVersionError` unless ``found`` is in ``package``'s supported range."""
    low, high, needed = _RANGES[package]
    numbers = None if found is None else version_tuple(found)
    if numbers is None or numbers < low or (high is not None and numbers >= high):
        raise DependencyVersionError(package, found, needed, _HINTS[package])


@cache
def require(package: str) -> None:
    """Check one package once per process (a failed check is not cached: it raises every time)."""
    check_version(package, installed_version(package))


def require_runtime() -> None:
    """What every wrapped client needs: ``wrapt`` and ``botocore``."""
    require("wrapt")
    require("botocore")


def require_async() -> None:
    """What an async (aiobotocore) client needs on top: ``aiobotocore`` itself."""
    require_runtime()
    require("aiobotocore")
