"""Bootstrap recipes as data: one `Recipe` per base image berth can make from Debian packages.

A recipe says what goes into the image (an mmdebstrap variant and package list, or the
host's busybox-static), what is stripped (docs, locales, man pages, caches), what is added
(files, symlinks) and the image config (env, cmd, entrypoint, workdir, ports, stop
signal, labels). `lookup("python:3.11-slim")` finds one; a tag Debian bookworm cannot
honour is refused with a message saying what bookworm ships, never substituted.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from berth.errors import InvalidParameter

SUITE = "bookworm"
SUITE_VERSION = "12"
# Debian release names a tag may carry; only SUITE is buildable from the configured mirror.
DEBIAN_CODENAMES = ("buzz", "rex", "bo", "hamm", "slink", "potato", "woody", "sarge", "etch",
                    "lenny", "squeeze", "wheezy", "jessie", "stretch", "buster", "bullseye",
                    "bookworm", "trixie", "forky", "duke", "sid")
# 2023-06-10T00:00:00Z, bookworm's release day: the date maintainer scripts see while a
# recipe is built (shadow's "last password change" and the like), so the rootfs does not
# carry the build day. The image's own dates come from its newest package (see builder).
BOOKWORM_EPOCH = 1686355200

STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# dpkg path filters of a "slim" image: kept in the image (/etc/dpkg/dpkg.cfg.d/99mmdebstrap)
# so later `apt-get install`s stay slim too, as in Docker's official slim images.
SLIM_DPKG_FILTERS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)
# Removed after every Debian build: apt lists and caches, logs, backups, host-specific files.
COMMON_STRIP = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/cache/debconf/*-old",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dpkg/*-old",
    "var/log/*.log",
    "var/log/apt/*",
    "dev/*",
    "tmp/*",
    "var/tmp/*",
    "run/*",
    "root/.cache",
)
SLIM_STRIP = (
    "usr/share/doc/*/changelog*",
    "usr/share/doc/*/NEWS*",
    "usr/share/doc/*/README*",
    "usr/share/man/*",
    "usr/share/info/*",
)
# Bytecode written by postinst scripts is neither needed nor byte-for-byte reproducible;
# Docker's python images delete it too. Python rewrites it inside a container as needed.
PYC_STRIP = (
    "usr/lib/python3*/**/__pycache__",
    "usr/lib/python3/dist-packages/**/__pycache__",
    "usr/share/python3/**/__pycache__",
)


@dataclass(frozen=True)
class ExtraFile:
    """A file written into the rootfs after the packages are installed."""

    path: str            # absolute path inside the image
    content: str = ""
    mode: int = 0o644


@dataclass(frozen=True)
class Recipe:
    name: str                           # repository, e.g. "python"
    tags: tuple[str, ...]               # first one is canonical
    summary: str                        # one line for `berth search` and the labels
    # "mmdebstrap": packages from the Debian mirror; "busybox": the host's busybox-static.
    source: str = "mmdebstrap"
    suite: str = SUITE
    variant: str = "minbase"
    packages: tuple[str, ...] = ()      # --include on top of the variant
    # Packages whose versions the labels and description report; the first one gives the
    # image's version. Their upstream versions must match `version` (checked after build).
    main_packages: tuple[str, ...] = ()
    version: str = ""                   # upstream version Debian bookworm ships, e.g. "3.11"
    ships: str = ""                     # human wording: "Python 3.11"
    slim: bool = True
    strip: tuple[str, ...] = ()         # globs (relative to /) removed after the build
    files: tuple[ExtraFile, ...] = ()
    symlinks: tuple[tuple[str, str], ...] = ()   # (path, target)
    env: tuple[tuple[str, str], ...] = (("PATH", STD_PATH),)
    # Env entries whose value is the upstream version of a package: (NAME, package).
    version_env: tuple[tuple[str, str], ...] = ()
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    workdir: str = ""
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()         # deliberate differences from Debian, stated on output
    epoch: int = BOOKWORM_EPOCH

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tags[0]}"

    def digest(self) -> str:
        """Hash of everything in the recipe (cache key part)."""
        raw = json.dumps(asdict(self), sort_keys=True, default=list).encode()
        return hashlib.sha256(raw).hexdigest()

    @property
    def trusts_host_ca(self) -> bool:
        """Images with Debian's CA list also get the host's local CAs (see hostca)."""
        return "ca-certificates" in self.packages

    def dpkg_filters(self) -> tuple[str, ...]:
        return SLIM_DPKG_FILTERS if self.slim else ()

    def strip_globs(self) -> tuple[str, ...]:
        if self.source != "mmdebstrap":
            return self.strip
        return COMMON_STRIP + (SLIM_STRIP if self.slim else ()) + self.strip


_BUSYBOX_PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
_BUSYBOX_GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
www-data:x:33:
users:x:100:
nogroup:x:65534:
"""

# Debian's default site, minus its `listen [::]:80` (fails where a netns has no IPv6).
_NGINX_SITE = """# Written by berth bootstrap: Debian's default site without the IPv6 listener.
server {
	listen 80 default_server;
	root /var/www/html;
	index index.html index.htm index.nginx-debian.html;
	server_name _;
	location / {
		try_files $uri $uri/ =404;
	}
}
"""

_DEBIAN_SUMMARY = "Debian {v} ({s}) {kind}, built from Debian packages with mmdebstrap"

RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="busybox", tags=("latest", "1.35", "1.35.0"),
        summary="BusyBox 1.35 (Debian's busybox-static): /bin/busybox, its applets and /etc/passwd",
        source="busybox", variant="", main_packages=("busybox-static",), version="1.35",
        ships="BusyBox 1.35 (busybox-static)", slim=False,
        files=(ExtraFile("/etc/passwd", _BUSYBOX_PASSWD), ExtraFile("/etc/group", _BUSYBOX_GROUP)),
        cmd=("sh",),
    ),
    Recipe(
        name="debian", tags=("bookworm-slim", "12-slim"),
        summary=_DEBIAN_SUMMARY.format(v=SUITE_VERSION, s=SUITE, kind="minimal (slim) image"),
        main_packages=("base-files",), version=SUITE_VERSION, ships=f"Debian {SUITE_VERSION} ({SUITE})",
        cmd=("bash",), env=(("PATH", STD_PATH),),
    ),
    Recipe(
        name="debian", tags=("bookworm", "12"),
        summary=_DEBIAN_SUMMARY.format(v=SUITE_VERSION, s=SUITE, kind="minbase image with docs"),
        main_packages=("base-files",), version=SUITE_VERSION, ships=f"Debian {SUITE_VERSION} ({SUITE})",
        slim=False, cmd=("bash",),
    ),
    Recipe(
        name="python", tags=("3.11-slim", "3.11-slim-bookworm"),
        summary="Python 3.11 (Debian's python3.11) with pip and venv on Debian bookworm slim",
        packages=("python3", "python3-pip", "python3-venv", "ca-certificates", "netbase", "tzdata"),
        main_packages=("python3.11", "python3-pip"), version="3.11", ships="Python 3.11 (python3.11)",
        strip=PYC_STRIP + ("usr/lib/python3.11/EXTERNALLY-MANAGED",),
        symlinks=(("/usr/local/bin/python", "/usr/bin/python3"), ("/usr/local/bin/pip", "/usr/bin/pip3")),
        env=(("PATH", STD_PATH), ("LANG", "C.UTF-8")),
        version_env=(("PYTHON_VERSION", "python3.11"), ("PYTHON_PIP_VERSION", "python3-pip")),
        cmd=("python3",),
        notes=("/usr/lib/python3.11/EXTERNALLY-MANAGED is removed so `pip install` as root installs "
               "into the system (/usr/local), as Docker's python images allow",
               "python and pip are symlinks in /usr/local/bin to python3 and pip3",
               "bytecode (__pycache__) is not shipped, as in Docker's python images"),
    ),
    Recipe(
        name="nginx", tags=("latest", "1.22", "1.22.1"),
        summary="nginx 1.22 (Debian's nginx) serving the welcome page on port 80",
        packages=("nginx", "ca-certificates"),
        main_packages=("nginx",), version="1.22", ships="nginx 1.22 (nginx)",
        symlinks=(("/var/log/nginx/access.log", "/dev/stdout"),
                  ("/var/log/nginx/error.log", "/dev/stderr")),
        files=(ExtraFile("/etc/nginx/sites-available/default", _NGINX_SITE),),
        version_env=(("NGINX_VERSION", "nginx"),),
        cmd=("nginx", "-g", "daemon off;"), exposed_ports=("80/tcp",), stop_signal="SIGQUIT",
        notes=("the default site serves Debian's index.nginx-debian.html (\"Welcome to nginx!\") "
               "on port 80, IPv4 only (a container may have no IPv6)",
               "logs go to /dev/stdout and /dev/stderr"),
    ),
)


def list_recipes() -> list[Recipe]:
    """Every recipe, in a stable order."""
    return list(RECIPES)


def known_references() -> list[str]:
    return [f"{r.name}:{t}" for r in RECIPES for t in r.tags]


def split_reference(name_tag: str) -> tuple[str, str]:
    """'python:3.11-slim' -> ('python', '3.11-slim'); Docker Hub prefixes are accepted."""
    ref = name_tag.strip()
    if not ref:
        raise InvalidParameter("bootstrap: an image name is required (e.g. python:3.11-slim)")
    if "@" in ref:
        raise InvalidParameter(f"bootstrap: {ref!r}: a digest cannot be bootstrapped; give NAME:TAG")
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    ref = ref.removeprefix("library/")
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        name, tag = ref, "latest"
    if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", name):
        raise InvalidParameter(f"bootstrap: {name_tag!r} is not an image this command can build; "
                               f"known recipes: {', '.join(known_references())}")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise InvalidParameter(f"bootstrap: invalid tag {tag!r} in {name_tag!r}")
    return name, tag


def _leading_version(tag: str) -> str | None:
    m = re.match(r"(\d+(?:\.\d+)*)", tag)
    return m.group(1) if m else None


def _refusal(name: str, tag: str, family: list[Recipe]) -> str:
    ref = f"{name}:{tag}"
    first = family[0]
    available = ", ".join(f"{r.name}:{t}" for r in family for t in r.tags)
    why = ""
    ver = _leading_version(tag)
    codenames = [w for w in re.split(r"[-.]", tag) if w in DEBIAN_CODENAMES and w != first.suite]
    if codenames:
        why = (f"it asks for Debian {codenames[0]}, but the configured mirror is used for Debian "
               f"{SUITE_VERSION} ({SUITE}) only")
    elif ver is not None and ver != first.version and not ver.startswith(first.version + "."):
        if first.version.startswith(ver + "."):
            why = (f"{ref} on Docker Hub follows the newest {ver}.x release; Debian {SUITE} ships "
                   f"{first.ships} only, so it would not be the same image")
        else:
            why = f"Debian {SUITE} ships {first.ships}, not {ver}"
    elif tag in ("latest", "stable", "slim") or tag.startswith(("stable-", "latest-")):
        why = (f"{ref} on Docker Hub follows the newest release, while the configured mirror "
               f"ships {first.ships} ({SUITE})")
    else:
        why = "there is no recipe for that tag"
    return (f"bootstrap: cannot build {ref}: {why}; nothing is substituted. "
            f"Available: {available}")


def lookup(name_tag: str) -> tuple[Recipe, str]:
    """The recipe for NAME[:TAG] and the tag asked for; InvalidParameter when refused."""
    name, tag = split_reference(name_tag)
    family = [r for r in RECIPES if r.name == name]
    if not family:
        raise InvalidParameter(f"bootstrap: no recipe for {name!r} ({name}:{tag}); "
                               f"known recipes: {', '.join(known_references())}")
    for r in family:
        if tag in r.tags:
            return r, tag
    raise InvalidParameter(_refusal(name, tag, family))


def upstream_version(debian_version: str) -> str:
    """'1:1.35.0-4+deb12u1+b1' -> '1.35.0'; '3.11.2-6+deb12u9' -> '3.11.2'."""
    v = debian_version.split(":", 1)[-1]
    if "-" in v:
        v = v.rsplit("-", 1)[0]
    return re.split(r"[+~]", v, maxsplit=1)[0]


def version_matches(recipe_version: str, debian_version: str) -> bool:
    up = upstream_version(debian_version)
    return up == recipe_version or up.startswith(recipe_version + ".")


__all__ = ["ExtraFile", "Recipe", "RECIPES", "list_recipes", "lookup", "split_reference",
           "upstream_version", "version_matches", "known_references"]
