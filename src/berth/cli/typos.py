"""Slips people make when copying commands from notes, slides and web pages (pure).

Each check returns a message naming the right form, or None. berth refuses such a
command line (exit 125) instead of guessing, so it never runs what the user did not mean.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)

if TYPE_CHECKING:
    from berth.cli.flags import Spec

# Characters word processors put where a hyphen-minus was typed.
DASH_LOOKALIKES = {
    "\u2010": "a Unicode hyphen (\u2010)",
    "\u2011": "a non-breaking hyphen (\u2011)",
    "\u2012": "a figure dash (\u2012)",
    "\u2013": "an en dash (\u2013)",
    "\u2014": "an em dash (\u2014)",
    "\u2015": "a horizontal bar (\u2015)",
    "\u2212": "a minus sign (\u2212)",
    "\ufe63": "a small hyphen-minus (\ufe63)",
    "\uff0d": "a full-width hyphen-minus (\uff0d)",
}
QUOTE_LOOKALIKES = "\u201c\u201d\u2018\u2019\u201e\u00ab\u00bb"

# Plural command groups people type for the singular ones.
PLURAL_GROUPS = {"images": "image", "containers": "container", "networks": "network",
                 "volumes": "volume"}


def fix_dashes(word: str, spec: Spec | None = None) -> str:
    """The word with its leading dash look-alikes turned into the hyphens meant."""
    if not word or word[0] not in DASH_LOOKALIKES:
        return word
    rest = word.lstrip("".join(DASH_LOOKALIKES) + "-")
    name = rest.split("=", 1)[0]
    lead = len(word) - len(rest)
    if spec is not None and spec.by_long(name) is not None:
        return "--" + rest
    if spec is not None and len(name) == 1 and lead == 1:
        return "-" + rest
    if lead >= 2 or (len(name) > 1 and spec is None and word[0] == "\u2014"):
        return "--" + rest
    return "-" + rest


def dash_slip(word: str, spec: Spec | None = None) -> str | None:
    """`–it` or `—name` where `-it` / `--name` was meant."""
    if not word or word[0] not in DASH_LOOKALIKES:
        return None
    what = DASH_LOOKALIKES[word[0]]
    return f'"{word}" starts with {what}, not a hyphen; did you mean "{fix_dashes(word, spec)}"?'


def corrected_command(argv: list[str], spec: Spec | None) -> str:
    """The whole command line with every dash look-alike fixed, ready to copy."""
    import shlex

    return "berth " + shlex.join(fix_dashes(w, spec) for w in argv)


def single_dash_long(word: str, spec: Spec) -> str | None:
    """`-name x` where `--name x` was meant (pflag would read it as -n -a -m -e)."""
    if not word.startswith("-") or word.startswith("--") or len(word) < 3:
        return None
    name = word[1:].split("=", 1)[0]
    flag = spec.by_long(name)
    if flag is None:
        return None
    # A cluster of real shorthands ("-it") is fine when it is not also a long name of
    # three letters or more; a two-letter long name is a slip only if the cluster is bad.
    cluster_ok = _valid_cluster(word[1:], spec)
    if cluster_ok and len(name) < 3:
        return None
    return f'"{word}" has a single dash; long options take two: did you mean "-{word}"?'


def _valid_cluster(letters: str, spec: Spec) -> bool:
    from berth.cli.flags import BOOL

    for i, ch in enumerate(letters):
        flag = spec.by_short(ch)
        if flag is None:
            return False
        if flag.kind != BOOL:
            return True  # the rest is this flag's value
        if i + 1 < len(letters) and letters[i + 1] == "=":
            return True
    return True


def quote_slip(word: str) -> str | None:
    """Typographic quotes that a shell does not strip (“echo hi”)."""
    if word and (word[0] in QUOTE_LOOKALIKES or word[-1] in QUOTE_LOOKALIKES):
        return (f'"{word}" contains typographic quotes ({word[0] if word[0] in QUOTE_LOOKALIKES else word[-1]}), '
                "which the shell passes on as text; use plain quotes (' or \") instead")
    return None


def plural_group(words: list[str]) -> str | None:
    """`berth images ls` for `berth image ls` (and containers, networks, volumes)."""
    if len(words) >= 2 and words[0] in PLURAL_GROUPS:
        sub = words[1]
        if sub in ("ls", "list", "rm", "remove", "inspect", "prune", "create", "pull", "push",
                    "tag", "history", "load", "save", "import", "connect", "disconnect"):
            right = PLURAL_GROUPS[words[0]]
            return (f'"{words[0]} {sub}" is not a berth command; did you mean '
                    f'"berth {right} {sub}"?')
    return None


def suggest(word: str, choices: list[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    return close[0] if close else None
