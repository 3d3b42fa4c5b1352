"""Durations written the way operators write them: `90s`, `15m`, `24h`, `30d`, `1y`, `1h30m`."""

from __future__ import annotations

import datetime as dt
import re

from pki.errors import InvalidValue

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_PART = re.compile(r"(\d+)([smhdwy])")


# Nothing authsvc issues lives longer than this; it also keeps timedelta and datetime arithmetic
# (`now + ttl`) far from their overflow points.
MAX_DURATION = dt.timedelta(days=100 * 365)


def parse_duration(text: str, *, allow_zero: bool = False) -> dt.timedelta:
    """Parse `text` into a timedelta; raise InvalidValue naming the text when it is not one.

    Zero is refused unless `allow_zero` (a TTL of zero is a mistake; a cache TTL of zero is a choice).
    """
    value = text.strip().lower()
    if not value or len(value) > 64 or not value.isascii() or _PART.sub("", value) != "":
        raise InvalidValue(f"invalid duration {text!r}: use a number and a unit, e.g. 90s, 15m, 24h, 30d, 1y")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(value))
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InvalidValue(f"invalid duration {text!r}: must be greater than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidValue(f"invalid duration {text!r}: longer than the maximum of {MAX_DURATION.days // 365}y")
    return dt.timedelta(seconds=seconds)


def format_duration(delta: dt.timedelta) -> str:
    """Compact form for messages: `400d`, `2y`, `23h`; negative as `<invalid>`.

    kubeadm's RESIDUAL TIME column has its own rules: see pki.kubeadm.expiration.residual_time.
    """
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "<invalid>"
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit == "y" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
