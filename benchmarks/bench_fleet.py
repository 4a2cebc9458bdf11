"""Many phones, one cloud fleet: throughput and latency, fleet-aware plans vs each
phone planning alone, against one and two cloud replicas (root: cgroups).

For each replica count (1, then 2) the benchmark starts that many cloud servers (one
torch thread each, each in its own cgroup of ``--cloud-quota`` CPU) and ``max(--phones)`` agents,
each in its own cgroup CPU quota (``--quota``, a phone that many times slower than a
core, with a 10 ms CFS period so that every unit is slowed evenly) and with an
emulated link (``--emulate-link``: even phones Wi-Fi, odd ones 3G). Agents reach the
replicas round robin (``ipv4:a,b``). A fleet scheduler (``--cloud-replicas``: it asks
each replica for its Capacity) is started fresh for each configuration, once with
``--independent`` (every phone plans alone) and once fleet-aware; the agents
re-register with their heartbeats. Then the first N phones each get an open-loop
client for ``--warmup`` seconds (plans settle) and ``--duration`` measured seconds. Recorded: fleet
throughput, p50/p99 latency, errors, fallbacks, and the scheduler's view (servers,
predicted utilisation alone and fleet-aware, K, the active phones' placements).

Everything shares one 2-core machine (with whatever else runs there): the phones'
quotas, the cloud replicas, the clients (open loop: each phone is sent ``--rate``
requests per second, as a camera stream would; its agent measures that rate and
reports it in its heartbeats, idle phones report none). Compare the modes and replica counts within
one run, not the absolute figures. Writes benchmarks/results/fleet.{json,md} and
fleet.png.

    sudo python -m benchmarks.bench_fleet [--phones 1 4 8 16] [--duration 8] [--warmup 4]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.bench_load import ClientStats, percentile
from benchmarks.common import RESULTS, markdown_table, write_results

log = logging.getLogger("bench_fleet")

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chelsea.png"
COMMON = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]
TIMEOUT_S = 10.0
FLEET_TIMING = ["--heartbeat-s", "0.5", "--agent-timeout-s", "6", "--capacity-poll-s", "2"]


def client(address: str, image: bytes, rate: float, stop_at: float, stats: ClientStats) -> None:
    """Open loop: one request every ``1 / rate`` s until ``stop_at``, each in its own
    thread (at most 16 in flight), on the agent's current plan. Latency counts from
    when the request was due, so a client that falls behind is not flattered."""
    import grpc

    from collabdnn.services import ClassifyRequest
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    request = ClassifyRequest((image,), None, top_k=1)
    lock = threading.Lock()
    with open_channel(address) as channel, ThreadPoolExecutor(16) as pool:
        stub = AgentStub(channel)

        def one(due: float) -> None:
            try:
                results = stub.classify(request, timeout=TIMEOUT_S)
            except grpc.RpcError as exc:
                with lock:
                    stats.errors[exc.code().name] += 1
                return
            with lock:
                stats.latencies_ms.append((time.monotonic() - due) * 1e3)
                stats.fallbacks += sum(r.fallback for r in results)

        due = time.monotonic()
        while due < stop_at:
            pool.submit(one, due)
            due += 1.0 / rate
            time.sleep(max(0.0, due - time.monotonic()))


def drive(
    addresses: list[str], image: bytes, rate: float, warmup: float, duration: float
) -> ClientStats:
    """Open-loop clients on every address: warm-up (not counted), then measured."""
    for seconds, keep in ((warmup, False), (duration, True)):
        stop_at = time.monotonic() + seconds
        per = [ClientStats() for _ in addresses]
        threads = [
            threading.Thread(target=client, args=(a, image, rate, stop_at, s))
            for a, s in zip(addresses, per, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if keep:
            merged = ClientStats()
            for s in per:
                merged.latencies_ms += s.latencies_ms
                merged.fallbacks += s.fallbacks
                merged.errors.update(s.errors)
            return merged
    raise AssertionError("unreachable")


def fleet_view(address: str) -> Any:
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import SchedulerStub

    with open_channel(address) as channel:
        return SchedulerStub(channel).get_fleet(timeout=10)


def wait_registered(address: str, count: int, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        view = fleet_view(address)
        if len(view.agents) >= count and all(a.plan.pushed for a in view.agents):
            return view
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(view.agents)} of {count} agents registered")
        time.sleep(0.2)


def phase(args: argparse.Namespace, replicas: int, logs: Path) -> list[dict[str, Any]]:
    """One replica count: clouds, agents, then every (mode, N)."""
    from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
    from collabdnn.netem.throttle import add_process, cpu_quota
    from collabdnn.planning.profiles import save_profile
    from collabdnn.testbed.procs import Service, start_healthy
    from collabdnn.testbed.stack import free_port
    from collabdnn.transport.channels import open_channel

    image = SAMPLE.read_bytes()
    fast = ProfileSettings(repeats=3, warmup=1)
    records: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        clouds = []
        for i in range(replicas):
            cloud = start_healthy("cloud", [*COMMON, "--workers", "4"], name=f"cloud{i}",
                                  log_dir=logs)  # fmt: skip
            stack.callback(cloud.stop)
            group = stack.enter_context(cpu_quota(args.cloud_quota, period_us=10_000))
            add_process(group, cloud.pid or 0)
            clouds.append(cloud)
        addresses = [c.address for c in clouds]
        target = addresses[0] if replicas == 1 else "ipv4:" + ",".join(addresses)
        if not (logs / "cloud.json").exists():
            with open_channel(addresses[0]) as channel:
                photo = [image]
                save_profile(fetch_profile(channel, "cloud", photo, fast), logs / "cloud.json")
        port = free_port()
        n_max = max(args.phones)
        agents = []
        for i in range(n_max):
            network = "wifi" if i % 2 == 0 else "3g"
            agent = Service(
                "mobile",
                [*COMMON, "--cloud", target, "--scheduler", f"127.0.0.1:{port}",
                 "--agent-id", f"phone-{i:02d}", "--heartbeat-s", "0.5",
                 "--plan-slowdown", f"{1 / args.quota:g}", "--network", network,
                 "--emulate-link", network, "--no-probe"],
                name=f"phone-{i:02d}", log_dir=logs,
            )  # fmt: skip
            stack.callback(agent.stop)
            agents.append(agent.start())
        for agent in agents:
            agent.wait_healthy(timeout=300)
        if not (logs / "mobile.json").exists():  # the phone's profile, before its quota
            with open_channel(agents[0].address) as channel:
                mobile = fetch_profile(channel, "mobile", [image], fast)
            save_profile(mobile, logs / "mobile.json")
        for agent in agents:
            group = stack.enter_context(cpu_quota(args.quota, period_us=10_000))
            add_process(group, agent.pid or 0)
        for mode in ("alone", "fleet"):
            for n in args.phones:
                scheduler = start_healthy(
                    "scheduler",
                    ["--cloud", addresses[0], "--cloud-replicas", ",".join(addresses),
                     "--mobile-profile", str(logs / "mobile.json"),
                     "--cloud-profile", str(logs / "cloud.json"), "--port", str(port),
                     *FLEET_TIMING, *(["--independent"] if mode == "alone" else [])],
                    name=f"scheduler-{replicas}-{mode}-{n}", log_dir=logs,
                )  # fmt: skip
                try:
                    wait_registered(scheduler.address, n_max)
                    stats = drive([a.address for a in agents[:n]], image, args.rate,
                                  args.warmup, args.duration)  # fmt: skip
                    view = fleet_view(scheduler.address)
                finally:
                    scheduler.stop()
                records.append(_record(replicas, mode, n, stats, view, args.duration))
                log.info("%s", records[-1]["summary"])
    return records


def _record(
    replicas: int, mode: str, n: int, stats: ClientStats, view: Any, duration: float
) -> dict[str, Any]:
    lat = stats.latencies_ms
    active = {f"phone-{i:02d}" for i in range(n)}
    plans = {a.agent_id: a.plan.plan.spec for a in view.agents if a.agent_id in active}
    offloading = sum("C" in spec for spec in plans.values())
    record = {
        "replicas": replicas,
        "mode": mode,
        "phones": n,
        "completed": len(lat),
        "throughput_rps": len(lat) / duration,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "errors": dict(stats.errors),
        "fallbacks": stats.fallbacks,
        "servers": view.servers,
        "capacity_source": view.capacity_source,
        "utilisation_predicted": view.utilisation,
        "utilisation_alone_predicted": view.utilisation_alone,
        "cloud_load_k": view.cloud_load,
        "plans": plans,
        "offloading_phones": offloading,
    }
    record["summary"] = (
        f"{replicas} replica(s) {mode:5} N={n:2}: {record['throughput_rps']:.1f} req/s, "
        f"p50 {record['p50_ms']:.0f} ms, p99 {record['p99_ms']:.0f} ms, "
        f"{offloading}/{n} offloading, servers {view.servers:g}, "
        f"predicted utilisation {view.utilisation:.0%} (alone {view.utilisation_alone:.0%})"
    )
    return record


def table(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    headers = ["replicas", "phones", "plans", "req/s", "p50 ms", "p99 ms", "errors",
               "phones offloading", "servers learned", "predicted utilisation"]  # fmt: skip
    rows = [
        [str(r["replicas"]), str(r["phones"]),
         "fleet-aware" if r["mode"] == "fleet" else "each alone",
         f"{r['throughput_rps']:.1f}", f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}",
         str(sum(r["errors"].values())), f"{r['offloading_phones']}/{r['phones']}",
         f"{r['servers']:.2f}",
         f"{r['utilisation_predicted']:.0%}" + (
             f" (alone {r['utilisation_alone_predicted']:.0%})" if r["mode"] == "fleet" else "")]
        for r in records
    ]  # fmt: skip
    return (
        f"AlexNet; phones: agents in cgroups of {args.quota:g} CPU (10 ms period), even "
        "ones on an emulated Wi-Fi link, odd ones on emulated 3G, each sent "
        f"{args.rate:g} requests/s open loop (the rate their heartbeats report); "
        f"{args.warmup:g} s warm-up, {args.duration:g} s measured; latency from when a "
        f"request was due, errors: refused or past the {TIMEOUT_S:g} s deadline; cloud "
        f"replicas of one torch thread, each in a cgroup of {args.cloud_quota:g} CPU. One "
        "2-core machine shared by all of it and by other work: under contention, compare "
        "rows, not absolute figures.\n\n" + markdown_table(headers, rows)
    )


def plot(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for replicas in sorted({r["replicas"] for r in records}):
        for mode, style in (("alone", "--"), ("fleet", "-")):
            rows = [r for r in records if r["replicas"] == replicas and r["mode"] == mode]
            if not rows:
                continue
            label = f"{replicas} replica(s), {'fleet-aware' if mode == 'fleet' else 'alone'}"
            n = [r["phones"] for r in rows]
            left.plot(n, [r["throughput_rps"] for r in rows], style, marker="o", label=label)
            right.plot(n, [r["p99_ms"] for r in rows], style, marker="o", label=label)
    left.set(xlabel="phones", ylabel="fleet throughput (req/s)", title="Throughput")
    right.set(xlabel="phones", ylabel="p99 latency (ms)", title="p99 latency", yscale="log")
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--quota", type=float, default=0.1, help="CPUs of each phone")
    parser.add_argument("--cloud-quota", type=float, default=0.25, help="CPUs of each replica")
    parser.add_argument("--rate", type=float, default=2.0, help="requests/s of each phone")
    parser.add_argument(
        "--table-only", action="store_true", help="rebuild fleet.md and fleet.png from fleet.json"
    )
    args = parser.parse_args()
    if args.table_only:
        import json

        data = json.loads((RESULTS / "fleet.json").read_text())
        for key in ("duration", "warmup", "quota", "cloud_quota", "rate"):
            setattr(args, key, data.get(f"{key}_s", data.get(f"{key}_cpus", data.get(key))))
        (RESULTS / "fleet.md").write_text(table(data["records"], args) + "\n")
        plot(data["records"], RESULTS / "fleet.png")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logs = Path(tempfile.mkdtemp(prefix="collabdnn-fleet-"))
    log.info("logs in %s", logs)
    records = []
    for replicas in args.replicas:
        records += phase(args, replicas, logs)
    md = table(records, args)
    write_results(
        "fleet",
        {"phones": args.phones, "duration_s": args.duration, "warmup_s": args.warmup,
         "quota_cpus": args.quota, "cloud_quota_cpus": args.cloud_quota, "rate": args.rate,
         "records": records},
        md,
    )  # fmt: skip
    plot(records, RESULTS / "fleet.png")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
