"""Shape a real network interface with ``tc`` so that split inference sees a real link.

Why real shaping: an in-process sleep cannot reproduce what TCP and HTTP/2 do on a slow
link (slow start, flow-control windows, head-of-line blocking), and the link estimator
has to be tested against the real thing.  Rules are put on the interface of the
*current* network namespace (or of ``netns`` when given), normally the loopback of a
private namespace created with :class:`collabdnn.netem.netns.NetNamespace`, so that nothing
outside it is touched.

Layout (see docs/link.md)::

    root htb 1: (default class 1:30 when a cloud port is given, else 1:10)
      class 1:10  uplink rate    -> netem 10: delay RTT/2   (filter: dport == cloud port)
      class 1:20  downlink rate  -> netem 20: delay RTT/2   (filter: sport == cloud port)
      class 1:30  unshaped (10 Gbit/s), everything else on the interface

On a loopback every packet crosses ``lo`` once, requests and replies alike, so a packet
*to* the cloud's port is uplink, a packet *from* it is downlink, and half the RTT on each
gives the full RTT.  Without a cloud port there is no way to tell the directions apart,
so the rates must be equal and every packet goes through 1:10.  The loopback MTU is
lowered to 1500 (and its GSO size with it) so that the token bucket meters
Ethernet-sized packets rather than 64 KiB bursts.

On any other interface (a container's ``eth0``) only egress can be shaped: the uplink,
class 1:10 (packets to the cloud's port, or every packet without one), with the whole
RTT as its delay.  No downlink class is made there, and :func:`status` reports the
downlink as not shaped (``down_mbps`` None, ``downlink_shaped`` False).

Kernels built without ``sch_netem`` cannot delay packets; :func:`apply` then shapes the
rates only, logs a warning and says so in its result (``delay_shaped=False``), unless
``require_delay`` asks it to fail instead.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from collabdnn.errors import CollabError
from collabdnn.planning.link import Link

__all__ = ["ShapeResult", "ShapingError", "ShapingStatus", "apply", "clear", "show", "status"]

log = logging.getLogger(__name__)

LOOPBACK_MTU = 1500
LOOPBACK_DEFAULT_MTU = 65536
UNSHAPED_RATE = "10gbit"
_TC_TIMEOUT_S = 20.0
# htb class minor numbers; tc reads them as hex, and so do we when parsing.
_UP, _DOWN, _OTHER = "10", "20", "30"


class ShapingError(CollabError):
    """Shaping cannot be done here (not root, no ``tc``, kernel refused); says why."""


@dataclass(frozen=True)
class ShapeResult:
    """What :func:`apply` put on the interface."""

    interface: str
    link: Link
    cloud_port: int | None
    delay_shaped: bool
    # False on an interface other than lo: only its egress (the uplink) is shaped, and
    # link.down_mbps is what was asked for, not what the interface does.
    downlink_shaped: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "link": self.link.to_dict()}


@dataclass(frozen=True)
class ShapingStatus:
    """The shaping found on an interface, read back from the kernel (not from a file)."""

    interface: str
    shaped: bool
    up_mbps: float | None = None
    down_mbps: float | None = None  # None when the downlink is not shaped
    downlink_shaped: bool = False
    rtt_ms: float | None = None  # None: no delay is applied (e.g. no netem)
    cloud_port: int | None = None
    mtu: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_loopback(interface: str) -> bool:
    return interface == "lo"


def _prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def _check_privileges() -> None:
    if not hasattr(os, "geteuid"):
        raise ShapingError("shaping with tc needs Linux")
    if os.geteuid() != 0:
        raise ShapingError(
            "shaping with tc needs root (CAP_NET_ADMIN); run as root, ideally inside a "
            "private network namespace, or use the emulated shaper (collabdnn.measure.emulated)"
        )
    for tool in ("tc", "ip"):
        if shutil.which(tool) is None:
            raise ShapingError(f"{tool!r} is not installed (package iproute2)")


def _call(
    args: Sequence[str], netns: str | None, check: bool = True
) -> subprocess.CompletedProcess:
    cmd = [*_prefix(netns), *args]
    log.debug("running %s", " ".join(cmd))
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=_TC_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise ShapingError(f"{cmd[0]!r} is not installed (package iproute2)") from exc
    except subprocess.TimeoutExpired as exc:
        raise ShapingError(f"{' '.join(cmd)} did not finish in {_TC_TIMEOUT_S:.0f} s") from exc
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip()
        if "Operation not permitted" in message:
            message += " (needs root / CAP_NET_ADMIN)"
        raise ShapingError(f"{' '.join(args)}: {message}")
    return result


def _bits(mbps: float) -> str:
    return f"{round(mbps * 1e6)}bit"


def _add_delay(interface: str, classid: str, delay_ms: float, netns: str | None) -> bool:
    """Add a netem child with ``delay_ms`` under ``classid``; False if netem is missing."""
    result = _call(
        [
            "tc", "qdisc", "add", "dev", interface, "parent", f"1:{classid}",
            "handle", f"{classid}:", "netem", "delay", f"{delay_ms:.3f}ms", "limit", "100000",
        ],
        netns,
        check=False,
    )  # fmt: skip
    if result.returncode == 0:
        return True
    message = (result.stderr or result.stdout).strip()
    if "unknown" in message.lower():
        return False
    raise ShapingError(f"adding netem delay on {interface}: {message}")


def apply(
    link: Link,
    interface: str = "lo",
    cloud_port: int | None = None,
    *,
    require_delay: bool = False,
    netns: str | None = None,
) -> ShapeResult:
    """Shape ``interface`` to ``link``, replacing any root qdisc already there.

    ``cloud_port`` separates uplink (packets to it) from downlink (packets from it); it
    is required on a loopback when the two rates differ.  ``netns`` runs every command
    inside that named namespace instead of the current one.
    """
    _check_privileges()
    if cloud_port is not None and not 0 < cloud_port < 65536:
        raise ShapingError(f"cloud port must be in 1..65535, got {cloud_port}")
    loopback = _is_loopback(interface)
    if cloud_port is None and loopback and link.up_mbps != link.down_mbps:
        raise ShapingError(
            "uplink and downlink rates differ, but on a loopback both directions share "
            "one interface: give the cloud server's port (--cloud-port) to tell them apart"
        )
    if not loopback:
        log.warning(
            "%s is not a loopback: only its egress (the uplink) is shaped, with the whole "
            "RTT as delay; the downlink is not shaped",
            interface,
        )
    clear(interface, netns=netns)
    if loopback:
        _call(["ip", "link", "set", "dev", interface, "mtu", str(LOOPBACK_MTU)], netns)
        gso = _call(
            ["ip", "link", "set", "dev", interface, "gso_max_size", str(LOOPBACK_MTU)],
            netns,
            check=False,
        )
        if gso.returncode != 0:
            log.info("cannot lower the GSO size of %s: %s", interface, gso.stderr.strip())
    split = cloud_port is not None
    default = _OTHER if split else _UP
    try:
        _call(
            ["tc", "qdisc", "add", "dev", interface, "root", "handle", "1:", "htb",
             "default", default],
            netns,
        )  # fmt: skip
        classes = [(_UP, link.up_mbps)]
        if split and loopback:
            classes.append((_DOWN, link.down_mbps))
        for minor, mbps in classes:
            _call(
                ["tc", "class", "add", "dev", interface, "parent", "1:", "classid",
                 f"1:{minor}", "htb", "rate", _bits(mbps), "ceil", _bits(mbps),
                 "quantum", "1514"],
                netns,
            )  # fmt: skip
        if split:
            _call(
                ["tc", "class", "add", "dev", interface, "parent", "1:", "classid",
                 f"1:{_OTHER}", "htb", "rate", UNSHAPED_RATE, "quantum", "65536"],
                netns,
            )  # fmt: skip
            directions = (("dport", _UP), ("sport", _DOWN)) if loopback else (("dport", _UP),)
            _add_port_filters(interface, cloud_port, directions, netns)  # type: ignore[arg-type]
        delay_shaped = True
        if link.rtt_ms > 0:
            one_way = link.rtt_ms / 2 if loopback else link.rtt_ms
            for minor, _ in classes:
                if not _add_delay(interface, minor, one_way, netns):
                    delay_shaped = False
                    break
            if not delay_shaped:
                if require_delay:
                    raise ShapingError(
                        "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so the "
                        "RTT cannot be shaped; rates alone can be (require_delay=False)"
                    )
                log.warning(
                    "no netem qdisc in this kernel: rates shaped, RTT of %.1f ms NOT applied",
                    link.rtt_ms,
                )
    except ShapingError:
        clear(interface, netns=netns)
        raise
    log.info(
        "shaped %s: up %.3g Mbit/s, down %s, RTT %s, cloud port %s",
        interface,
        link.up_mbps,
        f"{link.down_mbps:.3g} Mbit/s" if loopback else "not shaped (egress only)",
        f"{link.rtt_ms:g} ms" if delay_shaped else "not shaped",
        cloud_port,
    )
    return ShapeResult(interface, link, cloud_port, delay_shaped, downlink_shaped=loopback)


def _add_port_filters(
    interface: str, port: int, directions: Sequence[tuple[str, str]], netns: str | None
) -> None:
    """u32 filters sending packets whose ``field`` (dport, sport) is ``port`` to a class."""
    prio = 1
    for proto, match in (("ip", "ip"), ("ipv6", "ip6")):
        for field, minor in directions:
            _call(
                ["tc", "filter", "add", "dev", interface, "parent", "1:", "protocol", proto,
                 "prio", str(prio), "u32", "match", match, field, str(port), "0xffff",
                 "flowid", f"1:{minor}"],
                netns,
            )  # fmt: skip
            prio += 1


def clear(interface: str = "lo", *, netns: str | None = None) -> None:
    """Remove our shaping from ``interface`` (no error if there is none)."""
    _check_privileges()
    result = _call(["tc", "qdisc", "del", "dev", interface, "root"], netns, check=False)
    message = (result.stderr or "").strip()
    if result.returncode != 0 and not any(
        benign in message for benign in ("handle of zero", "No such file", "Invalid handle")
    ):
        raise ShapingError(f"removing the qdisc from {interface}: {message}")
    if _is_loopback(interface):
        for option in ("mtu", "gso_max_size"):
            _call(
                ["ip", "link", "set", "dev", interface, option, str(LOOPBACK_DEFAULT_MTU)],
                netns,
                check=False,
            )


def show(interface: str = "lo", *, netns: str | None = None) -> str:
    """The raw ``tc`` view of the interface: qdiscs, classes and filters."""
    parts = []
    for what in ("qdisc", "class", "filter"):
        result = _call(["tc", what, "show", "dev", interface], netns, check=False)
        if result.returncode != 0:
            raise ShapingError(f"tc {what} show dev {interface}: {result.stderr.strip()}")
        parts.append(f"# tc {what} show dev {interface}\n{result.stdout.rstrip()}")
    return "\n".join(parts) + "\n"


_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_CLASS_RE = re.compile(r"^class htb 1:(\w+) .*?\brate ([\d.]+)([KMGT]?)bit", re.M | re.I)
_NETEM_RE = re.compile(r"^qdisc netem (\w+): .*?\bdelay ([\d.]+)(us|ms|s)\b", re.M)
_MATCH_RE = re.compile(r"match ([0-9a-f]{8})/([0-9a-f]{8}) at (\d+)")
_MTU_RE = re.compile(r"\bmtu (\d+)")


def status(interface: str = "lo", *, netns: str | None = None) -> ShapingStatus:
    """Read the shaping on ``interface`` back from the kernel and turn it into figures."""
    text = show(interface, netns=netns)
    mtu_out = _call(["ip", "link", "show", "dev", interface], netns, check=False).stdout
    mtu_match = _MTU_RE.search(mtu_out)
    mtu = int(mtu_match.group(1)) if mtu_match else None
    if not re.search(r"^qdisc htb 1: root", text, re.M):
        return ShapingStatus(interface, shaped=False, mtu=mtu)
    rates = {
        minor: float(value) * _UNITS[unit.lower()] / 1e6
        for minor, value, unit in _CLASS_RE.findall(text)
    }
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    delays = {handle: float(value) * scale[unit] for handle, value, unit in _NETEM_RE.findall(text)}
    port = None
    for value, mask, _offset in _MATCH_RE.findall(text):
        if mask == "0000ffff":
            port = int(value, 16) & 0xFFFF
        elif mask == "ffff0000":
            port = int(value, 16) >> 16
        if port is not None:
            break
    up = rates.get(_UP)
    # Off the loopback only egress is shaped: whatever the classes say, the downlink is not.
    loopback = _is_loopback(interface)
    down = rates.get(_DOWN, up) if loopback else None
    rtt: float | None = None
    if delays:
        if loopback:
            rtt = delays.get(_UP, 0.0) + delays.get(_DOWN, delays.get(_UP, 0.0))
        else:
            rtt = delays.get(_UP, 0.0)
    return ShapingStatus(
        interface,
        shaped=up is not None,
        up_mbps=up,
        down_mbps=down,
        downlink_shaped=down is not None,
        rtt_ms=None if rtt is None else round(rtt, 3),
        cloud_port=port,
        mtu=mtu,
    )
