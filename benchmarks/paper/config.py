"""What one benchmark run measures, and how hard: one frozen dataclass the CLI fills in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Part number -> short name (the names are the results files' stems).
PARTS: dict[int, str] = {
    1: "paper",
    2: "cuts",
    3: "overhead",
    4: "throughput",
    5: "gpu",
}


def _default_image() -> Path:
    from collabdnn.samples import sample_dir

    return sample_dir() / "rocket.jpg"


@dataclass(frozen=True)
class BenchConfig:
    """Every knob of a run; the defaults are the full ``make bench`` (about 8 minutes here).

    ``requests`` is the number of timed requests per plan that part 1 reports (at least
    20 in the full run); part 2 measures the other single cuts with as many requests as
    fit ``cut_budget_s`` seconds each (at least ``min_cut_requests``), because on 3G a
    cut that sends conv1's output takes seconds per request.
    """

    parts: tuple[int, ...] = (1, 2, 3, 4, 5)
    models: tuple[str, ...] = ("alexnet", "alexnet-2012")
    networks: tuple[str, ...] = ("3g", "4g", "wifi")
    weights: str = "seed:0"
    requests: int = 20
    cut_budget_s: float = 5.0
    min_cut_requests: int = 5
    warmup: int = 1
    mobile_cpus: float = 0.25
    mobile_period_us: int = 10_000  # short CFS period: every unit slowed, no bursts
    mobile_threads: int = 1
    cloud_threads: int = 1
    profile_repeats: int = 20
    profile_warmup: int = 2
    served_requests: int = 15  # per side, to time each unit in the serving processes
    concurrency: tuple[int, ...] = (1, 2, 4)
    throughput_images: int = 12  # per client and concurrency level
    throughput_network: str = "wifi"
    hop_requests: int = 30
    image: Path = field(default_factory=_default_image)
    output: Path = Path("benchmarks/results")
    shape: bool = True
    quick: bool = False

    @classmethod
    def quick_config(cls, **overrides: Any) -> BenchConfig:
        """A smoke run: one model, one network, two requests, tiny profiles."""
        base: dict[str, Any] = {
            "models": ("alexnet",),
            "networks": ("wifi",),
            "requests": 2,
            "cut_budget_s": 0.01,
            "warmup": 0,
            "min_cut_requests": 1,
            "profile_repeats": 2,
            "profile_warmup": 1,
            "served_requests": 2,
            "concurrency": (1, 2),
            "throughput_images": 2,
            "hop_requests": 3,
            "quick": True,
        }
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["image"] = str(self.image)
        data["output"] = str(self.output)
        return data
