"""``collabdnn demo`` runs end to end (its own services) and cleans up after itself.

With its defaults: a weaker phone (a CPU quota as root, else the planner's slowdown) on
a 4G link (tc in a namespace as root, else emulated), and the "why" of its plan."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.common import REPO, SAMPLES


@pytest.mark.slow
def test_demo_json_on_one_image() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "collabdnn",
            "demo",
            "--json",
            "--weights",
            "seed:0",
            "--images",
            str(SAMPLES / "chelsea.png"),
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["labels_meaningful"] is False
    # By default a weaker phone on a 4G link, and why the plan is what it is.
    assert "4g preset" in report["link"] and "phone:" in report["mobile"]
    why = report["why"]
    assert set(why["rows"]) == {"mobile only", "cloud only", "this plan"}
    assert why["rows"]["cloud only"]["crossings"][0].endswith("(photo)")
    assert why["verdict"]
    specs = [run["spec"] for run in report["runs"]]
    assert specs[:3] == ["mobile", "cloud", "MMMCCCCCCMMM"]
    tops = {run["results"][0]["top5"][0]["label"] for run in report["runs"]}
    assert len(tops) == 1, "every placement must give the same answer"
    assert "cloud stopped (exit 0)" in done.stderr and "mobile stopped (exit 0)" in done.stderr
