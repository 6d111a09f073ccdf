"""Test support shared by every test package: per-run names, a busybox rootfs made from
Debian's busybox-static, and a host inspector to check nothing was left behind."""

from __future__ import annotations

import io
import ipaddress
import os
import secrets
import select
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
BUSYBOX = "/bin/busybox"


def venv_exe(name: str) -> str:
    p = VENV_BIN / name
    return str(p) if p.exists() else (shutil.which(name) or name)


@dataclass(frozen=True)
class RunNames:
    """Names unique to one pytest run so concurrent runs never collide."""

    run_id: str
    root: Path           # everything on disk goes under here
    bridge: str          # default bridge device name (<= 15 chars)
    subnet: str          # default bridge subnet
    firewall_prefix: str
    cgroup_parent: str

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "run"

    @property
    def socket(self) -> str:
        return str(self.exec_root / "berth.sock")


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("default", "broadcast", "local", "unreachable"):
            word = line.split()[1] if len(line.split()) > 1 else ""
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    return nets


def free_subnet(prefix: int = 24) -> str:
    used = _used_networks()
    for _ in range(1000):
        cand = ipaddress.ip_network(f"10.{secrets.randbelow(200) + 50}.{secrets.randbelow(256)}.0/{prefix}")
        if not any(cand.overlaps(u) for u in used if u.prefixlen > 0):
            return str(cand)
    raise RuntimeError("no free subnet")


def new_run_names() -> RunNames:
    rid = secrets.token_hex(3)
    root = Path(os.environ.get("BERTH_TEST_ROOT", "/var/tmp")) / f"berth-test-{rid}"
    return RunNames(run_id=rid, root=root, bridge=f"bt{rid}", subnet=free_subnet(),
                    firewall_prefix=f"bt{rid}", cgroup_parent=f"berth-test-{rid}")


def busybox_rootfs_tar(dest: Path) -> Path:
    """A minimal busybox image rootfs as a tar: /bin/busybox plus its applet links."""
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(dest, "w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            tar.addfile(ti)

        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc",
                  "sys", "dev", "var", "home", "var/www"):
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for a in applets:
            a = a.lstrip("/")
            if a == "bin/busybox":
                continue
            ti = tarfile.TarInfo(a)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/bin/busybox"
            tar.addfile(ti)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))
    return dest


@dataclass
class HostState:
    mounts: list[str]
    links: list[str]
    cgroups: list[str]
    firewall: list[str]
    processes: list[str]


def host_state(token: str) -> HostState:
    """What exists on the host whose name carries `token` (a run id or container id)."""
    mounts = [ln for ln in Path("/proc/mounts").read_text().splitlines() if token in ln]
    links = [ln for ln in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
             if token in ln]
    cgroups = [str(p) for p in Path("/sys/fs/cgroup").glob("*/**/") if token in p.name][:50] \
        if len(token) >= 6 else []
    fw = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
    fw = [ln for ln in fw if token.lower() in ln.lower()]
    procs = subprocess.run(["pgrep", "-af", token], capture_output=True, text=True).stdout.splitlines()
    procs = [p for p in procs if "pytest" not in p and "pgrep" not in p]
    return HostState(mounts, links, cgroups, fw, procs)


def unmount_under(*dirs: Path | str) -> None:
    """Lazily unmount every mount at or below `dirs`, deepest first (a few rounds: a lazy
    unmount can uncover one that was mounted beneath it)."""
    tops = [str(d).rstrip("/") for d in dirs]
    for _ in range(3):
        mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()]
        targets = [m for m in mounts if any(m == t or m.startswith(t + "/") for t in tops)]
        if not targets:
            return
        for m in sorted(targets, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)


def remove_cgroup_tree(parent: str) -> None:
    """Remove the cgroup `parent` and those below it, deepest first, in every hierarchy
    (one still holding a process stays)."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / parent
        if not top.is_dir():
            continue
        for d, _, _ in os.walk(top, topdown=False):   # children before their parent
            try:
                os.rmdir(d)
            except OSError:
                pass


def free_port() -> int:
    """A TCP port free on every host address (for publishing with -p)."""
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def ok(r: subprocess.CompletedProcess) -> str:
    """The stdout of a command that must have succeeded (else its args, stdout and stderr)."""
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def host_ipv6() -> str | None:
    """The host's own global IPv6 address on its default route, if it has one."""
    words = subprocess.run(["ip", "-6", "-o", "route", "get", "2001:db8::1"], capture_output=True,
                           text=True).stdout.split()
    return words[words.index("src") + 1] if "src" in words else None


def host_links() -> set[str]:
    """The names of the host's network devices."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()}


def ula_subnet(names: RunNames, n: int) -> ipaddress.IPv6Network:
    """The test run's own IPv6 /64 number `n` (fdRR:RRRR:<n>::/64 from the run id), so
    concurrent runs never collide."""
    rid = names.run_id
    return ipaddress.IPv6Network(f"fd{rid[:2]}:{rid[2:6]}:{n:x}::/64")


def host_address() -> str:
    """The host's own IPv4 address on its default route (not loopback)."""
    words = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.1"], capture_output=True,
                           text=True).stdout.split()
    return words[words.index("src") + 1]


def http_get(url: str, deadline: float = 15) -> str:
    """The body at `url` (busybox wget), retried until it answers or `deadline` passes."""
    import time

    end = time.monotonic() + deadline
    err = ""
    while time.monotonic() < end:
        r = subprocess.run([BUSYBOX, "wget", "-q", "-O-", url], capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            return r.stdout
        err = r.stderr
        time.sleep(0.1)
    raise AssertionError(f"{url}: {err}")


def container_names(daemon) -> set[str]:  # noqa: ANN001 - the tests' `daemon` fixture
    """Every container's names (`/name`) as the daemon lists them with all=1."""
    r = daemon.api("GET", "/containers/json", params={"all": 1})
    return {n for c in r.json() for n in c["Names"]}


def create_refused(daemon, host_config: dict, name: str, status: int = 400) -> str:  # noqa: ANN001
    """Create a busybox container through the API with `host_config`, expect a refusal with
    `status` and no container record left; the daemon's message."""
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config}
    r = daemon.api("POST", "/containers/create", params={"name": name}, json=body)
    assert r.status == status, r.text
    assert f"/{name}" not in container_names(daemon)
    return r.json()["message"]


def private_names(run_names: RunNames, tag: str) -> RunNames:
    """Names for a berthd of the test's own beside the session's (one it stops, kills or
    restarts): its own data root, bridge, subnet, firewall prefix and cgroup parent."""
    token = f"{tag}{run_names.run_id}"
    return replace(run_names, root=run_names.root / tag, bridge=token, subnet=free_subnet(),
                   firewall_prefix=token, cgroup_parent=f"berth-test-{run_names.run_id}-{tag}")


class Terminal:
    """A program on the slave side of a new pseudo-terminal, its controlling terminal (as
    `pty.fork` or a login shell gives one), read and typed at from the master side. What it
    printed gathers in `out`. Leaving the `with` kills it if it still runs."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, *, cwd: Path | str | None = None,
                 size: tuple[int, int] | None = None) -> None:
        import fcntl
        import struct
        import termios

        self.fd, slave = os.openpty()
        if size is not None:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                                         preexec_fn=controlling_tty)
        except BaseException:
            os.close(self.fd)
            raise
        finally:
            os.close(slave)
        self.out = b""

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def resize(self, rows: int, cols: int) -> None:
        """The window changes size (the program gets SIGWINCH)."""
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read(self, timeout: float) -> bytes | None:
        """What the program prints within `timeout` (b"" if nothing), also added to `out`;
        None once no process holds the terminal any more."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return b""
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: every slave fd is closed
            return None
        self.out += data
        return data or None

    def read_until(self, token: bytes, timeout: float = 20) -> bytes:
        """What is printed from now until `token` shows (or the time is up, or the terminal
        closes)."""
        start = len(self.out)
        end = time.monotonic() + timeout
        while token not in self.out[start:] and time.monotonic() < end:
            if self.read(min(0.2, max(0.0, end - time.monotonic()))) is None:
                break
        return self.out[start:]

    def wait(self, timeout: float = 20) -> int:
        """The program's exit code; its output is read meanwhile (into `out`), so it never
        blocks on a full terminal."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            if self.read(0.2) is None:
                break
        code = self.proc.wait(max(0.1, end - time.monotonic()))
        while self.read(0):   # what it printed last
            pass
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)
