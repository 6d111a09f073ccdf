"""Docker-style (cobra/pflag) command-line flag parsing, pure.

Rules as the docker CLI applies them: `--name value`, `--name=value`, `-n value`,
`-nvalue`, `-n=value`, clusters of boolean shorthands (`-dit`), repeated list flags,
`--` ends the flags, and commands such as `run` or `exec` stop reading flags at their
first positional argument (the rest belongs to the container's command).
"""

from __future__ import annotations

from berth.cli import typos

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any


class UsageError(Exception):
    """A command line berth refuses before talking to the daemon (exit status 125)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind      # "dash": a dash look-alike; main then shows the corrected line


BOOL = "bool"
STR = "string"
LIST = "list"
STRINGS = "strings"   # pflag's StringSlice: a list, each value split at commas as CSV
INT = "int"
FLOAT = "decimal"
UINT16 = "uint16"
UINT = "uint"
_UINT_BITS = {UINT16: 16, UINT: 64}


class Flag:
    """One flag. (Plain classes, not dataclasses, here and in Spec/Parsed: importing
    dataclasses costs ~11 ms, paid by every `berth` command.)"""

    __slots__ = ("long", "kind", "short", "default", "help", "hidden", "shows")

    def __init__(self, long: str, kind: str = BOOL, short: str = "", default: Any = None,
                 help: str = "", hidden: bool = False, shows: str = "") -> None:
        self.long = long          # without the leading dashes
        self.kind = kind          # how the parser stores it
        self.shows = shows or kind  # the value type --help names, as docker's (bytes, duration, map...)
        self.short = short        # one letter, or ""
        self.default = default
        self.help = help
        self.hidden = hidden

    def __repr__(self) -> str:
        return f"Flag({self.long!r}, {self.kind!r}, {self.short!r})"

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")

    def label(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"


class Spec:
    """One command: its flags and how many positional arguments it takes."""

    def __init__(self, name: str, usage: str, flags: list[Flag] | None = None, min_args: int = 0,
                 max_args: int | None = None, interspersed: bool = True, help: str = "") -> None:
        self.name = name                  # full name as typed, e.g. "network create"
        self.usage = usage                # e.g. "[OPTIONS] CONTAINER [CONTAINER...]"
        self.flags = list(flags or [])
        self.min_args = min_args
        self.max_args = max_args          # None: unlimited
        self.interspersed = interspersed  # False: flags end at the first positional argument
        self.help = help
        self._long = {f.long: f for f in self.flags}
        self._short = {f.short: f for f in self.flags if f.short}

    def renamed(self, name: str) -> Spec:
        """The same command as the user typed it (`container ls` for `ps`)."""
        return Spec(name, self.usage, self.flags, self.min_args, self.max_args, self.interspersed,
                    self.help)

    def by_long(self, name: str) -> Flag | None:
        return self._long.get(name)

    def by_short(self, letter: str) -> Flag | None:
        return self._short.get(letter)

    def usage_line(self, prog: str = "berth") -> str:
        return f"Usage:  {prog} {self.name} {self.usage}".rstrip()

    def help_text(self, prog: str = "berth") -> str:
        lines = ["", self.usage_line(prog), ""]
        if self.help:
            lines += [self.help, ""]
        shown = [f for f in self.flags if not f.hidden]
        if shown:
            lines.append("Options:")
            width = max(len(_flag_col(f)) for f in shown)
            for f in sorted(shown, key=lambda f: f.long):
                lines.append(f"  {_flag_col(f).ljust(width)}   {f.help}".rstrip())
        return "\n".join(lines) + "\n"


def _flag_col(f: Flag) -> str:
    name = f"-{f.short}, --{f.long}" if f.short else f"    --{f.long}"
    return name if f.kind == BOOL else f"{name} {f.shows}"


class Parsed:
    """The parse result: option values by dest (also as attributes), positional args."""

    def __init__(self, opts: dict[str, Any], args: list[str], given: set[str], help: bool = False,
                 argv: list[str] | None = None) -> None:
        self.opts = opts
        self.args = args
        self.given = given      # dests of the flags the user set
        self.help = help
        self.argv = argv or []  # the words parsed

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["opts"][name]
        except KeyError:
            raise AttributeError(name) from None


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(value: str) -> str:
    """Go's %q of a string, as pflag quotes a value in its errors: `"a\"b"`."""
    out = []
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def invalid_argument(flag: str, value: str, why: str) -> UsageError:
    """pflag's refusal of a flag's value: `invalid argument "x" for "--flag" flag: why`."""
    return UsageError(f"invalid argument {go_quote(value)} for \"{flag}\" flag: {why}")


def _parse_uint(value: str, bits: int) -> int:
    """Go's strconv.ParseUint(value, 0, bits), as pflag's uint flags parse: no sign, no
    spaces, 0x/0o/0b prefixes and a leading 0 for octal."""
    if not value or value[0] in "+-" or value != value.strip():
        raise ValueError("invalid syntax")
    octal = len(value) > 1 and value[0] == "0" and value[1].isdigit()
    try:
        n = int(value, 8 if octal else 0)
    except ValueError:
        raise ValueError("invalid syntax") from None
    if n >= 1 << bits:
        raise ValueError("value out of range")
    return n


def csv_fields(value: str) -> list[str]:
    """pflag's readAsCSV: `a,b` -> [a, b], `"a,b",c` -> [a,b, c], "" -> []."""
    if not value:
        return []
    if '"' not in value:
        return value.split(",")
    import csv

    return next(csv.reader([value]))


def _convert(flag: Flag, value: str) -> Any:
    if flag.kind in _UINT_BITS:
        try:
            return _parse_uint(value, _UINT_BITS[flag.kind])
        except ValueError as exc:
            raise invalid_argument(flag.label(), value,
                                   f"strconv.ParseUint: parsing {go_quote(value)}: {exc}") from None
    if flag.kind == INT:
        try:
            return int(value, 0) if value.strip().lower().startswith(("0x", "0o", "0b")) else int(value)
        except ValueError:
            raise invalid_argument(flag.label(), value,
                                   f"strconv.ParseInt: parsing {go_quote(value)}: invalid syntax") from None
    if flag.kind == FLOAT:
        try:
            return float(value)
        except ValueError:
            raise invalid_argument(flag.label(), value,
                                   f"failed to parse {go_quote(value)} as a decimal number") from None
    if flag.kind == BOOL:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise invalid_argument(flag.label(), value, f"strconv.ParseBool: parsing {go_quote(value)}: invalid syntax")
    return value


def _defaults(spec: Spec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in spec.flags:
        if f.kind in (LIST, STRINGS):
            out[f.dest] = list(f.default or [])
        elif f.kind == BOOL:
            out[f.dest] = bool(f.default)
        else:
            out[f.dest] = f.default
    return out


def parse(spec: Spec, argv: list[str]) -> Parsed:
    """Parse argv (the words after the command name) against spec."""
    opts = _defaults(spec)
    given: set[str] = set()
    args: list[str] = []
    want_help = False

    def store(flag: Flag, value: Any) -> None:
        given.add(flag.dest)
        if flag.kind == LIST and flag.shows == "filter" and value and "=" not in value:
            # the docker CLI's FilterOpt refuses it while parsing (exit 125)
            raise invalid_argument(flag.label(), value, "bad format of filter (expected name=value)")
        if flag.kind == LIST:
            opts[flag.dest].append(value)
        elif flag.kind == STRINGS:
            opts[flag.dest].extend(csv_fields(value))
        else:
            opts[flag.dest] = _convert(flag, value) if isinstance(value, str) else value

    i = 0
    n = len(argv)
    while i < n:
        word = argv[i]
        i += 1
        if word == "--":
            args.extend(argv[i:])
            break
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word[2:].partition("=")
            if name == "help":
                want_help = True
                continue
            flag = spec.by_long(name)
            if flag is None:
                close = typos.suggest(name, [f.long for f in spec.flags if not f.hidden])
                hint = f'; did you mean "--{close}"?' if close else ""
                raise UsageError(f"unknown flag: --{name}{hint}")
            if flag.kind == BOOL:
                store(flag, value if eq else True)
            elif eq:
                store(flag, value)
            elif i < n:
                store(flag, argv[i])
                i += 1
            else:
                raise UsageError(f"flag needs an argument: --{name}")
            continue
        if word.startswith("-") and len(word) > 1:
            slip = typos.single_dash_long(word, spec)
            if slip:
                raise UsageError(slip)
            letters = word[1:]
            j = 0
            while j < len(letters):
                letter = letters[j]
                flag = spec.by_short(letter)
                if flag is None:
                    if letter == "h" and spec.by_long("help") is None and not spec.by_short("h"):
                        want_help = True
                        j += 1
                        continue
                    raise UsageError(f"unknown shorthand flag: '{letter}' in {word}")
                rest = letters[j + 1:]
                if flag.kind == BOOL:
                    if rest.startswith("="):
                        store(flag, rest[1:])
                        break
                    store(flag, True)
                    j += 1
                    continue
                if rest:
                    store(flag, rest[1:] if rest.startswith("=") else rest)
                elif i < n:
                    store(flag, argv[i])
                    i += 1
                else:
                    raise UsageError(f"flag needs an argument: '{letter}' in {word}")
                break
            continue
        slip = typos.dash_slip(word, spec)
        if slip:
            raise UsageError(slip, kind="dash")
        slip = typos.quote_slip(word)
        if slip:
            raise UsageError(slip)
        args.append(word)
        if not spec.interspersed:
            if spec.name:   # the global parse leaves the command's words to the command
                for rest in argv[i:]:
                    slip = typos.quote_slip(rest)
                    if slip:
                        raise UsageError(slip)
            args.extend(argv[i:])
            break
    if want_help:
        return Parsed(opts, args, given, help=True, argv=argv)
    _check_count(spec, args)
    return Parsed(opts, args, given, argv=argv)


def _check_count(spec: Spec, args: list[str]) -> None:
    full = f"berth {spec.name}"
    if len(args) < spec.min_args:
        if spec.min_args == 1:
            raise UsageError(f'"{full}" requires at least 1 argument.')
        if spec.max_args == spec.min_args:
            raise UsageError(f'"{full}" requires exactly {spec.min_args} arguments.')
        raise UsageError(f'"{full}" requires at least {spec.min_args} arguments.')
    if spec.max_args is not None and len(args) > spec.max_args:
        if spec.max_args == 0:
            raise UsageError(f'"{full}" accepts no arguments.')
        if spec.max_args == spec.min_args:
            word = "argument" if spec.max_args == 1 else "arguments"
            raise UsageError(f'"{full}" requires exactly {spec.max_args} {word}.')
        raise UsageError(f'"{full}" requires at most {spec.max_args} argument'
                         f'{"" if spec.max_args == 1 else "s"}.')
