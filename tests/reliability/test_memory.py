"""Hot reloads must not grow the server's memory: a process that is re-configured every second runs for months.

The soak (tests/soak/test_soak.py) watches RSS under load; this test isolates the reloads, which are the part of the
soak whose effect accumulates: 13 rule-set versions written over and over, so every compiled program the server
could legitimately keep is at most 13 documents' worth.
"""

from __future__ import annotations

from reliability.reliability_support import Admin, proc_status_kib, rule_set

WARM_UP_RELOADS = 100
MEASURED_RELOADS = 500
GROWTH_BOUND_KIB = 16 * 1024


def _gate(minimum: int) -> str:
    return rule_set(
        "memory.gate",
        f"""\
        default: {{allow: false}}
        constants:
          minimum: "2.{minimum}.0"
        rules:
          - id: new-app
            when: versionCompare(appVersion, minimum) >= 0
            then: {{allow: true}}
        """,
    )


def test_rewriting_the_same_documents_does_not_grow_memory(start_server) -> None:
    process = start_server()
    admin = Admin(process)
    try:
        for index in range(WARM_UP_RELOADS):
            admin.put(_gate(index % 13))
        warm = proc_status_kib(process.proc.pid, "VmRSS")
        for index in range(MEASURED_RELOADS):
            admin.put(_gate(index % 13))
        grown = proc_status_kib(process.proc.pid, "VmRSS") - warm
    finally:
        admin.close()
    assert grown <= GROWTH_BOUND_KIB, f"RSS grew {grown} KiB over {MEASURED_RELOADS} reloads"
