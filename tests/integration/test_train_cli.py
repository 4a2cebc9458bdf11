"""``collabdnn train`` against the real services (the session's alexnet pair): a short
split run over the real link, and the services still serve inference with the weights
they loaded."""

from __future__ import annotations

import json

from collabdnn.testbed.procs import Service
from tests.common import image_folder
from tests.integration.test_cli_clients import HEAVY, collabdnn, imported


def test_train_runs_split_with_the_real_services(agent: Service, tmp_path) -> None:
    from tests.common import SAMPLES

    photos = [p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix in {".png", ".jpg"}]
    folder = image_folder(tmp_path, photos)
    done = collabdnn(
        "train", "--insecure", "--agent", agent.address, "--data", str(folder),
        "--steps", "2", "--batch-size", "2", "--lr", "0.001",
        "--placement", "MMMCCCCCCMMM", "--json",
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert [s["step"] for s in out["steps"]] == [1, 2] and out["skipped"] == 3
    assert all(s["bytes_up"] > 0 and s["bytes_down"] > 0 for s in out["steps"])
    assert out["weights_hash"] != out["start_weights_hash"]
    assert not imported(done.stderr) & HEAVY - {"PIL"}  # a thin client: no torch
    # inference still runs split, with the weights both sides loaded
    done = collabdnn(
        "classify", "--insecure", "--agent", agent.address, "--placement", "MMMCCCCCCMMM",
        "--json", str(SAMPLES / "chelsea.png"),
    )  # fmt: skip
    assert done.returncode == 0 and not json.loads(done.stdout)[0]["fallback"]
