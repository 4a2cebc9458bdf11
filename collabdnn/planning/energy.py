"""Mobile power model: what the phone draws while it computes, waits and talks.

The planner charges the *mobile* side's energy only (the phone's battery is what the
paper's energy objective protects); energy is power times time, ``mJ = mW * ms / 1000``.

Three states:

* **busy** (``busy_mw``): the phone computes a unit, or encodes/decodes an activation.
* **wait** (``wait_mw``): the phone idles while the cloud computes, encodes or decodes,
  and while bits propagate (half the round-trip time per transfer).
* **radio**: the phone sends or receives.  The radio model is the linear throughput
  model of Huang et al. (see :data:`RADIO_MODELS`): ``P_up = alpha_up * B_up + beta``
  during upload airtime and ``P_down = alpha_down * B_down + beta`` during download
  airtime, with throughput in Mbit/s.

Every figure can be overridden (:func:`power_model`), because the defaults describe a
generic phone, not the user's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from collabdnn.placement import Side

if TYPE_CHECKING:
    from collabdnn.planning.link import Link
    from collabdnn.results import Transfer, UnitTiming

__all__ = [
    "DEFAULT_BUSY_MW",
    "DEFAULT_WAIT_MW",
    "RADIO_MODELS",
    "PowerModel",
    "RadioModel",
    "battery_fraction",
    "power_model",
    "result_energy_mj",
]

# Default power of a phone SoC while it runs a CNN layer on its CPU cores, in mW.
# ASSUMPTION, not a measurement: big-core clusters of 2015-2020 phone SoCs draw roughly
# 2-3 W under a sustained multi-core load; 2,500 mW is the middle of that range.
DEFAULT_BUSY_MW = 2500.0
# Default power while the phone waits for the cloud with the screen on and the CPU
# mostly idle, in mW. ASSUMPTION: a few hundred mW is typical of an idle phone with the
# screen on; 300 mW is a round figure in that range.
DEFAULT_WAIT_MW = 300.0


def _check_power(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 mW, got {value!r}")


@dataclass(frozen=True)
class RadioModel:
    """Linear radio power model: ``P = alpha * throughput_mbps + beta`` (mW).

    Upload and download have their own slope; the intercept ``beta`` is shared, as in
    Huang et al.'s model.
    """

    alpha_up_mw_per_mbps: float
    alpha_down_mw_per_mbps: float
    beta_mw: float

    def __post_init__(self) -> None:
        for name in ("alpha_up_mw_per_mbps", "alpha_down_mw_per_mbps", "beta_mw"):
            _check_power(name, getattr(self, name))

    def upload_mw(self, up_mbps: float) -> float:
        """Power while uploading at ``up_mbps`` Mbit/s."""
        return self.alpha_up_mw_per_mbps * up_mbps + self.beta_mw

    def download_mw(self, down_mbps: float) -> float:
        """Power while downloading at ``down_mbps`` Mbit/s."""
        return self.alpha_down_mw_per_mbps * down_mbps + self.beta_mw

    def to_dict(self) -> dict[str, float]:
        return {
            "alpha_up_mw_per_mbps": self.alpha_up_mw_per_mbps,
            "alpha_down_mw_per_mbps": self.alpha_down_mw_per_mbps,
            "beta_mw": self.beta_mw,
        }


# Radio power per network: (alpha_up mW/Mbps, alpha_down mW/Mbps, beta mW).
#
# Source: J. Huang, F. Qian, A. Gerber, Z. M. Mao, S. Sen, O. Spatscheck, "A close
# examination of performance and power characteristics of 4G LTE networks", MobiSys 2012,
# as reproduced by JointDNN (A. E. Eshratifar, M. S. Abrishami, M. Pedram, "JointDNN: an
# efficient training and inference engine for intelligent mobile cloud computing
# services", IEEE TMC 2019).
# CAVEAT: these are the figures as JointDNN reproduces Huang et al.'s table; they could
# not be checked against the original paper here.
RADIO_MODELS: dict[str, RadioModel] = {
    "3g": RadioModel(868.98, 122.12, 817.88),
    "4g": RadioModel(438.39, 51.97, 1288.04),
    "wifi": RadioModel(283.17, 137.01, 132.86),
}


@dataclass(frozen=True)
class PowerModel:
    """The phone's power in each state the planner charges (all in mW)."""

    busy_mw: float
    wait_mw: float
    radio: RadioModel

    def __post_init__(self) -> None:
        _check_power("busy_mw", self.busy_mw)
        _check_power("wait_mw", self.wait_mw)

    def to_dict(self) -> dict[str, object]:
        return {"busy_mw": self.busy_mw, "wait_mw": self.wait_mw, "radio": self.radio.to_dict()}


def power_model(
    network: str = "wifi",
    busy_mw: float | None = None,
    wait_mw: float | None = None,
    alpha_up: float | None = None,
    alpha_down: float | None = None,
    beta: float | None = None,
) -> PowerModel:
    """The default power model for ``network`` ("3g", "4g" or "wifi"), with overrides.

    Any figure given (not ``None``) replaces the default, so a user who measured their
    own phone can plug in every number.
    """
    key = network.lower()
    if key not in RADIO_MODELS:
        known = ", ".join(sorted(RADIO_MODELS))
        raise ValueError(f"unknown network {network!r}; known networks: {known}")
    radio = RADIO_MODELS[key]
    overrides = {
        name: value
        for name, value in (
            ("alpha_up_mw_per_mbps", alpha_up),
            ("alpha_down_mw_per_mbps", alpha_down),
            ("beta_mw", beta),
        )
        if value is not None
    }
    if overrides:
        radio = replace(radio, **overrides)
    return PowerModel(
        busy_mw=DEFAULT_BUSY_MW if busy_mw is None else float(busy_mw),
        wait_mw=DEFAULT_WAIT_MW if wait_mw is None else float(wait_mw),
        radio=radio,
    )


def battery_fraction(configured: float | None = None) -> float:
    """The battery's charge in [0, 1].

    Read from the machine's battery (``psutil.sensors_battery()``) when it has one, so a
    real phone or laptop reports its real charge; otherwise (servers, containers, CI)
    the configured value, or 1.0 (full) when none is configured.
    """
    if configured is not None and not 0.0 <= configured <= 1.0:
        raise ValueError(f"battery fraction must be in [0, 1], got {configured}")
    try:
        import psutil

        battery = psutil.sensors_battery()
    except (ImportError, AttributeError, NotImplementedError, OSError, RuntimeError):
        battery = None
    if battery is not None and battery.percent is not None:
        return min(1.0, max(0.0, float(battery.percent) / 100.0))
    return 1.0 if configured is None else float(configured)


def result_energy_mj(
    units: Sequence[UnitTiming],
    transfers: Sequence[Transfer],
    power: PowerModel,
    link: Link,
) -> float:
    """Modelled mobile energy (mJ) of one classification as it actually ran.

    Why modelled: a phone's battery drain cannot be measured from inside a process, but
    the times can; this prices the *measured* times with the same power model the
    planner uses, so predicted and "measured" energy are comparable:

    * units on the phone: ``compute_ms * P_busy``; units in the cloud:
      ``compute_ms * P_wait`` (the phone waits);
    * each crossing: the phone's own encode (up) / decode (down) at ``P_busy``, the
      cloud's decode (up) / encode (down) at ``P_wait``;
    * each cloud call's network time (``transfer_ms``, carried by its upload) is split
      into airtime, ``8 * bytes / B`` at the link's rates, charged at the radio powers
      ``P_up = alpha_up * B_up + beta`` and ``P_down = alpha_down * B_down + beta``,
      and the rest (propagation, queueing) at ``P_wait``.  When the airtime computed from
      ``link`` exceeds the measured network time (the link is faster than estimated),
      the airtime is scaled down to fit it, so no time is charged twice.

    ``link`` is the agent's current estimate of the link (its prior until measured).
    """
    busy_ms = wait_ms = radio_mj = 0.0
    for unit in units:
        if unit.platform == Side.MOBILE:
            busy_ms += unit.compute_ms
        else:
            wait_ms += unit.compute_ms
    ups = [t for t in transfers if t.upload]
    downs = [t for t in transfers if not t.upload]
    for t in ups:
        busy_ms += t.encode_ms
        wait_ms += t.decode_ms
    for t in downs:
        wait_ms += t.encode_ms
        busy_ms += t.decode_ms
    # The agent records each cloud call as an upload followed by its download.
    for up, down in zip(ups, downs, strict=False):
        air_up = 8.0 * up.bytes / (link.up_mbps * 1e3)
        air_down = 8.0 * down.bytes / (link.down_mbps * 1e3)
        network_ms = up.transfer_ms + down.transfer_ms
        air = air_up + air_down
        scale = 1.0 if air <= network_ms or air == 0 else network_ms / air
        air_up, air_down = air_up * scale, air_down * scale
        radio_mj += (
            power.radio.upload_mw(link.up_mbps) * air_up
            + power.radio.download_mw(link.down_mbps) * air_down
        ) / 1000.0
        wait_ms += max(network_ms - air_up - air_down, 0.0)
    return (power.busy_mw * busy_ms + power.wait_mw * wait_ms) / 1000.0 + radio_mj
