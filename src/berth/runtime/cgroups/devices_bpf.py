"""Device access control on cgroup v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) built
from the spec's `linux.resources.devices` rules.

The kernel calls the program with `struct bpf_cgroup_dev_ctx {u32 access_type; u32 major;
u32 minor}` (access_type = access << 16 | type); it returns 1 to allow, 0 to deny. Rules are
checked from last to first and the first match decides (so later rules override earlier
ones, as on v1); no match denies. `program(rules)` is pure; `attach(dir, rules)` loads it.
"""

from __future__ import annotations

import os
import struct

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

# eBPF opcodes used here
_LDXW = 0x61        # dst = *(u32 *)(src + off)
_AND32_K = 0x54     # dst &= imm
_RSH32_K = 0x74     # dst >>= imm
_MOV32_K = 0xB4     # dst = imm
_MOV32_X = 0xBC     # dst = src
_JNE_K = 0x55       # if dst != imm goto +off
_JNE_X = 0x5D       # if dst != src goto +off
_EXIT = 0x95
R0, R1, R2, R3, R4, R5 = range(6)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_bits(access: str | None) -> int:
    bits = 0
    for ch in access or "rwm":
        bits |= {"r": ACC_READ, "w": ACC_WRITE, "m": ACC_MKNOD}.get(ch, 0)
    return bits


def program(rules) -> bytes:
    """eBPF bytecode for `rules` (objects with allow, type, major, minor, access)."""
    prologue = [
        _insn(_LDXW, R2, R1, 0),          # r2 = access_type
        _insn(_AND32_K, R2, imm=0xFFFF),  # r2 = device type
        _insn(_LDXW, R3, R1, 0),
        _insn(_RSH32_K, R3, imm=16),      # r3 = requested access
        _insn(_LDXW, R4, R1, 4),          # r4 = major
        _insn(_LDXW, R5, R1, 8),          # r5 = minor
    ]
    blocks: list[bytes] = []
    for rule in reversed(list(rules)):
        checks: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm) jumping past the block
        kind = rule.type or "a"
        if kind in ("b", "c"):
            checks.append((_JNE_K, R2, 0, DEV_BLOCK if kind == "b" else DEV_CHAR))
        acc = _access_bits(rule.access)
        pre: list[bytes] = []
        if acc != (ACC_READ | ACC_WRITE | ACC_MKNOD):
            # match only when every requested bit is in the rule: (r3 & acc) == r3
            pre = [_insn(_MOV32_X, R1, R3), _insn(_AND32_K, R1, imm=acc)]
            checks.append((_JNE_X, R1, R3, 0))
        if rule.major is not None and rule.major >= 0:
            checks.append((_JNE_K, R4, 0, rule.major))
        if rule.minor is not None and rule.minor >= 0:
            checks.append((_JNE_K, R5, 0, rule.minor))
        tail = [_insn(_MOV32_K, R0, imm=1 if rule.allow else 0), _insn(_EXIT)]
        n_checks = len(checks)
        body = list(pre)
        for i, (code, dst, src, imm) in enumerate(checks):
            skip = (n_checks - i - 1) + len(tail)  # jump over the rest of the checks and the tail
            body.append(_insn(code, dst, src, skip, imm))
        blocks.append(b"".join(body + tail))
        if not checks:
            # matches everything: the rules before it can never be reached (the verifier
            # refuses unreachable code)
            return b"".join(prologue) + b"".join(blocks)
    epilogue = [_insn(_MOV32_K, R0, imm=0), _insn(_EXIT)]  # nothing matched: deny
    return b"".join(prologue) + b"".join(blocks) + b"".join(epilogue)


def attach(cgroup_dir: str, rules) -> None:
    """Load the program for `rules` and attach it to the cgroup2 directory."""
    from berth import kernel
    prog = kernel.bpf_prog_load_cgroup_device(program(rules))
    try:
        fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            kernel.bpf_prog_attach_cgroup_device(fd, prog)
        finally:
            os.close(fd)
    finally:
        os.close(prog)
