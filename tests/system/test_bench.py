"""``collabdnn bench --quick`` runs end to end and writes every part's files.

One smoke run (alexnet, Wi-Fi, 2 requests per plan, tiny profiles) into a temporary
folder, its phone a quota of one CPU (not the default quarter: the same cgroup path, a
quarter of the wait for the mobile side's requests): as root the link is shaped in a
private namespace (deleted afterwards); without root the shaped parts must say they
were skipped, and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common import REPO

PARTS = ("paper", "cuts", "overhead", "throughput", "gpu")


def _namespaces() -> set[str]:
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


@pytest.mark.slow
def test_quick_bench_writes_every_part(tmp_path: Path) -> None:
    before = _namespaces()
    done = subprocess.run(
        [sys.executable, "-m", "collabdnn", "bench", "--quick", "--mobile-cpus", "1",
         "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=170, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert not {n for n in _namespaces() - before if n.startswith("collabdnn-bench")}
    data = {p: json.loads((tmp_path / f"bench_{p}.json").read_text()) for p in PARTS}
    for part, d in data.items():
        assert (tmp_path / f"bench_{part}.md").read_text().strip(), part
        assert d["benchmark"] == f"bench_{part}" and "machine" in d and "created" in d

    paper, cuts = data["paper"], data["cuts"]
    if "skipped" in paper:  # not root: said why, and nothing else pretends to be shaped
        assert "skipped" in cuts
        assert "shaped" in paper["skipped"]
    else:
        entry = paper["models"]["alexnet"]["wifi"]
        for objective in ("latency", "energy"):
            obj = entry["objectives"][objective]
            assert set(obj["strategies"]) == {
                "mobile_only",
                "cloud_only",
                "best_single_cut",
                "collabdnn",
            }
            for s in obj["strategies"].values():
                assert s["measured"]["n"] >= 2
                assert s["measured"]["median_ms"] > 0 and s["measured"]["p95_ms"] > 0
                assert s["predicted"]["mobile_energy_mj"] > 0
                assert s["bound"]["total_ms"] > 0
            assert {"vs", "latency_measured_pct", "energy_modelled_pct"} <= set(obj["improvement"])
        share = entry["communication_share_cloud_only"]
        assert 0 < share["measured"] < 1 and 0 < share["modelled"] < 1
        assert paper["profiles"]["alexnet"]["ratio_total"] > 0
        assert "netem" in paper["setup"]["rtt"] or "RTT" in paper["setup"]["rtt"]
        c = cuts["models"]["alexnet"]["wifi"]
        assert len([r for r in c["rows"] if r["cut"] is not None]) == 13  # cuts 0..12
        assert {"pick_ok", "pick_gap_pct", "median_abs_error_pct"} <= set(c)
        assert (tmp_path / "bench_paper_latency.png").stat().st_size > 0
        assert (tmp_path / "bench_cuts_predicted_vs_measured.png").stat().st_size > 0

    hop = data["overhead"]["hop"]["cuts"][0]
    assert {"collabdnn", "grpc_echo_ms", "torch_rpc", "ratios"} <= set(hop)
    assert hop["torch_rpc"]["latency_ms"] > 0
    levels = data["throughput"]["levels"]
    assert [lv["clients"] for lv in levels] == [1, 2]
    assert all(lv["images_per_s"] > 0 for lv in levels)
    assert data["throughput"]["bound_images_per_s"] > 0
    gpu = data["gpu"]
    assert "models" in gpu or gpu["skipped"] in {
        "no CUDA device",
        "no CUDA run without shaped links",
    }
