"""``collabdnn demo`` runs end to end (its own services) and cleans up after itself."""

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
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["labels_meaningful"] is False
    specs = [run["spec"] for run in report["runs"]]
    assert specs[:3] == ["mobile", "cloud", "MMMCCCCCCMMM"]
    tops = {run["results"][0]["top5"][0]["label"] for run in report["runs"]}
    assert len(tops) == 1, "every placement must give the same answer"
    assert "cloud stopped (exit 0)" in done.stderr and "mobile stopped (exit 0)" in done.stderr
