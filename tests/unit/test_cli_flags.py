"""The docker-style flag parser (pure)."""

from __future__ import annotations

import pytest

from berth.cli.flags import BOOL, INT, LIST, STR, Flag, Spec, UsageError, parse
from berth.cli.runconfig import CONTAINER_FLAGS, RUN_ONLY_FLAGS

RUN = Spec("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", CONTAINER_FLAGS + RUN_ONLY_FLAGS,
           min_args=1, interspersed=False)
STOP = Spec("stop", "[OPTIONS] CONTAINER [CONTAINER...]",
            [Flag("timeout", INT, "t"), Flag("signal", STR, "s")], min_args=1)
PS = Spec("ps", "[OPTIONS]", [Flag("all", BOOL, "a"), Flag("quiet", BOOL, "q"), Flag("filter", LIST, "f"),
                              Flag("latest", BOOL, "l")], max_args=0)


def test_clustered_shorthands_and_attached_values() -> None:
    p = parse(RUN, ["-dit", "-p8080:80", "-e=A=1", "--name=web", "busybox", "sh"])
    assert p.detach and p.interactive and p.tty
    assert p.publish == ["8080:80"]
    assert p.env == ["A=1"]
    assert p.name == "web"
    assert p.args == ["busybox", "sh"]


def test_run_stops_reading_flags_at_the_image() -> None:
    p = parse(RUN, ["--rm", "busybox", "ls", "-la", "--name", "x"])
    assert p.rm and p.name is None
    assert p.args == ["busybox", "ls", "-la", "--name", "x"]


def test_interspersed_commands_take_flags_anywhere_and_double_dash_ends_them() -> None:
    p = parse(STOP, ["web", "-t", "3", "db", "--", "-weird"])
    assert p.timeout == 3
    assert p.args == ["web", "db", "-weird"]


def test_repeated_list_flags_and_bool_values() -> None:
    p = parse(RUN, ["-e", "A=1", "--env", "B=2", "--rm=false", "-i=true", "img"])
    assert p.env == ["A=1", "B=2"]
    assert p.rm is False and p.interactive is True
    assert "env" in p.given and "name" not in p.given


@pytest.mark.parametrize("argv, message", [
    (["--bogus", "img"], "unknown flag: --bogus"),
    (["-x", "img"], "unknown shorthand flag: 'x' in -x"),
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: 'e' in -e"),
    (["--rm=maybe", "img"], 'invalid argument "maybe" for "--rm" flag'),
])
def test_errors_read_like_dockers(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse(RUN, argv)
    assert message in str(ei.value)


def test_int_flag_validation() -> None:
    with pytest.raises(UsageError) as ei:
        parse(STOP, ["-t", "soon", "web"])
    assert str(ei.value) == ('invalid argument "soon" for "-t, --timeout" flag: '
                             'strconv.ParseInt: parsing "soon": invalid syntax')


def test_argument_counts() -> None:
    with pytest.raises(UsageError, match='"berth run" requires at least 1 argument'):
        parse(RUN, ["-d"])
    with pytest.raises(UsageError, match='"berth ps" accepts no arguments'):
        parse(PS, ["extra"])


def test_help_flag() -> None:
    assert parse(PS, ["--help"]).help
    assert parse(PS, ["-h"]).help
    # run has -h for --hostname, so -h is not help there
    p = parse(RUN, ["-h", "box", "img"])
    assert p.hostname == "box" and not p.help


def test_help_text_lists_flags() -> None:
    text = RUN.help_text()
    assert "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]" in text
    assert "-d, --detach" in text and "--net " not in text   # hidden alias not shown
