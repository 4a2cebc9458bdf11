"""The wireless link between the phone and the cloud, as the planner sees it.

A :class:`Link` is three figures (uplink and downlink throughput in Mbit/s and the
round-trip time in ms) plus the kind of network, which picks the radio power model in
:mod:`collabdnn.planning.energy`.  Shaping a real link lives elsewhere; this module is data only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LINK_PRESETS", "Link", "LinkEstimate", "link_from_args"]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Link:
    """Uplink/downlink throughput (Mbit/s), round-trip time (ms) and network kind."""

    up_mbps: float
    down_mbps: float
    rtt_ms: float
    network: str = "wifi"

    def __post_init__(self) -> None:
        for name in ("up_mbps", "down_mbps"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise ValueError(f"{name} must be a finite number > 0 Mbit/s, got {value!r}")
        if not _is_number(self.rtt_ms) or self.rtt_ms < 0:
            raise ValueError(f"rtt_ms must be a finite number >= 0 ms, got {self.rtt_ms!r}")

    def to_dict(self) -> dict[str, object]:
        return {
            "up_mbps": self.up_mbps,
            "down_mbps": self.down_mbps,
            "rtt_ms": self.rtt_ms,
            "network": self.network,
        }


@dataclass(frozen=True)
class LinkEstimate:
    """The agent's view of its link: the figures, how many observations (cloud calls and
    probes) back them (0: the prior), and whether they were measured through the
    in-process emulated shaper."""

    link: Link
    observations: int = 0
    emulated: bool = False


# Presets per network.
#
# Uplinks: Neurosurgeon (Y. Kang et al., ASPLOS'17, Table 2) measured average uplink
# throughputs of 1.1 Mbit/s (3G), 5.85 Mbit/s (LTE) and 18.88 Mbit/s (Wi-Fi).
#
# Downlinks and RTTs:
# - 4G downlink 13 Mbit/s: the median LTE downlink Huang et al. (MobiSys 2012) report
#   from their 4GTest users (their abstract: medians of about 13 Mbit/s down and
#   6 Mbit/s up, consistent with Neurosurgeon's 5.85 up).
# - 4G RTT 70 ms, 3G downlink 2 Mbit/s and RTT 150 ms, Wi-Fi downlink 40 Mbit/s and
#   RTT 20 ms: ASSUMPTIONS (round figures of the order Huang et al. describe, LTE RTTs
#   well below 3G's and Wi-Fi's lowest), not taken from a table. Override them with
#   --down-mbps / --rtt-ms when you know your link.
LINK_PRESETS: dict[str, Link] = {
    "3g": Link(up_mbps=1.1, down_mbps=2.0, rtt_ms=150.0, network="3g"),
    "4g": Link(up_mbps=5.85, down_mbps=13.0, rtt_ms=70.0, network="4g"),
    "wifi": Link(up_mbps=18.88, down_mbps=40.0, rtt_ms=20.0, network="wifi"),
}


def link_from_args(
    network: str | None = "wifi",
    up: float | None = None,
    down: float | None = None,
    rtt: float | None = None,
) -> Link:
    """The preset for ``network`` (default Wi-Fi) with any figure given overriding it."""
    key = (network or "wifi").lower()
    if key not in LINK_PRESETS:
        known = ", ".join(sorted(LINK_PRESETS))
        raise ValueError(f"unknown network {network!r}; known networks: {known}")
    preset = LINK_PRESETS[key]
    return Link(
        up_mbps=preset.up_mbps if up is None else float(up),
        down_mbps=preset.down_mbps if down is None else float(down),
        rtt_ms=preset.rtt_ms if rtt is None else float(rtt),
        network=key,
    )
