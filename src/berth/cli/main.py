"""`berth`: the docker-style command line. Finds the command, parses its flags, runs it.

Command modules are imported only when their command runs (start-up time matters: every
`berth` invocation pays it).
"""

from __future__ import annotations

import os
import sys

from berth.cli import typos
from berth.cli.flags import BOOL, LIST, STR, Flag, Spec, UsageError, parse

# command as typed -> (module under berth.cli.commands, key in its COMMANDS)
TOP: dict[str, tuple[str, str]] = {
    "run": ("run", "run"), "create": ("run", "create"), "start": ("run", "start"),
    "attach": ("run", "attach"), "exec": ("run", "exec"),
    "stop": ("containers", "stop"), "restart": ("containers", "restart"),
    "kill": ("containers", "kill"), "rm": ("containers", "rm"), "ps": ("containers", "ps"),
    "logs": ("containers", "logs"), "wait": ("containers", "wait"), "top": ("containers", "top"),
    "stats": ("containers", "stats"), "rename": ("containers", "rename"),
    "pause": ("containers", "pause"), "unpause": ("containers", "unpause"),
    "port": ("containers", "port"), "cp": ("containers", "cp"), "diff": ("containers", "diff"),
    "commit": ("containers", "commit"), "update": ("containers", "update"),
    "export": ("containers", "export"),
    "images": ("images", "images"), "tag": ("images", "tag"), "rmi": ("images", "rmi"),
    "history": ("images", "history"), "load": ("images", "load"), "save": ("images", "save"),
    "import": ("images", "import"),
    "pull": ("registry", "pull"), "push": ("registry", "push"), "search": ("registry", "search"),
    "login": ("registry", "login"), "logout": ("registry", "logout"),
    "build": ("build", "build"),
    "inspect": ("system", "inspect"), "version": ("system", "version"), "info": ("system", "info"),
    "events": ("system", "events"),
    "bootstrap": ("bootstrap", "bootstrap"),
}

GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "container": {
        "attach": TOP["attach"], "commit": TOP["commit"], "cp": TOP["cp"], "create": TOP["create"],
        "diff": TOP["diff"], "exec": TOP["exec"], "export": TOP["export"],
        "inspect": ("containers", "inspect"),
        "kill": TOP["kill"], "logs": TOP["logs"], "ls": TOP["ps"], "list": TOP["ps"], "ps": TOP["ps"],
        "pause": TOP["pause"], "port": TOP["port"], "prune": ("containers", "prune"),
        "rename": TOP["rename"], "restart": TOP["restart"], "rm": TOP["rm"], "remove": TOP["rm"],
        "run": TOP["run"], "start": TOP["start"], "stats": TOP["stats"], "stop": TOP["stop"],
        "top": TOP["top"], "unpause": TOP["unpause"], "update": TOP["update"], "wait": TOP["wait"],
    },
    "image": {
        "build": TOP["build"], "history": TOP["history"], "import": TOP["import"],
        "inspect": ("images", "inspect"), "load": TOP["load"], "ls": TOP["images"],
        "list": TOP["images"], "prune": ("images", "prune"), "pull": TOP["pull"], "push": TOP["push"],
        "rm": TOP["rmi"], "remove": TOP["rmi"], "save": TOP["save"], "tag": TOP["tag"],
    },
    "network": {
        "connect": ("networks", "connect"), "create": ("networks", "create"),
        "disconnect": ("networks", "disconnect"), "inspect": ("networks", "inspect"),
        "ls": ("networks", "ls"), "list": ("networks", "ls"), "prune": ("networks", "prune"),
        "rm": ("networks", "rm"), "remove": ("networks", "rm"),
    },
    "volume": {
        "create": ("volumes", "create"), "inspect": ("volumes", "inspect"),
        "ls": ("volumes", "ls"), "list": ("volumes", "ls"), "prune": ("volumes", "prune"),
        "rm": ("volumes", "rm"), "remove": ("volumes", "rm"),
    },
    "system": {
        "df": ("system", "df"), "info": TOP["info"], "prune": ("system", "prune"),
        "events": TOP["events"],
    },
    "builder": {"build": TOP["build"], "prune": ("system", "builder_prune")},
}

GLOBAL = Spec("", "[OPTIONS] COMMAND", [
    Flag("host", LIST, "H", help="Daemon socket to connect to"),
    Flag("debug", BOOL, "D", help="Enable debug mode"),
    Flag("config", STR, help='Location of client config files (default "~/.berth")'),
    Flag("log-level", STR, "l", help='Set the logging level ("debug", "info", "warn", "error", "fatal")'),
    Flag("version", BOOL, "v", help="Print version information and quit"),
    Flag("context", STR, "c", hidden=True),
    Flag("tls", BOOL, hidden=True), Flag("tlsverify", BOOL, hidden=True),
], interspersed=False)

SUMMARY = """
Usage:  berth [OPTIONS] COMMAND

A Docker-compatible container platform

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  build       Build an image from a Dockerfile
  pull        Download an image from a registry
  push        Upload an image to a registry
  images      List images
  login       Log in to a registry
  logout      Log out from a registry
  search      Search a registry for images
  version     Show the berth version information
  info        Display system-wide information
  bootstrap   Build a base image (busybox, debian, python, nginx) from Debian packages

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  system      Manage berth
  volume      Manage volumes

Commands:
  attach      Attach local standard input, output, and error streams to a running container
  commit      Create a new image from a container's changes
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  events      Get real time events from the server
  export      Export a container's filesystem as a tar archive
  history     Show the history of an image
  import      Import the contents from a tarball to create a filesystem image
  inspect     Return low-level information on berth objects
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  wait        Block until one or more containers stop, then print their exit codes

Global Options:
  -H, --host list      Daemon socket to connect to (default unix:///run/berth/berth.sock, or $BERTH_HOST)
  -D, --debug          Enable debug mode
      --config string  Location of client config files (default "~/.berth", or $BERTH_CONFIG)
  -v, --version        Print version information and quit

Run 'berth COMMAND --help' for more information on a command.
"""


def _group_help(group: str) -> str:
    subs = sorted(set(GROUPS[group]))
    return (f"\nUsage:  berth {group} COMMAND\n\nManage {group}s\n\nCommands:\n"
            + "".join(f"  {s}\n" for s in subs)
            + f"\nRun 'berth {group} COMMAND --help' for more information on a command.\n")


def _fail(message: str, status: int = 125) -> int:
    sys.stderr.write(f"berth: {message}\n")
    return status


def _usage_error(spec: Spec, exc: Exception, argv: list[str] | None = None) -> int:
    if getattr(exc, "kind", "") == "dash" and argv is not None:
        fixed = typos.corrected_command(argv, spec)
        sys.stderr.write(f"berth: {exc}\nThe command with plain hyphens would be:\n  {fixed}\n")
        return 125
    sys.stderr.write(f"berth: {exc}\n\n{spec.usage_line()}\n\n"
                     f"Run 'berth {spec.name} --help' for more information\n")
    return 125


def _resolve(words: list[str]) -> tuple[str, tuple[str, str] | None, list[str], str | None]:
    """(typed command name, (module, key) or None, remaining words, error message)."""
    first = words[0]
    if first == "docker" and len(words) > 1:
        import shlex

        return first, None, [], (f'"berth docker ..." is not needed: berth takes docker\'s commands '
                                 f'itself; did you mean "berth {shlex.join(words[1:])}"?')
    slip = typos.dash_slip(first)
    if slip:
        return first, None, words[1:], slip
    if first in GROUPS:
        if len(words) < 2 or words[1] in ("--help", "-h"):
            return first, ("", "help:" + first), [], None
        sub = words[1]
        slip = typos.dash_slip(sub)
        if slip:
            return first, None, [], slip
        target = GROUPS[first].get(sub)
        if target is None:
            guess = typos.suggest(sub, list(GROUPS[first]))
            hint = f'; did you mean "berth {first} {guess}"?' if guess else \
                f"\nSee 'berth {first} --help'."
            return first, None, [], f"'{sub}' is not a berth {first} command{hint}"
        return f"{first} {sub}", target, words[2:], None
    slip = typos.plural_group(words)
    if slip:
        return first, None, [], slip
    target = TOP.get(first)
    if target is None:
        choices = list(TOP) + list(GROUPS)
        if first in typos.PLURAL_GROUPS and first != "images":
            guess = typos.PLURAL_GROUPS[first]
        else:
            guess = typos.suggest(first, choices)
        hint = f'; did you mean "berth {guess}"?' if guess else "\nSee 'berth --help'"
        return first, None, [], f"'{first}' is not a berth command{hint}"
    return first, target, words[1:], None


def main(argv: list[str] | None = None) -> int:
    """Run one command line and return its exit status. Called as the program (argv None),
    it ends the process itself once the output is out (see _exit_now)."""
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = _main(argv)
    except KeyboardInterrupt:
        status = 130
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`berth ps | head`): not an error worth a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if as_program:
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """Skip the interpreter's teardown (~5 ms freeing every module and object, all of which
    the kernel drops anyway) when it has nothing else to do: stdout is flushed, and with
    neither `threading` nor `atexit` imported there is no thread to join and no exit hook."""
    if "threading" in sys.modules or "atexit" in sys.modules:
        return
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(status)


def _main(argv: list[str]) -> int:
    try:
        g = parse(GLOBAL, argv)
    except UsageError as exc:
        return _fail(f"{exc}\nSee 'berth --help'.")
    if g.version:
        from berth import __version__

        print(f"berth version {__version__}")
        return 0
    if g.help or not g.args:
        sys.stdout.write(SUMMARY)
        return 0
    if g.context:
        return _fail("contexts are not supported: use -H/--host or BERTH_HOST to choose a daemon")
    if g.args[0] == "help":
        if len(g.args) == 1:
            sys.stdout.write(SUMMARY)
            return 0
        g.args = g.args[1:] + ["--help"]
    name, target, rest, error = _resolve(g.args)
    if error:
        return _fail(error)
    assert target is not None
    module_name, key = target
    if key.startswith("help:"):
        sys.stdout.write(_group_help(key[5:]))
        return 0
    # __import__ rather than importlib.import_module: importlib's own imports cost ~0.3 ms
    module = __import__(f"berth.cli.commands.{module_name}", fromlist=["COMMANDS"])
    spec, handler = module.COMMANDS[key]
    spec = spec.renamed(name)
    try:
        p = parse(spec, rest)
    except UsageError as exc:
        return _usage_error(spec, exc, argv)
    if p.help:
        sys.stdout.write(spec.help_text())
        return 0

    from berth.cli.client import CLIError, resolve_host
    from berth.cli.context import Context, default_config_dir

    if len(g.host) > 1:
        return _fail("Please specify only one -H")
    host, is_default = resolve_host(g.host[0] if g.host else None)
    if g.config:
        os.environ["BERTH_CONFIG"] = g.config
    ctx = Context(host=host, auto_start=is_default, config_dir=g.config or default_config_dir(),
                  debug=g.debug)
    try:
        return int(handler(ctx, p) or 0)
    except UsageError as exc:
        return _usage_error(spec, exc)
    except CLIError as exc:
        return _fail(str(exc), exc.status)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
