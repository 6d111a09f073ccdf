"""Journeys benchmark: wall time of README.md's three journeys with berth beside the same
steps with Debian's dockerd, measured in the same run.

Usage (as root): .venv/bin/python bench/journeys/run.py [--runs N] [--skip-scikit]

Set-up (untimed, everything the script's own and removed at the end, even on Ctrl-C):
- a berth-registry on a free loopback port with htpasswd auth (tests/fixtures/registry.py),
  under its own temporary directory;
- a berthd with its own data root, exec root, socket, bridge, subnet, firewall prefix and
  cgroup parent, started with `--hub-endpoint URL`, so berth reaches that registry as
  docker.io (the README's set-up does the same through /etc/berth/daemon.json);
- Debian's dockerd with its own roots, socket, pidfile and bridge (tests/fixtures/dockerd.py,
  which runs it with --iptables=false; the script adds a masquerade rule for dockerd's
  subnet in an nftables table of its own, so `RUN pip install` reaches PyPI from dockerd's
  build containers as it does from berth's);
- python:3.11-slim and nginx:latest, bootstrapped from Debian packages
  (`berth.bootstrap.build_image`, cache /var/cache/berth-bootstrap), are loaded into both
  engines and pushed (by berth) to the registry as library/python and library/nginx. The
  registry also gets dockerd's own compressed copy of the python layers (pushed by docker to
  a repository `seed/python`), so neither engine has to upload base layers in the timed
  push. dockerd cannot send docker.io to another registry, so docker's steps write the
  registry host explicitly (`127.0.0.1:PORT/library/nginx:latest`,
  `127.0.0.1:PORT/USER/scikitlearn_modellearn:latest`); nginx is also tagged under that
  name in dockerd, so the image is present for both and `pull` checks it is up to date.

Timed: each journey's commands as README.md writes them (scripts/journeys.py), run by the
`berth` CLI against berthd and by Debian's `docker` CLI (DOCKER_BUILDKIT=0, the classic
builder, which is what Debian's docker.io without buildx gives) against dockerd; every
figure is wall-clock time of the client commands, client start-up included. Slips from
README.md: `login` reads the password from stdin (`-u USER --password-stdin`) instead of
prompting; `curl` is replaced by polling the published port until the first GET returns the
welcome page (the time from `run -d` to a served page is in the figure); the published port
is a free one instead of 8001. `docker search` goes to Docker Hub whatever the registry, so
the search step is timed for berth only and reported apart. The scikit-learn build is cold
(no build cache) and its `RUN pip install` step, which downloads from PyPI, is reported
apart from the rest: its time is measured from the client's "Step N/M : RUN pip" line to the
next step's line; inside it, pip's own run ends at its "Successfully installed" line and the
rest is the engine committing the layer. Between runs (untimed) the journeys' containers, images and build cache
are removed, so each run starts from the same state. Runs alternate which engine goes
first. Figures are medians: scikit-learn runs --runs times (default 1), hello and nginx,
which take about a second, 5 times as often.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "src"))

from journeys import journeys  # noqa: E402

from fixtures.daemon import DaemonHandle, _cleanup_host, start_daemon  # noqa: E402
from fixtures.dockerd import DockerdHandle, start_dockerd, stop_dockerd  # noqa: E402
from fixtures.registry import RunningRegistry, start_berth_registry  # noqa: E402
from support import RunNames, free_subnet  # noqa: E402

BERTH = str(REPO / ".venv" / "bin" / "berth")
DOCKER = "/usr/bin/docker"
CACHE = os.environ.get("BERTH_BOOTSTRAP_CACHE", "/var/cache/berth-bootstrap")
BASES = ("python:3.11-slim", "nginx:latest")
QUICK = 5            # hello and nginx take a second: they run QUICK times per --runs
STEP = re.compile(r"^Step \d+/\d+ : (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Failed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


@dataclass
class Engine:
    """One engine and how the README's lines become its commands."""

    name: str                      # "berth" or "docker"
    exe: str
    env: dict[str, str]
    registry: RunningRegistry
    steps: dict[str, list[float]] = field(default_factory=dict)
    typed: dict[str, list[str]] = field(default_factory=dict)
    pushed_mb: list[float] = field(default_factory=list)
    recording: bool = True         # note the commands typed (first run only)

    def argv(self, line: str) -> list[str]:
        """README line -> argv for this engine (registry host explicit for docker)."""
        words = shlex.split(line)
        assert words[0] == "berth", line
        reg, user = self.registry.host, self.registry.user
        out = []
        for w in words[1:]:
            w = w.replace("USER/", f"{user}/")
            if self.name == "docker":
                if w in ("nginx", "nginx:latest"):
                    w = f"{reg}/library/nginx:latest"
                elif w.startswith(f"{user}/"):
                    w = f"{reg}/{w}"
            out.append(w)
        return [self.exe, *out]

    def login_argv(self) -> list[str]:
        """`login` to the run's registry, the password on stdin (docker names the host)."""
        reg = self.registry
        return [self.exe, "login", "-u", reg.user, "--password-stdin", *([reg.host] if self.name == "docker" else [])]

    def run(self, argv: list[str], cwd: Path = REPO, input: str | None = None,
            timeout: float = 900) -> str:
        r = subprocess.run(argv, cwd=cwd, env=self.env, input=input, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise Failed(f"{self.name}: `{shlex.join(argv)}` exited {r.returncode}:\n"
                         f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r.stdout + r.stderr

    def quiet(self, *args: str) -> None:
        """Untimed housekeeping: failures do not matter (the thing may already be gone)."""
        subprocess.run([self.exe, *args], env=self.env, capture_output=True, timeout=300)

    def timed(self, journey: str, label: str, argv: list[str], cwd: Path = REPO,
              input: str | None = None, check: Callable[[str], bool] | None = None) -> str:
        t0 = time.perf_counter()
        out = self.run(argv, cwd=cwd, input=input)
        self.record(journey, label, time.perf_counter() - t0)
        self.note(journey, argv)
        if check is not None and not check(out):
            raise Failed(f"{self.name}: `{shlex.join(argv)}` printed something unexpected:\n{out[-3000:]}")
        return out

    def note(self, journey: str, argv: list[str]) -> None:
        if self.recording:
            self.typed.setdefault(journey, []).append(f"{self.name} {shlex.join(argv[1:])}")

    def record(self, journey: str, label: str, seconds: float) -> None:
        self.steps.setdefault(f"{journey}|{label}", []).append(seconds)


# --- the journeys ------------------------------------------------------------------------------

def commands(journey: str) -> Iterator[tuple[Path, str]]:
    """The journey's README lines but its `cd`s, each with the directory it runs in (a `cd`
    moves it, as in the reader's shell)."""
    cwd = REPO
    for line in journeys()[journey]:
        if line.startswith("cd "):
            cwd = (cwd / shlex.split(line)[1]).resolve()
            continue
        yield cwd, line


def hello(e: Engine) -> None:
    for cwd, line in commands("hello"):
        argv = e.argv(line)
        if argv[1] == "run":
            check = lambda out: "Hello" in out  # noqa: E731
        else:   # every run builds cold: a cached build would not be the journey a newcomer times
            check = lambda out: "Using cache" not in out  # noqa: E731
        e.timed("hello", " ".join(shlex.split(line)[1:2]), argv, cwd=cwd, check=check)


def wait_page(port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                if resp.status == 200 and b"Welcome to nginx!" in resp.read():
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.01)
    raise Failed(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f} s")


def nginx(e: Engine) -> None:
    reg = e.registry
    port = free_port()
    for line in journeys()["nginx"]:
        words = shlex.split(line)
        if words[0] == "curl":
            t0 = time.perf_counter()
            wait_page(port)
            e.record("nginx", "first GET", time.perf_counter() - t0)
            continue
        cmd = words[1]
        if cmd == "login":
            e.timed("nginx", "login", e.login_argv(), input=reg.password, check=lambda out: "Login Succeeded" in out)
            continue
        if cmd == "search":
            if e.name == "berth":
                e.timed("nginx", "search", e.argv(line),
                        check=lambda out: re.search(r"^nginx\s", out, re.M) is not None)
            continue
        argv = e.argv(line.replace("8001:", f"{port}:"))
        check = None
        if cmd == "images":
            check = lambda out: re.search(r"^\S*nginx\s+latest\s", out, re.M) is not None  # noqa: E731
        e.timed("nginx", cmd, argv, check=check)


def report_check(out: str) -> bool:
    return bool(re.search(r"precision\s+recall\s+f1-score\s+support", out)) and "setosa" in out


def scikit(e: Engine) -> None:
    reg = e.registry
    e.run(e.login_argv(), input=reg.password)   # as in the e2e test: logged in before the journey
    for cwd, line in commands("scikit-learn"):
        argv = e.argv(line)
        cmd = argv[1]
        if cmd == "build":
            build_timed(e, argv, cwd)
            continue
        check = report_check if cmd == "run" else None
        label = cmd if cmd != "run" else ("run (built)" if "--rm" not in argv else "run (pulled)")
        e.timed("scikit-learn", label, argv, cwd=cwd, check=check)
        if cmd == "push":
            e.pushed_mb.append(largest_layer_mb(reg, f"{reg.user}/scikitlearn_modellearn"))


def largest_layer_mb(reg: RunningRegistry, repo: str) -> float:
    """Untimed: the compressed size of the pushed image's largest layer (the pip layer)."""
    token = base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
    accept = ", ".join(("application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.oci.image.manifest.v1+json"))
    req = urllib.request.Request(f"{reg.url}/v2/{repo}/manifests/latest",
                                 headers={"Authorization": f"Basic {token}", "Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:
        manifest = json.loads(resp.read())
    return max(layer["size"] for layer in manifest["layers"]) / 1e6


def build_timed(e: Engine, argv: list[str], cwd: Path) -> None:
    """The build, streamed: the RUN pip step's share from the client's step lines (and, inside
    it, pip's own run up to its "Successfully installed" line; the rest is the engine
    committing the layer), and the build without that step."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=e.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    pip_start = pip_done = pip_end = None
    lines = []
    cached = False
    for raw in proc.stdout:
        now = time.perf_counter()
        lines.append(raw)
        raw = ANSI.sub("", raw)
        m = STEP.match(raw.strip())
        if m:
            if pip_start is not None and pip_end is None:
                pip_end = now
            if m.group(1).startswith("RUN pip"):
                pip_start = now
        if pip_start is not None and pip_done is None and "Successfully installed" in raw:
            pip_done = now
        if "Using cache" in raw:
            cached = True
    code = proc.wait()
    end = time.perf_counter()
    out = "".join(lines)
    if code != 0:
        raise Failed(f"{e.name}: `{shlex.join(argv)}` exited {code}:\n{out[-3000:]}")
    if pip_start is None or pip_done is None:
        raise Failed(f"{e.name}: no `Step N/M : RUN pip` line or no pip \"Successfully installed\" line in the "
                     f"build's output:\n{out[-3000:]}")
    if cached:
        raise Failed(f"{e.name}: the build used its cache; the benchmark wants a cold build:\n{out[-3000:]}")
    pip = (pip_end or end) - pip_start
    e.record("scikit-learn", "build w/o pip", end - t0 - pip)
    e.record("scikit-learn", "RUN pip step", pip)
    e.record("scikit-learn", "  pip itself", pip_done - pip_start)
    e.record("scikit-learn", "  layer commit", pip - (pip_done - pip_start))
    e.note("scikit-learn", argv)


def reset(e: Engine) -> None:
    """Untimed: back to the state before the journeys (base images only, logged out)."""
    user, reg = e.registry.user, e.registry.host
    ids = subprocess.run([e.exe, "ps", "-aq"], env=e.env, capture_output=True, text=True, timeout=60).stdout.split()
    if ids:
        e.quiet("rm", "-f", *ids)
    sk = f"{user}/scikitlearn_modellearn:latest"
    e.quiet("rmi", "-f", "hello-world-python", "scikitlearn_modellearn", sk if e.name == "berth" else f"{reg}/{sk}")
    e.quiet("image", "prune", "-f")
    e.quiet("builder", "prune", "-af")
    e.quiet("logout", *([reg] if e.name == "docker" else []))


# --- set-up ------------------------------------------------------------------------------------

def load_bases(berth: Engine, docker: Engine, work: Path, reg: RunningRegistry) -> None:
    from berth.bootstrap import build_image

    seed = dict(berth.env, BERTH_CONFIG=str(work / "seed-config"))
    berth_seed = Engine("berth", BERTH, seed, reg)
    berth_seed.run([BERTH, "login", "-u", reg.user, "--password-stdin", reg.host], input=reg.password)
    docker.run([DOCKER, "login", "-u", reg.user, "--password-stdin", reg.host], input=reg.password)
    for ref in BASES:
        tar = build_image(ref, work / f"{ref.replace(':', '_')}.tar", log=lambda s: None, cache_dir=CACHE).tar_path
        berth.run([BERTH, "load", "-i", str(tar)], timeout=600)
        docker.run([DOCKER, "load", "-i", str(tar)], timeout=600)
        os.unlink(tar)
        remote = f"{reg.host}/library/{ref}"
        berth_seed.run([BERTH, "tag", ref, remote])
        berth_seed.run([BERTH, "push", remote], timeout=600)
        berth_seed.run([BERTH, "rmi", remote])
    berth_seed.run([BERTH, "logout", reg.host])
    # dockerd: nginx present under the name docker's steps use; its own python layers in the registry
    docker.run([DOCKER, "pull", f"{reg.host}/library/nginx:latest"], timeout=600)
    docker.run([DOCKER, "tag", "python:3.11-slim", f"{reg.host}/seed/python:3.11-slim"])
    docker.run([DOCKER, "push", f"{reg.host}/seed/python:3.11-slim"], timeout=600)
    docker.run([DOCKER, "rmi", f"{reg.host}/seed/python:3.11-slim"])
    docker.run([DOCKER, "logout", reg.host])


def masquerade(table: str, subnet: str, bridge: str) -> None:
    rules = (f"add table ip {table}\n"
             f"add chain ip {table} post {{ type nat hook postrouting priority srcnat; }}\n"
             f"add rule ip {table} post ip saddr {subnet} oifname != \"{bridge}\" masquerade\n")
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True)


class Signals:
    """SIGINT/SIGTERM raise KeyboardInterrupt, except while a daemon is being started (a
    half-started daemon would have no handle to stop it by): then the signal waits until
    the start has returned."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending = False
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)

    def handle(self, signum: int, frame: object) -> None:
        if self.deferring:
            self.pending = True
            return
        raise KeyboardInterrupt

    def defer(self) -> None:
        self.deferring = True

    def resume(self) -> None:
        self.deferring = False
        if self.pending:
            raise KeyboardInterrupt


# --- report ------------------------------------------------------------------------------------

def med(e: Engine, key: str) -> float | None:
    v = e.steps.get(key)
    return statistics.median(v) if v else None


def total(e: Engine, journey: str, steps: tuple[str, ...] | None = None,
          exclude: tuple[str, ...] = ()) -> float | None:
    """Median over runs of the sum of a journey's steps (summed per run, then the median).
    Sub-figures (labels starting with a space) are never summed."""
    keys = [k for k in e.steps if k.startswith(journey + "|")]
    labels = [k.split("|", 1)[1] for k in keys]
    keys = [k for k, lab in zip(keys, labels, strict=True)
            if not lab.startswith(" ") and lab not in exclude and (steps is None or lab in steps)]
    if not keys:
        return None
    runs = min(len(e.steps[k]) for k in keys)
    sums = [sum(e.steps[k][i] for k in keys) for i in range(runs)]
    return statistics.median(sums)


def fmt(x: float | None) -> str:
    return f"{x:8.2f}" if x is not None else "     n/a"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:6.2f}" if a is not None and b else "   n/c"


def report(b: Engine, d: Engine, runs: int, reg: RunningRegistry, skipped: bool) -> None:
    print()
    print(f"journeys benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: wall-clock seconds of the "
          f"client commands, median of {runs * QUICK} runs (hello, nginx) and {runs} (scikit-learn)")
    print(f"registry for both: berth-registry with htpasswd auth on {reg.host}; berth reaches it as docker.io "
          "(berthd --hub-endpoint), docker's steps name it explicitly (dockerd cannot redirect docker.io)")
    print("docker: Debian's dockerd + docker CLI, DOCKER_BUILDKIT=0 (classic builder); base images loaded "
          "into both before timing")
    rows = [
        ("hello", total(b, "hello"), total(d, "hello"), "build + run"),
        ("nginx", total(b, "nginx", exclude=("search",)), total(d, "nginx", exclude=("search",)),
         "login, pull (image present: up-to-date check), images, run -it -d -p, until the first GET serves the page"),
        ("nginx: search", med(b, "nginx|search"), None,
         "berth only: docker search always asks Docker Hub, not comparable"),
    ]
    if not skipped:
        build = ("build w/o pip", "RUN pip step")
        rows += [
            ("scikit-learn w/o pip", total(b, "scikit-learn", exclude=("RUN pip step",)),
             total(d, "scikit-learn", exclude=("RUN pip step",)),
             "cold build minus its RUN pip step, run, tag, push, rm, rmi -f, pull, run --rm"),
            ("scikit-learn: pip step", med(b, "scikit-learn|RUN pip step"), med(d, "scikit-learn|RUN pip step"),
             "the build's `RUN pip install` step (network-bound: downloads from PyPI), reported apart"),
            ("  of which pip itself", med(b, "scikit-learn|  pip itself"), med(d, "scikit-learn|  pip itself"),
             "from the step's line to pip's \"Successfully installed\" (the rest is the layer commit)"),
            ("scikit-learn: build", total(b, "scikit-learn", build), total(d, "scikit-learn", build),
             "the whole cold build, pip step included"),
            ("scikit-learn: all", total(b, "scikit-learn"), total(d, "scikit-learn"), "every step, pip included"),
        ]
    print()
    print(f"{'journey':<24}{'berth s':>9}{'docker s':>10}{'ratio':>8}  what the figure contains")
    for name, bv, dv, note in rows:
        print(f"{name:<24}{fmt(bv):>9}{fmt(dv):>10}{ratio(bv, dv):>8}  {note}")
    print("ratio = berth / docker; below 1.00 means berth is faster; n/c = not comparable")
    if b.pushed_mb and d.pushed_mb:
        print(f"pushed pip layer, compressed: berth {statistics.median(b.pushed_mb):.0f} MB, "
              f"docker {statistics.median(d.pushed_mb):.0f} MB (each engine gzips its own layers)")
    print()
    print("per step (median seconds):")
    print(f"  {'journey':<14}{'step':<16}{'berth':>8}{'docker':>9}{'ratio':>8}")
    for key in b.steps | d.steps:
        j, s = key.split("|", 1)
        bv, dv = med(b, key), med(d, key)
        print(f"  {j:<14}{s:<16}{fmt(bv)}{fmt(dv):>9}{ratio(bv, dv):>8}")
    print()
    print("commands timed (PORT = a free port, REG = the registry's 127.0.0.1:PORT):")
    for e in (b, d):
        for j, lines in e.typed.items():
            for line in lines:
                line = line.replace(reg.host, "REG")
                line = re.sub(r"-p \d+:80", "-p PORT:80", line)
                print(f"  [{j}] {line}")


# --- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-scikit", action="store_true",
                    help="leave out the scikit-learn journey (it spends about a minute per engine in pip)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (it starts berthd and dockerd)", file=sys.stderr)
        return 2
    signals = Signals()

    rid = secrets.token_hex(3)
    names = RunNames(run_id=rid, root=Path(f"/var/tmp/berth-bench-journeys-{rid}"), bridge=f"bj{rid}",
                     subnet=free_subnet(), firewall_prefix=f"bj{rid}", cgroup_parent=f"berth-bench-{rid}")
    names.root.mkdir(parents=True)
    # the registry lives apart from names.root: the daemon clean-up kills what runs from there
    reg_dir = Path(tempfile.mkdtemp(prefix=f"berth-bench-journeys-reg-{rid}-", dir="/var/tmp"))
    nft_table = f"bj{rid}nat"
    daemon: DaemonHandle | None = None
    dockerd: DockerdHandle | None = None
    nft_added = False
    b = d = None
    code = 0
    with ExitStack() as stack:
        try:
            reg = stack.enter_context(start_berth_registry(reg_dir))
            print(f"registry {reg.url}; starting berthd (bridge {names.bridge}) and dockerd ...", flush=True)
            signals.defer()
            daemon = start_daemon(names, ["--hub-endpoint", reg.url])
            signals.resume()
            signals.defer()
            dockerd = start_dockerd(names)
            signals.resume()
            signals.defer()
            masquerade(nft_table, dockerd.subnet, dockerd.bridge)
            nft_added = True
            signals.resume()
            env_b = dict(daemon.env, BERTH_CONFIG=str(names.root / "berth-client"), PYTHONUNBUFFERED="1")
            env_d = dict(dockerd.env, DOCKER_CONFIG=str(names.root / "docker-client"), DOCKER_BUILDKIT="0")
            b = Engine("berth", BERTH, env_b, reg)
            d = Engine("docker", DOCKER, env_d, reg)
            print("loading python:3.11-slim and nginx:latest into both, seeding the registry ...", flush=True)
            load_bases(b, d, names.root, reg)
            plan: list[tuple[str, Callable[[Engine], None]]] = [("hello", hello), ("nginx", nginx)]
            if not args.skip_scikit:
                plan.append(("scikit-learn", scikit))
            rounds = args.runs * QUICK
            for i in range(rounds):
                b.recording = d.recording = i == 0
                order = (b, d) if i % 2 == 0 else (d, b)
                for jname, fn in plan:
                    if jname == "scikit-learn" and i % QUICK != 0:
                        continue
                    for e in order:
                        print(f"round {i + 1}/{rounds}: {jname} with {e.name} ...", flush=True)
                        try:
                            fn(e)
                        finally:
                            reset(e)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            code = 130
        except Failed as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            code = 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)   # let the clean-up finish
            try:
                if daemon is not None:
                    daemon.remove_all_containers()
                    daemon.stop()
            finally:
                _cleanup_host(names)
                if dockerd is not None:
                    stop_dockerd(dockerd)
                if nft_added:
                    subprocess.run(["nft", "delete", "table", "ip", nft_table], capture_output=True)
    shutil.rmtree(names.root, ignore_errors=True)
    shutil.rmtree(reg_dir, ignore_errors=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if code == 0 and b is not None and d is not None:
        report(b, d, args.runs, reg, args.skip_scikit)
    return code


if __name__ == "__main__":
    sys.exit(main())
