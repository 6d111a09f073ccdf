"""The `berth-runtime` command line parser: the spellings containerd and runc users pass."""

from __future__ import annotations

import pytest

from berth.runtime.cli import DEFAULT_ROOT, UsageError, _usage, parse_args


def test_globals_then_create_with_containerds_options():
    args = parse_args(["--root", "/r", "--log", "/l", "--log-format", "json", "--systemd-cgroup", "create",
                       "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "--no-new-keyring", "c1"])
    assert (args.root, args.log, args.log_format, args.systemd_cgroup) == ("/r", "/l", "json", True)
    assert (args.command, args.bundle, args.pid_file, args.console_socket) == ("create", "/b", "/p", "/s")
    assert (args.no_new_keyring, args.no_pivot, args.preserve_fds, args.id) == (True, False, 0, "c1")


def test_defaults():
    args = parse_args(["run", "c"])
    assert (args.root, args.log, args.log_format, args.debug) == (DEFAULT_ROOT, None, "text", False)
    assert (args.bundle, args.detach, args.keep, args.version) == (".", False, False, False)


@pytest.mark.parametrize("argv", [["run", "-b", "/b", "c"], ["run", "-b/b", "c"], ["run", "--bundle=/b", "c"],
                                  ["run", "-bundle", "/b", "c"], ["run", "-bundle=/b", "c"],
                                  ["run", "c", "--bundle", "/b"]])
def test_option_spellings(argv):
    args = parse_args(argv)
    assert (args.bundle, args.id) == ("/b", "c")


def test_int_append_and_optional_positional():
    args = parse_args(["kill", "--all", "c"])
    assert (args.all, args.id, args.signal) == (True, "c", "SIGTERM")
    assert parse_args(["kill", "c", "KILL"]).signal == "KILL"
    args = parse_args(["exec", "-e", "A=1", "--env", "B=2", "--preserve-fds", "2", "-d", "c", "sh", "-c", "x"])
    assert (args.env, args.preserve_fds, args.detach, args.id) == (["A=1", "B=2"], 2, True, "c")
    assert args.args == ["sh", "-c", "x"]  # options after the id belong to the command line


def test_rest_keeps_a_double_dash_and_options_verbatim():
    assert parse_args(["exec", "c", "--", "ls", "-l"]).args == ["--", "ls", "-l"]
    assert parse_args(["ps", "--format", "json", "c"]).ps_args == []
    assert parse_args(["ps", "c", "-ef"]).ps_args == ["-ef"]
    assert parse_args(["update", "--cpu-quota", "-1", "c"]).cpu_quota == -1


def test_no_command_version_and_help():
    assert parse_args([]).command is None
    assert parse_args(["--version"]).version
    args = parse_args(["exec", "--help"])
    assert (args.command, args.help_for) == ("help", "exec")
    assert "--preserve-fds" in _usage("exec") and "features" in _usage(None)


@pytest.mark.parametrize("argv, message", [
    (["nope"], "unknown command"),
    (["kill"], "required: id"),
    (["start", "a", "b"], "unrecognized arguments: b"),
    (["run", "--bogus", "c"], "unrecognized argument: --bogus"),
    (["--log-format", "xml", "state", "c"], "invalid choice"),
    (["run", "--preserve-fds", "x", "c"], "invalid int value"),
    (["run", "--detach=1", "c"], "takes no value"),
    (["run", "c", "--bundle"], "expected a value"),
])
def test_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message):
        parse_args(argv)
