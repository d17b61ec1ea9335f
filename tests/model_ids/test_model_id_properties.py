"""Properties of the parser over generated identifiers."""

from __future__ import annotations

import contextlib
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from bedrock_budget.errors import InvalidModelIdError
from bedrock_budget.model_ids import GEO_PREFIXES, ModelRef, parse_model_id, strip_version

segment = st.from_regex(r"[a-z0-9-]{1,30}", fullmatch=True)
suffix = st.from_regex(r"(:[a-z0-9-]{1,10}){0,2}", fullmatch=True)


@st.composite
def base_ids(draw: st.DrawFn) -> str:
    """Valid base ids: provider.model, up to two more dotted parts, up to two ':' suffixes."""
    parts = draw(st.lists(segment, min_size=2, max_size=4))
    return ".".join(parts) + draw(suffix)


geos = st.sampled_from(sorted(GEO_PREFIXES))


@settings(max_examples=300)
@given(geo=geos, base=base_ids())
def test_geo_prefixed_id_parses_to_its_base(geo: str, base: str) -> None:
    ref = parse_model_id(f"{geo}.{base}")
    assert ref.kind == "inference_profile"
    assert ref.base_id == base
    assert ref.geo == geo
    assert ref.route == ("global" if geo == "global" else "geo")
    assert not ref.needs_control_plane


@settings(max_examples=300)
@given(base=base_ids())
def test_base_id_without_known_prefix_is_in_region(base: str) -> None:
    head, _, rest = base.partition(".")
    ref = parse_model_id(base)
    if head in GEO_PREFIXES and "." in rest.split(":")[0]:
        # Generated "us.provider.model": that is, by definition, a profile id.
        assert ref.route != "in_region"
    else:
        assert ref.kind == "foundation_model"
        assert ref.base_id == base
        assert ref.route == "in_region"


@settings(max_examples=200)
@given(geo=st.one_of(st.none(), geos), base=base_ids(), region=st.sampled_from(["us-east-1", "eu-west-3"]))
def test_percent_encoding_is_transparent(geo: str | None, base: str, region: str) -> None:
    plain = base if geo is None else f"{geo}.{base}"
    for model_id in (plain, f"arn:aws:bedrock:{region}:123456789012:inference-profile/{plain}"):
        decoded, encoded = parse_model_id(model_id), parse_model_id(quote(model_id, safe=""))
        assert encoded.canonical == decoded.canonical == model_id
        assert _without_raw(encoded) == _without_raw(decoded)


def _without_raw(ref: ModelRef) -> tuple[object, ...]:
    return (
        ref.kind,
        ref.base_id,
        ref.route,
        ref.geo,
        ref.region,
        ref.account,
        ref.partition,
        ref.resource_id,
    )


@settings(max_examples=500)
@given(text=st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_invalid(text: str) -> None:
    try:
        ref = parse_model_id(text)
    except InvalidModelIdError:
        return
    assert ref.canonical.isascii()
    assert ref.base_id is None or ref.base_id in ref.canonical


@settings(max_examples=300)
@given(
    text=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-:/%_", max_size=120)
    | st.from_regex(
        r"arn:aws:bedrock:[a-z0-9-]{1,12}:[0-9]{0,13}:[a-z-]{1,30}/[a-zA-Z0-9.:/-]{0,40}", fullmatch=True
    )
)
def test_near_miss_text_parses_or_raises_invalid(text: str) -> None:
    with contextlib.suppress(InvalidModelIdError):
        parse_model_id(text)


@given(base=base_ids())
def test_strip_version_is_idempotent_and_a_prefix(base: str) -> None:
    key = strip_version(base)
    assert base.startswith(key)
    assert strip_version(key) == key
    assert "." in key
