"""One compiled rule set is shared by every server thread: concurrent evaluations must not see each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

THREADS = 8
CALLS_PER_THREAD = 300


def test_concurrent_evaluations_of_one_compiled_object_each_get_their_own_answer(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: threads
        hit_policy: collect
        timeout_ms: 1000
        default: {seen: []}
        constants: {even: [0, 2, 4, 6]}
        rules:
          - id: echo
            when: n >= 0
            then_expr: |
              total = 0
              for (i = 0; i < n; i++) { total = total + i }
              {n: n, total: total}
          - id: even
            when: worker in even
            then: {even: true}
        """
    )

    def work(worker: int) -> list[str]:
        wrong = []
        for call in range(CALLS_PER_THREAD):
            n = worker * 10 + call % 50  # small loops: the point is sharing, not load
            decision = rule_set.evaluate({"n": n, "worker": worker}, explain=call % 7 == 0)
            expected = [{"n": n, "total": n * (n - 1) // 2}] + ([{"even": True}] if worker % 2 == 0 else [])
            if decision.result != expected or decision.degraded:
                wrong.append(f"worker {worker} call {call}: {decision}")
                continue
            decision.result.append("mine")  # callers own results; this must not reach any other answer
        return wrong

    with ThreadPoolExecutor(THREADS) as pool:
        failures = [line for lines in pool.map(work, range(THREADS)) for line in lines]
    assert failures == []
