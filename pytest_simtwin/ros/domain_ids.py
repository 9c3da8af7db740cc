"""The ROS domain id range: its default and its parser (no leases here, so option checks stay cheap)."""

from __future__ import annotations

from pytest_simtwin.errors import ConfigError

#: ROS_DOMAIN_IDs that avoid the Linux ephemeral port range (REP/ROS 2 docs); 0 is left to users.
DEFAULT_DOMAIN_RANGE = "1-101,215-232"
MAX_DOMAIN_ID = 232


def parse_domain_range(text: str) -> list[int]:
    """Parse ``"1-101,215-232"`` style text into a sorted list of unique domain ids."""
    ids: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
            else:
                lo = hi = int(part)
        except ValueError:
            raise ConfigError(
                f"invalid ROS domain range {text!r}: expected comma-separated ids or ranges such as "
                f"'1-101,215-232', found {part!r}"
            ) from None
        if lo > hi or lo < 0 or hi > MAX_DOMAIN_ID:
            raise ConfigError(
                f"invalid ROS domain range {part!r} in {text!r}: ids must satisfy 0 <= low <= high <= "
                f"{MAX_DOMAIN_ID} (higher ids collide with ephemeral UDP ports)"
            )
        ids.update(range(lo, hi + 1))
    if not ids:
        raise ConfigError(f"empty ROS domain range {text!r}: give at least one id, e.g. '1-101,215-232'")
    return sorted(ids)
