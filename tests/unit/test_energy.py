"""The mobile power model and the battery reading."""

from __future__ import annotations

from collections import namedtuple

import psutil
import pytest

from collabdnn.planning.energy import (
    DEFAULT_BUSY_MW,
    DEFAULT_WAIT_MW,
    RADIO_MODELS,
    RadioModel,
    battery_fraction,
    power_model,
)

Battery = namedtuple("Battery", "percent secsleft power_plugged")


def test_radio_table_is_huang_et_al_as_reproduced_by_jointdnn() -> None:
    assert RADIO_MODELS["3g"] == RadioModel(868.98, 122.12, 817.88)
    assert RADIO_MODELS["4g"] == RadioModel(438.39, 51.97, 1288.04)
    assert RADIO_MODELS["wifi"] == RadioModel(283.17, 137.01, 132.86)


def test_radio_power_is_linear_in_throughput() -> None:
    lte = RADIO_MODELS["4g"]
    assert lte.upload_mw(0.0) == lte.beta_mw
    assert lte.upload_mw(10.0) == pytest.approx(438.39 * 10 + 1288.04)
    assert lte.download_mw(10.0) == pytest.approx(51.97 * 10 + 1288.04)


def test_power_model_defaults_and_overrides() -> None:
    default = power_model("WiFi")
    assert default.busy_mw == DEFAULT_BUSY_MW and default.wait_mw == DEFAULT_WAIT_MW
    assert default.radio == RADIO_MODELS["wifi"]
    custom = power_model("3g", busy_mw=1800, wait_mw=150, alpha_up=1.0, alpha_down=2.0, beta=3.0)
    assert (custom.busy_mw, custom.wait_mw) == (1800.0, 150.0)
    assert custom.radio == RadioModel(1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="wait_mw"):
        power_model("wifi", wait_mw=-1)
    with pytest.raises(ValueError, match="beta_mw"):
        power_model("wifi", beta=float("inf"))


def test_battery_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "sensors_battery", lambda: Battery(37.0, 1000, False))
    assert battery_fraction(None) == pytest.approx(0.37)
    assert battery_fraction(0.9) == pytest.approx(0.37)  # a real battery wins


def test_battery_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None)
    assert battery_fraction(None) == 1.0
    assert battery_fraction(0.15) == 0.15
    with pytest.raises(ValueError, match="battery"):
        battery_fraction(1.5)


def test_battery_sensor_failure_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("no sysfs")

    monkeypatch.setattr(psutil, "sensors_battery", broken)
    assert battery_fraction(0.5) == 0.5


def test_result_energy_prices_measured_times_like_the_planner() -> None:
    from collabdnn.placement import Side
    from collabdnn.planning.energy import result_energy_mj
    from collabdnn.planning.link import Link
    from collabdnn.results import Transfer, UnitTiming

    power = power_model("wifi")
    link = Link(8.0, 16.0, 10.0, "wifi")
    units = [
        UnitTiming(0, "a", Side.MOBILE, compute_ms=10.0),
        UnitTiming(1, "b", Side.CLOUD, compute_ms=4.0),
    ]
    # 10 kB up (10 ms airtime at 8 Mbit/s), 2 kB down (1 ms at 16), 20 ms network time.
    transfers = [
        Transfer(0, True, 10_000, encode_ms=1.0, transfer_ms=20.0, decode_ms=0.5),
        Transfer(1, False, 2_000, encode_ms=0.25, transfer_ms=0.0, decode_ms=0.75),
    ]
    busy = 10.0 + 1.0 + 0.75
    wait = 4.0 + 0.5 + 0.25 + (20.0 - 10.0 - 1.0)
    radio = power.radio.upload_mw(8.0) * 10.0 + power.radio.download_mw(16.0) * 1.0
    expected = (power.busy_mw * busy + power.wait_mw * wait + radio) / 1000.0
    assert result_energy_mj(units, transfers, power, link) == pytest.approx(expected)
    # A link estimate slower than what happened: airtime is capped at the network time.
    slow = Link(0.1, 0.1, 10.0, "wifi")
    capped = result_energy_mj(units, transfers, power, slow)
    radio_mw = max(power.radio.upload_mw(0.1), power.radio.download_mw(0.1))
    bound = (power.busy_mw * busy + power.wait_mw * 4.75 + radio_mw * 20.0) / 1000.0
    assert 0 < capped <= bound + 1e-9
    # Everything on the phone: busy power only.
    local = [UnitTiming(0, "a", Side.MOBILE, compute_ms=10.0)]
    assert result_energy_mj(local, [], power, link) == pytest.approx(power.busy_mw * 10 / 1000)
