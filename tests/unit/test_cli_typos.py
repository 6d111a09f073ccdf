"""Slips from copied commands: dash look-alikes, single-dash long options, plural groups."""

from __future__ import annotations

import pytest

from berth.cli import typos
from berth.cli.flags import Spec, UsageError, parse
from berth.cli.main import _resolve
from berth.cli.runconfig import CONTAINER_FLAGS, RUN_ONLY_FLAGS

RUN = Spec("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", CONTAINER_FLAGS + RUN_ONLY_FLAGS,
           min_args=1, interspersed=False)


@pytest.mark.parametrize("word, fixed, what", [
    ("\u2013it", "-it", "an en dash (\u2013)"),
    ("\u2013d", "-d", "an en dash"),
    ("\u2013name", "--name", "an en dash"),
    ("\u2014name", "--name", "an em dash (\u2014)"),
    ("\u2013-rm", "--rm", "an en dash"),
    ("\u2212p", "-p", "a minus sign"),
])
def test_dash_lookalikes_name_the_right_form(word: str, fixed: str, what: str) -> None:
    msg = typos.dash_slip(word, RUN)
    assert msg is not None
    assert what in msg and f'did you mean "{fixed}"?' in msg


def test_dash_lookalike_in_flag_position_refuses_to_run() -> None:
    with pytest.raises(UsageError) as ei:
        parse(RUN, ["\u2013it", "\u2013d", "\u2013p", "8001:80", "nginx:latest"])
    assert ei.value.kind == "dash"
    assert '"\u2013it" starts with an en dash (\u2013), not a hyphen; did you mean "-it"?' in str(ei.value)


def test_corrected_command_fixes_every_dash() -> None:
    argv = ["run", "\u2013it", "\u2013d", "\u2013p", "8001:80", "\u2014name", "web", "nginx:latest"]
    assert typos.corrected_command(argv, RUN) == "berth run -it -d -p 8001:80 --name web nginx:latest"


def test_dashes_inside_the_container_command_are_left_alone() -> None:
    p = parse(RUN, ["busybox", "echo", "\u2013 a dash in text"])
    assert p.args == ["busybox", "echo", "\u2013 a dash in text"]


@pytest.mark.parametrize("word", ["-name", "-rm", "-detach", "-name=x", "-publish"])
def test_single_dash_long_options(word: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse(RUN, [word, "web", "busybox"])
    assert f'did you mean "-{word}"?' in str(ei.value)


def test_real_shorthand_clusters_still_work() -> None:
    p = parse(RUN, ["-it", "-dP", "busybox"])
    assert p.interactive and p.tty and p.detach and p.publish_all


def test_typographic_quotes() -> None:
    with pytest.raises(UsageError, match="typographic quotes"):
        parse(RUN, ["busybox", "sh", "-c", "\u201cecho", "hi\u201d"])


@pytest.mark.parametrize("words, right", [
    (["images", "ls"], "berth image ls"),
    (["containers", "ls"], "berth container ls"),
    (["networks", "rm", "x"], "berth network rm"),
    (["volumes", "list"], "berth volume list"),
])
def test_plural_groups(words: list[str], right: str) -> None:
    _, target, _, error = _resolve(words)
    assert target is None and error is not None and right in error


def test_container_list_is_dockers_alias() -> None:
    name, target, _, error = _resolve(["container", "list", "-a"])
    assert error is None and target == ("containers", "ps") and name == "container list"


def test_unknown_commands_get_a_suggestion() -> None:
    _, target, _, error = _resolve(["imgaes"])
    assert target is None and 'did you mean "berth images"?' in (error or "")
    _, _, _, error = _resolve(["network", "lss"])
    assert "is not a berth network command" in (error or "")


def test_misspelt_long_flag_gets_a_suggestion() -> None:
    with pytest.raises(UsageError) as ei:
        parse(RUN, ["--nmae", "web", "busybox"])
    assert str(ei.value) == 'unknown flag: --nmae; did you mean "--name"?'


def test_docker_prefix_copied_along() -> None:
    _, target, _, error = _resolve(["docker", "run", "-d", "nginx:latest"])
    assert target is None and 'did you mean "berth run -d nginx:latest"?' in (error or "")


def test_run_options_after_the_image_are_spotted() -> None:
    from berth.cli.commands.run import RUN as RUN_SPEC
    from berth.cli.commands.run import misplaced_options

    p = parse(RUN_SPEC, ["-d", "nginx:latest", "-p", "8001:80", "--name", "web"])
    assert misplaced_options(RUN_SPEC, p) == (4, ["-d", "-p", "8001:80", "--name", "web", "nginx:latest"])
    p = parse(RUN_SPEC, ["busybox", "-it", "sh"])
    assert misplaced_options(RUN_SPEC, p) == (1, ["-it", "busybox", "sh"])
    for argv in (["busybox", "ls", "-l"], ["busybox"], ["busybox", "--not-a-run-flag"], ["busybox", "-"]):
        assert misplaced_options(RUN_SPEC, parse(RUN_SPEC, argv)) is None
