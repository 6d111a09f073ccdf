"""berth.humanize: the one copy of Docker's go-units formatting, used by CLI and daemon."""

from __future__ import annotations

from berth import humanize
from berth.cli import format as cli_format
from berth.engine import humanize as engine_humanize


def test_half_hours_round_up_as_go_units_does() -> None:
    # units.HumanDuration computes hours as int(h + 0.5): 2.5 h is "3 hours"
    assert humanize.human_duration(9000) == "3 hours"
    assert humanize.human_duration(5400) == "2 hours"


def test_years_from_whole_hours() -> None:
    assert humanize.human_duration(2.99 * 365 * 24 * 3600) == "2 years"


def test_cli_and_daemon_share_one_implementation() -> None:
    for s in (0, 1, 59, 61, 3599, 9000, 86400 * 20, 86400 * 400):
        assert cli_format.human_duration(s) == engine_humanize.human_duration(s) == humanize.human_duration(s)
    assert cli_format.human_size(1_500_000) == humanize.human_size(1_500_000) == "1.5MB"
