"""`berth` image and registry commands against the session daemon and a local berth-registry."""

from __future__ import annotations

import json
import secrets
import stat
import subprocess
from pathlib import Path

import pytest

from support import venv_exe

pytestmark = pytest.mark.root


def berth(daemon, *args: str, config: Path | None = None, input: str | None = None,  # type: ignore[no-untyped-def]
          timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(daemon.env)
    if config is not None:
        env["BERTH_CONFIG"] = str(config)
    return subprocess.run([venv_exe("berth"), *args], env=env, input=input, capture_output=True, text=True,
                          timeout=timeout)


def logged_in(daemon, reg, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A client config directory (BERTH_CONFIG) logged in to the registry `reg`."""
    cfg = tmp_path / "cfg"
    r = berth(daemon, "login", "-u", reg.user, "--password-stdin", reg.host, config=cfg, input=reg.password)
    assert r.returncode == 0, r.stderr
    return cfg


def test_tag_images_history_inspect_rmi(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    repo = f"clitag{secrets.token_hex(3)}"
    assert berth(daemon, "tag", "busybox", f"{repo}:v1").returncode == 0
    try:
        r = berth(daemon, "images", repo)
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
        assert lines[1].split()[:2] == [repo, "v1"] and len(lines) == 2
        bb_id = berth(daemon, "image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
        assert berth(daemon, "images", "-q", repo).stdout.strip() == bb_id.removeprefix("sha256:")[:12]
        fmt = berth(daemon, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", repo).stdout
        assert fmt == f"{repo}:v1 {bb_id.removeprefix('sha256:')[:12]}\n"
        assert berth(daemon, "image", "ls", "--format", "json", repo).stdout.count(repo) == 1
        hist = berth(daemon, "history", f"{repo}:v1").stdout.splitlines()
        assert hist[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
        assert berth(daemon, "inspect", "--format", "{{index .RepoTags 0}}", f"{repo}:v1").returncode == 0
        rmi = berth(daemon, "rmi", f"{repo}:v1")
        assert rmi.returncode == 0 and rmi.stdout == f"Untagged: {repo}:v1\n"
        assert berth(daemon, "images", "-q", repo).stdout == ""
    finally:
        berth(daemon, "rmi", f"{repo}:v1")
    r = berth(daemon, "rmi", f"{repo}:v1")
    assert r.returncode == 1 and "berth: Error response from daemon:" in r.stderr


def test_inspect_missing_object(daemon) -> None:  # type: ignore[no-untyped-def]
    r = berth(daemon, "inspect", "no-such-thing-anywhere")
    assert r.returncode == 1
    assert r.stdout.strip() == "[]" and "No such object: no-such-thing-anywhere" in r.stderr


def test_save_load_and_import_roundtrip(daemon, busybox_image, busybox_tar, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = f"clisave{secrets.token_hex(3)}"
    assert berth(daemon, "tag", "busybox", f"{repo}:1").returncode == 0
    out = tmp_path / "img.tar"
    try:
        r = berth(daemon, "save", "-o", str(out), f"{repo}:1")
        assert r.returncode == 0, r.stderr
        assert out.stat().st_size > 100_000 and not list(tmp_path.glob("*.berth-save-*"))
        assert berth(daemon, "rmi", f"{repo}:1").returncode == 0
        r = berth(daemon, "load", "-i", str(out))
        assert r.returncode == 0, r.stderr
        assert f"Loaded image: {repo}:1" in r.stdout
        run = berth(daemon, "run", "--rm", f"{repo}:1", "echo", "loaded")
        assert run.stdout == "loaded\n"
        # import a rootfs tarball under a new name, from stdin
        with open(busybox_tar, "rb") as fh:
            imp = subprocess.run([venv_exe("berth"), "import", "-", f"{repo}:imported"], env=daemon.env,
                                 stdin=fh, capture_output=True, text=True, timeout=120)
        assert imp.returncode == 0, imp.stderr
        assert imp.stdout.strip().startswith("sha256:")
        run = berth(daemon, "run", "--rm", f"{repo}:imported", "sh", "-c", "echo imported")
        assert run.stdout == "imported\n"
    finally:
        berth(daemon, "rmi", "-f", f"{repo}:1", f"{repo}:imported")


def test_save_refuses_a_terminal_and_a_missing_directory(daemon, busybox_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = berth(daemon, "save", "-o", str(tmp_path / "nodir" / "x.tar"), "busybox")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_login_push_pull_logout(daemon, busybox_image, berth_registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = berth_registry
    cfg = tmp_path / "cfg"
    ref = f"{reg.host}/cli/bb{secrets.token_hex(2)}:1"

    wrong = berth(daemon, "login", "-u", reg.user, "--password-stdin", reg.host, config=cfg, input="wrong\n")
    assert wrong.returncode == 1
    assert "berth: Error response from daemon:" in wrong.stderr
    assert not (cfg / "config.json").exists()

    assert berth(daemon, "tag", "busybox", ref).returncode == 0
    try:
        anon = berth(daemon, "push", ref, config=cfg)
        assert anon.returncode == 1
        assert "berth: " in anon.stderr and ("auth" in anon.stderr.lower() or "denied" in anon.stderr.lower())

        ok = berth(daemon, "login", "-u", reg.user, "--password-stdin", reg.host, config=cfg,
                   input=reg.password + "\n")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "Login Succeeded"
        conf = cfg / "config.json"
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        assert reg.host in json.loads(conf.read_text())["auths"]

        push = berth(daemon, "push", ref, config=cfg)
        assert push.returncode == 0, push.stderr
        assert "digest: sha256:" in push.stdout

        assert berth(daemon, "rmi", ref).returncode == 0
        pull = berth(daemon, "pull", ref, config=cfg)
        assert pull.returncode == 0, pull.stderr
        assert pull.stdout.splitlines()[-1] == ref
        run = berth(daemon, "run", "--rm", ref, "echo", "pulled")
        assert run.stdout == "pulled\n"

        out = berth(daemon, "logout", reg.host, config=cfg)
        assert out.stdout == f"Removing login credentials for {reg.host}\n"
        assert reg.host not in json.loads(conf.read_text()).get("auths", {})
        assert berth(daemon, "logout", reg.host, config=cfg).stdout == f"Not logged in to {reg.host}\n"
    finally:
        berth(daemon, "rmi", "-f", ref)


def test_run_pulls_a_missing_image(daemon, busybox_image, berth_registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = berth_registry
    cfg = logged_in(daemon, reg, tmp_path)
    ref = f"{reg.host}/cli/auto{secrets.token_hex(2)}:1"
    assert berth(daemon, "tag", "busybox", ref).returncode == 0
    try:
        assert berth(daemon, "push", "-q", ref, config=cfg).returncode == 0
        assert berth(daemon, "rmi", ref).returncode == 0
        r = berth(daemon, "run", "--rm", ref, "echo", "auto", config=cfg)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "auto\n"
        assert f"Unable to find image '{ref}' locally" in r.stderr
        search = berth(daemon, "search", f"{reg.host}/cli", config=cfg)
        assert search.returncode == 0, search.stderr
        assert search.stdout.splitlines()[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    finally:
        berth(daemon, "rmi", "-f", ref)


def test_bootstrap_busybox_and_an_unbuildable_tag(daemon) -> None:  # type: ignore[no-untyped-def]
    refused = berth(daemon, "bootstrap", "python:3.8-slim")
    assert refused.returncode == 1
    assert "3.8" in refused.stderr and "3.11" in refused.stderr
    assert berth(daemon, "images", "-q", "python:3.8-slim").stdout == ""
    r = berth(daemon, "bootstrap", "busybox:1.35")
    try:
        assert r.returncode == 0, r.stderr
        assert "Loaded image: busybox:1.35" in r.stdout
        assert "busybox-static" in r.stdout            # says what it was built from
        run = berth(daemon, "run", "--rm", "busybox:1.35", "sh", "-c", "echo bootstrapped")
        assert run.stdout == "bootstrapped\n"
    finally:
        berth(daemon, "rmi", "busybox:1.35")


def test_pull_quiet_all_tags_and_search_flags(daemon, busybox_image, berth_registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = berth_registry
    cfg = logged_in(daemon, reg, tmp_path)
    repo = f"{reg.host}/cli/tags{secrets.token_hex(2)}"
    refs = [f"{repo}:a", f"{repo}:b"]
    try:
        for t in ("a", "b"):
            assert berth(daemon, "tag", "busybox", f"{repo}:{t}").returncode == 0
        push = berth(daemon, "push", "--all-tags", repo, config=cfg)
        assert push.returncode == 0, push.stderr
        assert berth(daemon, "rmi", f"{repo}:a", f"{repo}:b").returncode == 0
        q = berth(daemon, "pull", "-q", f"{repo}:a", config=cfg)
        assert q.returncode == 0 and q.stdout == f"{repo}:a\n"
        assert berth(daemon, "rmi", f"{repo}:a").returncode == 0
        every = berth(daemon, "pull", "--all-tags", repo, config=cfg)
        assert every.returncode == 0, every.stderr
        listed = berth(daemon, "images", "--format", "{{.Tag}}", repo).stdout.split()
        assert sorted(listed) == ["a", "b"]
        import re

        digest = re.search(r"sha256:[0-9a-f]{64}", push.stdout)
        assert digest, push.stdout
        refs.append(f"{repo}@{digest.group(0)}")
        by_digest = berth(daemon, "pull", f"{repo}@{digest.group(0)}", config=cfg)
        assert by_digest.returncode == 0, by_digest.stderr
        assert by_digest.stdout.splitlines()[-1] == f"{repo}@{digest.group(0)}"
        assert berth(daemon, "run", "--rm", f"{repo}@{digest.group(0)}", "echo", "by digest").stdout == "by digest\n"
        bad = berth(daemon, "pull", "-a", f"{repo}:a", config=cfg)
        assert bad.returncode == 125 and "tag can't be used with --all-tags/-a" in bad.stderr
        term = f"{reg.host}/cli"
        lim = berth(daemon, "search", "--limit", "1", "--format", "{{.Name}}", term, config=cfg)
        assert lim.returncode == 0 and len(lim.stdout.split()) == 1
        off = berth(daemon, "search", "--filter", "is-official=true", "--format", "{{.Name}}", term, config=cfg)
        assert off.returncode == 0 and off.stdout == ""
        stars = berth(daemon, "search", "--filter", "stars=0", "--no-trunc", term, config=cfg)
        assert stars.returncode == 0 and repo.split("/", 1)[1] in stars.stdout
    finally:
        berth(daemon, "rmi", *refs)
    assert berth(daemon, "images", "-q", repo).stdout == ""
