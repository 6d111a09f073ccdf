"""Process resource limits, clamped to the host's hard limits.

Raising a hard limit needs CAP_SYS_RESOURCE, which a runtime may lack (this host does):
such a request is lowered to the current hard limit rather than failing the container.
"""

from __future__ import annotations

import resource

NAMES = {
    "RLIMIT_CPU": resource.RLIMIT_CPU, "RLIMIT_FSIZE": resource.RLIMIT_FSIZE,
    "RLIMIT_DATA": resource.RLIMIT_DATA, "RLIMIT_STACK": resource.RLIMIT_STACK,
    "RLIMIT_CORE": resource.RLIMIT_CORE, "RLIMIT_RSS": resource.RLIMIT_RSS,
    "RLIMIT_NPROC": resource.RLIMIT_NPROC, "RLIMIT_NOFILE": resource.RLIMIT_NOFILE,
    "RLIMIT_MEMLOCK": resource.RLIMIT_MEMLOCK, "RLIMIT_AS": resource.RLIMIT_AS,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": resource.RLIMIT_SIGPENDING,
    "RLIMIT_MSGQUEUE": resource.RLIMIT_MSGQUEUE, "RLIMIT_NICE": resource.RLIMIT_NICE,
    "RLIMIT_RTPRIO": resource.RLIMIT_RTPRIO, "RLIMIT_RTTIME": resource.RLIMIT_RTTIME,
}
UNLIMITED = 2**64 - 1


def _norm(v: int) -> int:
    return resource.RLIM_INFINITY if v < 0 or v >= UNLIMITED else v


def clamp(soft: int, hard: int, host_hard: int) -> tuple[int, int]:
    """(soft, hard) no higher than the host's hard limit; RLIM_INFINITY counts as largest."""
    soft, hard = _norm(soft), _norm(hard)

    def key(v: int) -> int:
        return UNLIMITED if v == resource.RLIM_INFINITY else v

    if key(hard) > key(host_hard):
        hard = host_hard
    if key(soft) > key(hard):
        soft = hard
    return soft, hard


def apply(rlimits) -> None:
    for rl in rlimits or []:
        num = NAMES.get(rl.type)
        if num is None:
            raise ValueError(f"unknown rlimit {rl.type!r}")
        _cur_soft, host_hard = resource.getrlimit(num)
        try:
            resource.setrlimit(num, clamp(rl.soft, rl.hard, host_hard))
        except (ValueError, OSError) as exc:
            raise OSError(f"setrlimit {rl.type} soft={rl.soft} hard={rl.hard}: {exc}") from None
