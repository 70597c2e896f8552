"""The conformance figures on every run: agree / documented (by class) / open, for the QLExpress oracle vectors."""

from __future__ import annotations

from typing import Any

from ql_vectors import REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, results in REPORT.items():
        ran = results["agree"] + sum(results["documented"].values()) + len(results["open"])
        if not ran:
            continue
        write = terminalreporter.write_line
        terminalreporter.section(f"QLExpress conformance: {name}")
        write(
            f"{ran} of {results['total']} vectors ran: agree {results['agree']} ({results['agree'] / ran:.1%}), "
            f"documented {sum(results['documented'].values())}, open {len(results['open'])}"
        )
        for difference_class, count in results["documented"].most_common():
            write(f"  documented  {count:4}  {difference_class}")
        if results["open"]:
            write(f"  open        {len(results['open']):4}  {' '.join(results['open'][:20])}")
