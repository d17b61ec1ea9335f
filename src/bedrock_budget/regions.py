"""What the package knows about AWS Regions: which names exist, which continent-sized block each belongs to,
and which cross-Region profile prefixes (``us.``, ``eu.``, ``us-gov.``, ...) a source Region can call.

Region names come from botocore's partition data (every Region of every partition its release knows), so a
typo such as ``us-east1`` or an invented ``xx-fake-1`` is caught before anything is priced for it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from bedrock_budget.errors import ConfigurationError

__all__ = [
    "AU_REGIONS",
    "IN_REGIONS",
    "JP_REGIONS",
    "MAJOR_BLOCKS",
    "check_profile_region",
    "check_region",
    "known_regions",
    "profile_prefixes_for",
    "profile_serves_region",
    "region_block",
]

# Blocks are continents rather than Region prefixes because geographic profiles may cross a prefix (the US
# profile serves Canadian callers, APAC ones mix ap-* Regions); only global profiles span continents.
_BLOCK_OF_PREFIX: Final = {"us": "na", "ca": "na", "mx": "na", "eu": "europe", "ap": "apac"}
MAJOR_BLOCKS: Final = frozenset({"na", "europe", "apac"})
JP_REGIONS: Final = frozenset({"ap-northeast-1", "ap-northeast-3"})
AU_REGIONS: Final = frozenset({"ap-southeast-2", "ap-southeast-4"})
IN_REGIONS: Final = frozenset({"ap-south-1", "ap-south-2"})
# The block a geographic profile prefix routes within (``jp``, ``au``, ``in``, ``us-gov`` and ``global`` are
# decided by their own rules in :func:`profile_serves_region`).
_BLOCK_OF_GEO: Final = {"us": "na", "ca": "na", "eu": "europe", "apac": "apac"}
# In the order a person reads them: the usual prefixes first.
_GEO_ORDER: Final = ("us", "ca", "eu", "apac", "jp", "au", "in", "us-gov", "global")
_COMMERCIAL_PARTITION: Final = "aws"


def region_block(region: str) -> str:
    """``na``, ``europe``, ``apac``, ``us-gov``, or the Region's own prefix (``sa``, ``me``, ``cn``, ...)."""
    if region.startswith("us-gov-"):
        return "us-gov"
    head = region.split("-", 1)[0]
    return _BLOCK_OF_PREFIX.get(head, head)


@lru_cache(maxsize=1)
def _partitions() -> dict[str, str]:
    """Every Region botocore knows, mapped to its partition (``aws``, ``aws-us-gov``, ``aws-cn``, ...)."""
    import botocore.session

    data = botocore.session.get_session().get_data("endpoints")
    return {
        region: partition["partition"]
        for partition in data.get("partitions", ())
        for region in partition.get("regions", {})
    }


def known_regions() -> frozenset[str]:
    """Every AWS Region name of every partition, as the installed botocore release knows them."""
    return frozenset(_partitions())


def check_region(region: str, *, also_known: Iterable[str] = ()) -> str:
    """``region`` if it is a Region botocore knows (or one of ``also_known``, e.g. Regions a price file
    names); otherwise a :class:`ConfigurationError` saying what the names look like and how to list them."""
    known = known_regions() | frozenset(also_known)
    if region in known:
        return region
    close = difflib.get_close_matches(region, sorted(known), n=2, cutoff=0.75)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    import botocore

    raise ConfigurationError(
        f"unknown region '{region}'{hint}: not an AWS Region botocore {botocore.__version__} knows; "
        "`aws ec2 describe-regions --all-regions` lists them all"
    )


def profile_serves_region(geo: str, region: str) -> bool:
    """Whether a caller in ``region`` can use a cross-Region profile with prefix ``geo``.

    GovCloud Regions call only ``us-gov.`` profiles, and ``us-gov.`` profiles serve only GovCloud; global
    profiles serve commercial Regions; ``jp.``, ``au.`` and ``in.`` serve Japan's, Australia's and India's
    Regions. A Region of North America, Europe or Asia-Pacific calls only the geographic profiles of its own
    continent. Regions elsewhere (South America, the Middle East, Africa) are not refused: which geographies
    they reach is not recorded here, so Bedrock decides.
    """
    block = region_block(region)
    if geo == "us-gov" or block == "us-gov":
        return geo == "us-gov" and block == "us-gov"
    if _partitions().get(region, _COMMERCIAL_PARTITION) != _COMMERCIAL_PARTITION:
        return False
    if geo == "global":
        return True
    if geo == "jp":
        return region in JP_REGIONS
    if geo == "au":
        return region in AU_REGIONS
    if geo == "in":
        return region in IN_REGIONS
    wanted = _BLOCK_OF_GEO.get(geo)
    if wanted is None or block not in MAJOR_BLOCKS:
        return True
    return block == wanted


def profile_prefixes_for(region: str) -> list[str]:
    """The cross-Region profile prefixes a caller in ``region`` can use, usual ones first."""
    return [geo for geo in _GEO_ORDER if profile_serves_region(geo, region)]


def check_profile_region(model_id: str, geo: str | None, region: str) -> None:
    """Refuse a cross-Region profile id (``geo`` its prefix) that no caller in ``region`` can invoke, such as
    a ``us.`` profile from GovCloud or an ``eu.`` profile from us-east-1."""
    if geo is None or profile_serves_region(geo, region):
        return
    usable = ", ".join(f"{prefix}." for prefix in profile_prefixes_for(region)) or "none"
    raise ConfigurationError(
        f"the {geo}. cross-Region profile '{model_id}' cannot be called from {region} "
        f"(profile prefixes callable from {region}: {usable})"
    )
