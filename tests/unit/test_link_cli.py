"""``collabdnn link`` and collabdnn.netem.shaping without root: errors, commands, parsing."""

from __future__ import annotations

import subprocess

import pytest

from collabdnn.cli import main
from collabdnn.netem import shaping
from collabdnn.planning.link import Link

CANNED = {
    ("tc", "qdisc"): "qdisc htb 1: root refcnt 2 r2q 10 default 0x30 direct_packets_stat 0\n"
    "qdisc netem 10: parent 1:10 limit 100000 delay 20ms\n"
    "qdisc netem 20: parent 1:20 limit 100000 delay 20ms\n",
    ("tc", "class"): "class htb 1:10 root leaf 10: prio 0 rate 5Mbit ceil 5Mbit burst 1600b\n"
    "class htb 1:20 root leaf 20: prio 0 rate 18880Kbit ceil 18880Kbit burst 1600b\n"
    "class htb 1:30 root prio 0 rate 10Gbit ceil 10Gbit burst 0b cburst 0b\n",
    ("tc", "filter"): "filter parent 1: protocol ip pref 1 u32 chain 0 fh 800::800 "
    "order 2048 key ht 800 bkt 0 *flowid 1:10 not_in_hw\n  match 0000c383/0000ffff at 20\n",
    ("ip", "link"): "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 1500 qdisc htb state UNKNOWN\n",
}


@pytest.fixture
def fake_root(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Pretend to be root with tc installed; record commands instead of running them."""
    calls: list[list[str]] = []

    def fake_call(args, netns, check=True):  # type: ignore[no-untyped-def]
        calls.append(list(args))
        out = CANNED.get((args[0], args[1]), "") if "show" in args else ""
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(shaping.os, "geteuid", lambda: 0)
    monkeypatch.setattr(shaping.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(shaping, "_call", fake_call)
    return calls


def test_not_root_says_why(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(shaping.os, "geteuid", lambda: 1000)
    with pytest.raises(shaping.ShapingError, match="root"):
        shaping.apply(Link(1, 1, 10))
    assert main(["link", "set", "--network", "4g"]) == 1
    err = capsys.readouterr().err
    assert "needs root" in err and "emulated" in err
    assert main(["link", "clear"]) == 1


def test_missing_tc_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shaping.os, "geteuid", lambda: 0)
    monkeypatch.setattr(shaping.shutil, "which", lambda tool: None)
    with pytest.raises(shaping.ShapingError, match="not installed"):
        shaping.clear("lo")


def test_set_needs_network_or_all_figures(capsys) -> None:
    assert main(["link", "set", "--up-mbps", "5"]) == 2
    assert "--network" in capsys.readouterr().err


def test_asymmetric_on_lo_needs_a_port(fake_root) -> None:
    with pytest.raises(shaping.ShapingError, match="cloud-port"):
        shaping.apply(Link(5, 10, 40))


def test_apply_builds_htb_classes_filters_and_delay(fake_root) -> None:
    result = shaping.apply(Link(5, 10, 40), cloud_port=50051)
    assert result.delay_shaped
    joined = [" ".join(c) for c in fake_root]
    assert "ip link set dev lo mtu 1500" in joined
    assert any("htb default 30" in c for c in joined)
    assert any("classid 1:10 htb rate 5000000bit" in c for c in joined)
    assert any("classid 1:20 htb rate 10000000bit" in c for c in joined)
    assert any("match ip dport 50051 0xffff flowid 1:10" in c for c in joined)
    assert any("match ip sport 50051 0xffff flowid 1:20" in c for c in joined)
    assert any("parent 1:10 handle 10: netem delay 20.000ms" in c for c in joined)
    assert any("parent 1:20 handle 20: netem delay 20.000ms" in c for c in joined)


def test_symmetric_without_port_shapes_everything(fake_root) -> None:
    shaping.apply(Link(8, 8, 20))
    joined = [" ".join(c) for c in fake_root]
    assert any("htb default 10" in c for c in joined)
    assert not any("classid 1:20" in c or "filter" in c for c in joined)


def test_no_netem_shapes_rates_only(fake_root, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shaping, "_add_delay", lambda *a: False)
    assert not shaping.apply(Link(8, 8, 20)).delay_shaped
    with pytest.raises(shaping.ShapingError, match="netem"):
        shaping.apply(Link(8, 8, 20), require_delay=True)


def test_status_reads_figures_back(fake_root) -> None:
    st = shaping.status("lo")
    assert st.shaped
    assert st.up_mbps == 5.0
    assert st.down_mbps == 18.88
    assert st.rtt_ms == 40.0
    assert st.cloud_port == 50051
    assert st.mtu == 1500


def test_eth0_shapes_the_uplink_only_and_says_so(fake_root, capsys) -> None:
    """A container's eth0: egress is the uplink; no downlink class, whole RTT on 1:10."""
    result = shaping.apply(Link(1.1, 2.0, 150), interface="eth0", cloud_port=50051)
    assert result.delay_shaped and not result.downlink_shaped
    joined = [" ".join(c) for c in fake_root]
    assert not any("mtu" in c for c in joined)  # only the loopback's MTU is lowered
    assert any("classid 1:10 htb rate 1100000bit" in c for c in joined)
    assert not any("1:20" in c or "sport" in c for c in joined)
    assert any("match ip dport 50051 0xffff flowid 1:10" in c for c in joined)
    assert any("parent 1:10 handle 10: netem delay 150.000ms" in c for c in joined)
    assert main(["link", "set", "--network", "3g", "--interface", "eth0"]) == 0
    assert "down NOT shaped (egress only)" in capsys.readouterr().out


def test_status_off_the_loopback_reports_no_downlink(fake_root, capsys) -> None:
    """Even with a downlink class left on it, eth0's downlink is not shaped."""
    import json

    st = shaping.status("eth0")
    assert st.shaped and st.up_mbps == 5.0 and st.rtt_ms == 20.0
    assert st.down_mbps is None and not st.downlink_shaped
    assert shaping.status("lo").downlink_shaped
    assert main(["link", "show", "--json", "--interface", "eth0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["down_mbps"] is None and data["downlink_shaped"] is False


def test_interface_comes_from_the_environment(fake_root, capsys, monkeypatch) -> None:
    """COLLABDNN_INTERFACE (the Compose file's mobile container) reaches set, show, clear."""
    import json

    monkeypatch.setenv("COLLABDNN_INTERFACE", "eth0")
    assert main(["link", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interface"] == "eth0"
    assert main(["link", "clear"]) == 0
    assert fake_root[-1][:5] == ["tc", "qdisc", "del", "dev", "eth0"]


def test_show_json(fake_root, capsys) -> None:
    import json

    assert main(["link", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["up_mbps"] == 5.0 and data["cloud_port"] == 50051


def test_link_modules_do_not_import_torch() -> None:
    import sys

    code = (
        "import sys, collabdnn.cli.link, collabdnn.netem.shaping, collabdnn.netem.netns, "
        "collabdnn.measure.emulated, collabdnn.measure.linkest, collabdnn.transport.probe; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
