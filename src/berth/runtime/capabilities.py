"""Linux capabilities: names, Docker's default set, and applying a process' capability sets.

Order of operations (done by the init just before exec, see `init.py`): drop from the
bounding set (needs CAP_SETPCAP, so before changing uid), keep capabilities across setuid,
change user, then `capset` and raise ambient capabilities.
"""

from __future__ import annotations

from berth import kernel

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
CAP_NUMBERS = {name: i for i, name in enumerate(CAPS)}

# Docker's default capability set for an unprivileged container (CapEff 0x00000000a80425fb)
DOCKER_DEFAULT = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                  "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                  "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


_last_cap: int | None = None


def last_cap() -> int:
    """The highest capability number this kernel knows (read once: the init needs it for
    every capability set, and after pivot_root /proc/sys may be read-only or masked)."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last_cap = int(f.read())
        except OSError:
            _last_cap = len(CAPS) - 1
    return _last_cap


def normalize(name: str) -> str:
    """'net_admin', 'NET_ADMIN' and 'CAP_NET_ADMIN' all mean CAP_NET_ADMIN."""
    n = name.strip().upper()
    return n if n.startswith("CAP_") else "CAP_" + n


def mask(names: list[str] | None) -> int:
    """Bit mask of the named capabilities; names this kernel does not know are ignored
    (as runc does, with a warning elsewhere)."""
    bits = 0
    top = last_cap()
    for name in names or []:
        num = CAP_NUMBERS.get(normalize(name))
        if num is None:
            raise ValueError(f"unknown capability {name!r}")
        if num <= top:
            bits |= 1 << num
    return bits


def all_caps() -> list[str]:
    return CAPS[: last_cap() + 1]


def docker_set(cap_add: list[str] | None = None, cap_drop: list[str] | None = None,
               privileged: bool = False) -> list[str]:
    """Docker's rules: start from the default set (or all when privileged), `ALL` allowed in
    both lists, drops applied after adds unless the add names the capability explicitly."""
    if privileged:
        return all_caps()
    adds = [normalize(c) for c in cap_add or []]
    drops = [normalize(c) for c in cap_drop or []]
    for c in adds + drops:
        if c != "CAP_ALL" and c not in CAP_NUMBERS:
            raise ValueError(f"unknown capability: {c}")
    caps = list(DOCKER_DEFAULT)
    if "CAP_ALL" in drops:
        caps = []
    else:
        caps = [c for c in caps if c not in drops]
    if "CAP_ALL" in adds:
        caps = all_caps()
        caps = [c for c in caps if c not in drops or c in adds]
    else:
        caps += [c for c in adds if c not in caps]
    return [c for c in CAPS if c in caps]


def drop_bounding(keep: int) -> None:
    for num in range(last_cap() + 1):
        if not keep & (1 << num):
            kernel.prctl(kernel.PR_CAPBSET_DROP, num)


def apply(effective: int, permitted: int, inheritable: int, ambient: int) -> None:
    """Set the process' capability sets. Capabilities the runtime itself does not hold
    (e.g. CAP_SYS_RESOURCE in a restricted host) cannot be granted; they are left out, as
    `--privileged` means "everything the host allows" rather than a failure."""
    _eff, have, _inh = kernel.capget()
    bounding = 0
    for num in range(last_cap() + 1):
        try:
            if kernel.prctl(kernel.PR_CAPBSET_READ, num) == 1:
                bounding |= 1 << num
        except OSError:
            pass
    permitted &= have
    effective &= permitted
    inheritable &= have | bounding
    kernel.capset(effective, permitted, inheritable)
    if ambient:
        for num in range(last_cap() + 1):
            if ambient & (1 << num):
                try:
                    kernel.prctl(kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_RAISE, num)
                except OSError:
                    pass  # not in permitted+inheritable: the kernel refuses; runc ignores it too
