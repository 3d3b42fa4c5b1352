"""Properties of the small parsers: no input crashes them, and what they print they read back."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pki.durations import MAX_DURATION, format_duration, parse_duration
from pki.names import SubjectAltNames, check_dns_name, check_name, is_ip_address

BOUNDED = settings(max_examples=150, deadline=None)

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
dns_names = st.lists(label, min_size=1, max_size=4).map(".".join)
ips = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
san_strings = st.one_of(
    dns_names.map(lambda d: f"DNS:{d}"),
    dns_names.map(lambda d: f"DNS:*.{d}"),
    ips.map(lambda ip: f"IP:{ip}"),
    dns_names.map(lambda d: f"URI:spiffe://{d}/ns/x"),
    dns_names.map(lambda d: f"email:ops@{d}"),
)


@BOUNDED
@given(st.lists(st.text(max_size=40), max_size=5))
def test_san_parse_never_crashes(values: list[str]) -> None:
    try:
        sans = SubjectAltNames.parse(values)
    except ValueError:
        return
    sans.as_extension()  # whatever parse accepts, cryptography can encode


@BOUNDED
@given(st.lists(san_strings, max_size=8))
def test_san_round_trip(values: list[str]) -> None:
    sans = SubjectAltNames.parse(values)
    assert SubjectAltNames.parse(sans.as_strings()) == sans
    assert sans.as_extension() == SubjectAltNames.parse(sans.as_strings()).as_extension()


@BOUNDED
@given(st.lists(st.one_of(dns_names, ips.map(str)), max_size=6))
def test_bare_values_are_ips_when_they_parse_as_ips(values: list[str]) -> None:
    sans = SubjectAltNames.parse(values)
    assert len(sans.ips) == len({ipaddress.ip_address(v) for v in values if is_ip_address(v)})


@pytest.mark.parametrize(
    "bad",
    [
        "DNS:",
        "DNS:a..b",
        "DNS:-a.example",
        "DNS:é.example",
        "DNS:a b",
        "IP:1.2.3",
        "IP:fe80::1%eth0",
        "URI:no-scheme",
        "email:nobody",
        "DNS:*",
        "DNS:a.*.b",
        "foo:bar",
    ],
)
def test_bad_sans_are_refused_with_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        SubjectAltNames.parse([bad])


@BOUNDED
@given(st.text(max_size=300))
def test_check_name_accepts_or_raises_value_error(value: str) -> None:
    try:
        assert check_name(value) == value
    except ValueError as e:
        assert str(e)
        return
    assert "/" not in value and "\\" not in value and value.strip() == value and value


@BOUNDED
@given(st.text(max_size=80))
def test_check_dns_name_accepts_or_raises_value_error(value: str) -> None:
    try:
        name = check_dns_name(value)
    except ValueError:
        return
    assert name == value.lower() and name.isascii()


@BOUNDED
@given(st.text(max_size=30))
def test_parse_duration_accepts_or_raises_value_error(text: str) -> None:
    try:
        delta = parse_duration(text)
    except ValueError:
        return
    assert delta > dt.timedelta(0)


@BOUNDED
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from("smhdwy")), min_size=1, max_size=4)
)
def test_parse_duration_sums_its_parts(parts: list[tuple[int, str]]) -> None:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    text = "".join(f"{n}{u}" for n, u in parts)
    seconds = sum(n * unit[u] for n, u in parts)
    if seconds == 0:
        with pytest.raises(ValueError, match="greater than zero"):
            parse_duration(text)
    elif seconds > MAX_DURATION.total_seconds():
        with pytest.raises(ValueError, match="longer than the maximum"):
            parse_duration(text)
    else:
        assert parse_duration(text) == dt.timedelta(seconds=seconds)


@BOUNDED
@given(st.integers(min_value=1, max_value=100 * 365 * 86400))
def test_format_duration_round_trips_to_at_most_one_unit_less(seconds: int) -> None:
    delta = dt.timedelta(seconds=seconds)
    text = format_duration(delta)
    back = parse_duration(text)
    assert back <= delta
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 31536000}[text[-1]]
    assert delta - back < dt.timedelta(seconds=unit)


def test_format_duration_marks_negative_as_invalid() -> None:
    assert format_duration(dt.timedelta(seconds=-1)) == "<invalid>"
    assert format_duration(dt.timedelta(days=364)) == "364d"
