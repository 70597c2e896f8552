"""A fleet on one PostgreSQL: how fast a change reaches every replica, what writes cost the serving, and what one
change costs a replica whose store holds 10,000 documents.

    .venv/bin/python benchmarks/bench_replicas.py [--quick] [--json OUT.json]

Starts a throw-away PostgreSQL (tests/pg_support.py: pgserver's binaries, or Debian's) and real `verdict serve`
processes with `--store postgresql://...` and a 5 s poll interval, so what is measured is the push (NOTIFY), not the
poll. Parts:

- propagation: 3 replicas; 50 writes (PutDocument and SetSelection alternating, each through the next replica);
  for each, the time from the write's answer until all three replicas answer with the new version (each replica is
  asked by its own thread, with 1 ms between questions). p50, p99, max.
- serving under writes: Evaluate calls/s on one replica (4 client threads) with no writes, then with a
  PutDocument landing on another replica every second; failed calls are counted (there must be none).
- one change: in this process, a Catalog over a store of 1 and of 10,000 rule sets; the time of the reload after
  one PutDocument (fetch and compile only what changed), beside the old path that rereads every head.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))  # pg_support: the tests' throw-away PostgreSQL

import documents  # noqa: E402
import servers  # noqa: E402
from pg_support import PostgresServer  # noqa: E402

import verdict  # noqa: E402

RULE_SET = "bench.flag"
TABLE = "order-events"
TOPIC = "order.status.paid"
# Between two questions to one replica: asking without a pause would load the replica with our own calls while it
# is reloading (and the 2 cores with three busy loops), measuring the benchmark more than the push.
POLL_GAP_S = 0.001


def flag(value: int) -> str:
    return (
        f"kind: RuleSet\nname: {RULE_SET}\ndefault: {{flag: {value}}}\n"
        "rules:\n  - id: never\n    when: 'false'\n    then: {flag: -1}\n"
    )


def summary_ms(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    return {
        "count": len(ordered),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


# ------------------------------------------------------------------------------------------------- propagation


def rule_set_version(client: verdict.Client) -> int:
    try:
        return client.evaluate(RULE_SET, {}).version
    except verdict.NotFound:  # this replica has not loaded the first version yet
        return 0


def table_version(client: verdict.Client) -> int:
    routing = client.route(TOPIC, tags=["PAID"], key="k", body={"amount": 1})
    return max(item.version for item in [*routing.destinations, *routing.skipped] if item.table == TABLE)


def wait_all(clients: list[verdict.Client], read: Callable[[verdict.Client], int], version: int) -> float:
    """Seconds until every client's replica answers `version` (each asked by its own thread, as fast as it can)."""
    seen = [0.0] * len(clients)

    def watch(index: int) -> None:
        while read(clients[index]) < version:
            time.sleep(POLL_GAP_S)
        seen[index] = time.perf_counter()

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if not all(seen):
        raise RuntimeError(f"a replica did not answer version {version} within 30 s")
    return max(seen)


def propagation(replicas: list[servers.ServerProcess], writes: int) -> dict:
    clients = [verdict.Client(r.target, token=r.token, retries=0) for r in replicas]
    try:
        base = clients[0].put_document(flag(0)).version
        wait_all(clients, rule_set_version, base)
        put_s, select_s = [], []
        for n in range(writes):
            writer = clients[n % len(clients)]
            if n % 2 == 0:
                version = writer.put_document(flag(n + 1)).version
                answered = time.perf_counter()
                put_s.append(wait_all(clients, rule_set_version, version) - answered)
            else:
                version = writer.set_selection(TABLE, "crm", selected=n % 4 == 1).version
                answered = time.perf_counter()
                select_s.append(wait_all(clients, table_version, version) - answered)
        return {
            "replicas": len(replicas),
            "writes": writes,
            "all": summary_ms(put_s + select_s),
            "put_document": summary_ms(put_s),
            "set_selection": summary_ms(select_s),
        }
    finally:
        for client in clients:
            client.close()


# ------------------------------------------------------------------------------------------ serving under writes


def evaluate_rate(target: str, seconds: float, threads: int = 4) -> tuple[int, int]:
    """(calls answered, calls failed) by `threads` clients calling Evaluate for `seconds`."""
    done, failed = [0] * threads, [0] * threads
    stop = time.perf_counter() + seconds

    def call(index: int) -> None:
        with verdict.Client(target, retries=0) as client:
            facts = {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001, "pin": "x"}
            while time.perf_counter() < stop:
                try:
                    client.evaluate("pharmacist.otc_block", facts)
                    done[index] += 1
                except verdict.VerdictError:
                    failed[index] += 1

    workers = [threading.Thread(target=call, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done), sum(failed)


def serving_under_writes(replicas: list[servers.ServerProcess], seconds: float, rounds: int) -> dict:
    served, writer_replica = replicas[0], replicas[1]
    quiet, busy, failures, writes = [], [], 0, 0
    with verdict.Client(writer_replica.target, token=writer_replica.token, retries=0) as writer:
        for _ in range(rounds):  # alternate, so drift on the shared machine hits both sides alike
            calls, failed = evaluate_rate(served.target, seconds)
            quiet.append(calls / seconds)
            failures += failed
            stopping = threading.Event()

            def write_every_second(stopping: threading.Event) -> None:
                nonlocal writes
                while not stopping.wait(1.0):
                    writer.put_document(documents.bulk_rule_set(1, variant=writes))
                    writes += 1

            ticker = threading.Thread(target=write_every_second, args=(stopping,))
            ticker.start()
            calls, failed = evaluate_rate(served.target, seconds)
            stopping.set()
            ticker.join()
            busy.append(calls / seconds)
            failures += failed
    return {
        "calls_per_s_quiet": statistics.median(quiet),
        "calls_per_s_with_writes": statistics.median(busy),
        "ratio": statistics.median(busy) / statistics.median(quiet),
        "writes_landed": writes,
        "failed_calls": failures,
        "seconds_per_round": seconds,
        "rounds": rounds,
    }


# ---------------------------------------------------------------------------------------------------- one change


def bulk_name(number: int) -> str:
    return f"{documents.BULK_PREFIX}{number:05d}"


def one_change(store_factory: Callable[[], object], sizes: tuple[int, ...], samples: int) -> dict:
    from verdict_server import ql
    from verdict_server.service.catalog import Catalog, compile_document

    found = {}
    for size in sizes:
        store = store_factory()
        try:
            started = time.perf_counter()
            for number in range(size):
                store.put("RuleSet", bulk_name(number), documents.bulk_rule_set(number))
            fill_s = time.perf_counter() - started
            catalog = Catalog(store, ql.Engine(stdlib=True))
            catalog.reload(force=True)
            changed, reread, alone = [], [], []
            for n in range(samples):
                text = documents.bulk_rule_set(n % size, variant=n + 1)
                store.put("RuleSet", bulk_name(n % size), text)
                started = time.perf_counter()
                catalog.reload()
                changed.append(time.perf_counter() - started)
                started = time.perf_counter()
                compile_document(text, catalog.engine, n + 1)  # the floor: what that one document costs to compile
                alone.append(time.perf_counter() - started)
                store.put("RuleSet", bulk_name(n % size), documents.bulk_rule_set(n % size, variant=-n - 1))
                started = time.perf_counter()
                catalog.reload(force=True)  # the old path: reread every head, compile the changed one
                reread.append(time.perf_counter() - started)
            found[str(size)] = {
                "fill_s": fill_s,
                "changed_only": summary_ms(changed),
                "compile_one_document": summary_ms(alone),
                "reread_all": summary_ms(reread),
            }
        finally:
            store.close()
    small, large = found[str(sizes[0])], found[str(sizes[-1])]
    found["ratio_changed_only"] = large["changed_only"]["p50_ms"] / small["changed_only"]["p50_ms"]
    found["ratio_reread_all"] = large["reread_all"]["p50_ms"] / small["reread_all"]["p50_ms"]
    return found


# ---------------------------------------------------------------------------------------------------------- run


def run(quick: bool) -> dict:
    results: dict = {"command": "python benchmarks/bench_replicas.py" + (" --quick" if quick else "")}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="verdict-bench-replicas-") as work:
        pg = stack.enter_context(PostgresServer())
        url = pg.create_database("bench")
        extra = ("--store", url, "--poll-interval-s", "5")
        replicas = [stack.enter_context(servers.start_verdict(Path(work) / "r0", extra=extra))]
        replicas += [stack.enter_context(servers.start_verdict(Path(work) / f"r{i}", extra=extra)) for i in (1, 2)]
        results["propagation"] = propagation(replicas, writes=50)
        results["serving_under_writes"] = serving_under_writes(
            replicas, seconds=3.0 if quick else 6.0, rounds=2 if quick else 4
        )
        for replica in replicas:
            replica.stop()

        from verdict_server.store import SqliteStore
        from verdict_server.store.postgres import PostgresStore

        sizes, samples = (1, 10_000), 10 if quick else 30
        results["one_change_postgres"] = one_change(lambda: PostgresStore(pg.create_database("change")), sizes, samples)
        if not quick:
            counter = iter(range(100))
            results["one_change_sqlite"] = one_change(
                lambda: SqliteStore(Path(work) / f"change{next(counter)}.db"), sizes, samples
            )
    results["text"] = describe(results)
    return results


def describe(results: dict) -> str:
    p = results["propagation"]
    s = results["serving_under_writes"]
    lines = [
        f"propagation, {p['replicas']} replicas, {p['writes']} writes: p50 {p['all']['p50_ms']:.1f} ms, "
        f"p99 {p['all']['p99_ms']:.1f} ms, max {p['all']['max_ms']:.1f} ms "
        f"(PutDocument p99 {p['put_document']['p99_ms']:.1f} ms, SetSelection p99 {p['set_selection']['p99_ms']:.1f} ms)",
        f"Evaluate on one replica: {s['calls_per_s_quiet']:.0f} calls/s quiet, {s['calls_per_s_with_writes']:.0f} "
        f"calls/s with a write every second elsewhere (ratio {s['ratio']:.2f}, {s['writes_landed']} writes, "
        f"{s['failed_calls']} failed calls)",
    ]
    for backend in ("postgres", "sqlite"):
        found = results.get(f"one_change_{backend}")
        if not found:
            continue
        one, many = found["1"], found["10000"]
        lines.append(
            f"one change, {backend}: reload p50 {one['changed_only']['p50_ms']:.2f} ms with 1 document, "
            f"{many['changed_only']['p50_ms']:.2f} ms with 10,000 (x{found['ratio_changed_only']:.2f}; compiling "
            f"that one document alone: {one['compile_one_document']['p50_ms']:.2f} / "
            f"{many['compile_one_document']['p50_ms']:.2f} ms); "
            f"rereading every head instead: {one['reread_all']['p50_ms']:.2f} ms vs "
            f"{many['reread_all']['p50_ms']:.2f} ms (x{found['ratio_reread_all']:.1f})"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    args = parser.parse_args()
    results = run(args.quick)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(results["text"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
