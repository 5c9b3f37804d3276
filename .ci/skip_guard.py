"""pytest plugin for CI: lists every skipped test with its reason and fails the run when a test is skipped that
does not carry one of the allowed markers, so a missing install step cannot quietly shrink what CI proves.

Load it with `-p skip_guard` (this folder on PYTHONPATH) and name the markers whose tests may skip, e.g.
`--skips-allowed-for gpu` (CUDA tests on a machine without CUDA). A module skipped while being collected
(`pytest.importorskip`, a module-level `pytest.skip`) has no markers to show, so it always counts as disallowed.
Exit status: 1 when a disallowed skip happened and the tests themselves passed; a worse status (failures,
errors, 5 for no tests collected) is left as it is."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Skip:
    nodeid: str
    reason: str
    allowed: bool


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skips-allowed-for",
        action="append",
        default=[],
        metavar="MARKER",
        help="fail the run when a test is skipped that is not marked MARKER (repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGuard(config.getoption("skips_allowed_for")), "skip_guard_state")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    # A skip's longrepr is (path, line, "Skipped: reason"); anything else is shown the way pytest words it.
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class SkipGuard:
    """Collects the run's skips, prints them after the tests, and turns a passing run with a disallowed skip
    into a failing one."""

    def __init__(self, allowed_markers: list[str]) -> None:
        self.allowed_markers = set(allowed_markers)
        self.skips: list[Skip] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            allowed = bool(self.allowed_markers & set(report.keywords))
            self.skips.append(Skip(report.nodeid, _reason(report), allowed))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.skips.append(Skip(report.nodeid, _reason(report), allowed=False))

    def disallowed(self) -> list[Skip]:
        return [skip for skip in self.skips if not skip.allowed]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        allowed = ", ".join(sorted(self.allowed_markers)) or "none"
        terminalreporter.section(f"{len(self.skips)} skipped (allowed only when marked: {allowed})")
        for skip in self.skips:
            terminalreporter.line(f"{'allowed' if skip.allowed else 'NOT ALLOWED'}  {skip.nodeid}: {skip.reason}")
        if self.disallowed():
            terminalreporter.line("a test was skipped without an allowed marker: install what it needs", red=True)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.OK and self.disallowed():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
