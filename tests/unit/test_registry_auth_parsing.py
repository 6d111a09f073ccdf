"""Pure parts of registry auth: WWW-Authenticate parsing, scope strings, htpasswd, tokens."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest

from berth.registry.client.challenge import parse_challenges, pick
from berth.registry.scope import CATALOG, Scope, merge, parse_scope, parse_scopes, repository
from berth.registry.server.auth import Authenticator, AuthSettings, Htpasswd, basic_credentials
from berth.registry.server.errors import RegistryError


def test_bearer_challenge() -> None:
    h = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
         'scope="repository:library/busybox:pull,push"')
    [c] = parse_challenges(h)
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.docker.io/token"
    assert c.service == "registry.docker.io"
    assert c.scope == "repository:library/busybox:pull,push"


def test_basic_challenge_and_preference() -> None:
    cs = parse_challenges(['Basic realm="Registry Realm"', 'Bearer realm="https://x/token",error="insufficient_scope"'])
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert pick(cs) is cs[1] and cs[1].error == "insufficient_scope"
    assert pick(parse_challenges('Basic realm="r"')).scheme == "basic"


def test_challenge_quoting_and_several_in_one_header() -> None:
    cs = parse_challenges('Basic realm="a \\"quoted\\" realm", Bearer realm="https://t/token", service=svc')
    assert cs[0].realm == 'a "quoted" realm'
    assert cs[1].realm == "https://t/token" and cs[1].service == "svc"
    assert parse_challenges("") == [] and parse_challenges(None) == []
    assert pick([]) is None


def test_scope_strings() -> None:
    s = parse_scope("repository:library/busybox:pull,push")
    assert s == Scope("repository", "library/busybox", ("pull", "push"))
    assert str(s) == "repository:library/busybox:pull,push"
    # names may carry a port-like colon; the class suffix is dropped from the type
    assert parse_scope("repository:host:5000/x:pull").name == "host:5000/x"
    assert parse_scope("repository(plugin):vieux/sshfs:pull").type == "repository"
    assert str(CATALOG) == "registry:catalog:*"
    with pytest.raises(ValueError):
        parse_scope("repository:nope")
    with pytest.raises(ValueError):
        parse_scope("repository::pull")


def test_scope_merge_and_cover() -> None:
    merged = merge([repository("a", "pull"), repository("b", "pull"), repository("a", "push", "pull")])
    assert merged == [repository("a", "pull", "push"), repository("b", "pull")]
    assert parse_scopes(["repository:a:pull repository:a:push", "registry:catalog:*"]) == [
        repository("a", "pull", "push"), CATALOG]
    assert repository("a", "pull", "push").covers(repository("a", "pull"))
    assert not repository("a", "pull").covers(repository("a", "push"))
    assert not repository("a", "pull").covers(repository("b", "pull"))
    assert CATALOG.covers(Scope("registry", "catalog", ("*",)))


def test_basic_credentials_header() -> None:
    assert basic_credentials("Basic " + base64.b64encode(b"u:p:w").decode()) == ("u", "p:w")
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Bearer x") is None
    assert basic_credentials(None) is None


def _htpasswd(tmp_path: Path) -> Path:
    p = tmp_path / "htpasswd"
    p.write_text(f"alice:{bcrypt.hashpw(b'secret', bcrypt.gensalt(4)).decode()}\n"
                 "bob:{SHA}notbcrypt\n")
    return p


def test_htpasswd_bcrypt_only(tmp_path: Path) -> None:
    h = Htpasswd(_htpasswd(tmp_path))
    assert h.verify("alice", "secret")
    assert h.verify("alice", "secret")  # cached path
    assert not h.verify("alice", "wrong")
    assert not h.verify("bob", "anything")
    assert not h.verify("carol", "secret")


def test_token_issue_and_authorize(tmp_path: Path) -> None:
    a = Authenticator(AuthSettings(htpasswd=str(_htpasswd(tmp_path)), token_auth=True), tmp_path)
    tok = a.issue("alice", [repository("x", "pull", "push", "bogus")])["token"]
    assert a.authorize(f"Bearer {tok}", [repository("x", "push")], "http://r") == "alice"
    with pytest.raises(RegistryError) as e:
        a.authorize(f"Bearer {tok}", [repository("y", "pull")], "http://r")
    assert e.value.status == 403 and 'error="insufficient_scope"' in e.value.headers["WWW-Authenticate"]
    with pytest.raises(RegistryError) as e:
        a.authorize(None, [repository("x", "pull")], "http://r")
    assert e.value.status == 401
    assert e.value.headers["WWW-Authenticate"] == ('Bearer realm="http://r/token",service="berth-registry",'
                                                   'scope="repository:x:pull"')
    anon = a.issue(None, [repository("x", "pull")])["token"]
    with pytest.raises(RegistryError) as e:
        a.authorize(f"Bearer {anon}", [repository("x", "pull")], "http://r")
    assert e.value.status == 401  # anonymous pull is off by default
    other_key = Authenticator(AuthSettings(htpasswd=str(_htpasswd(tmp_path)), token_auth=True,
                                           token_key_file=str(tmp_path / "other.key")), tmp_path)
    with pytest.raises(RegistryError) as e:
        other_key.authorize(f"Bearer {tok}", [repository("x", "pull")], "http://r")
    assert e.value.status == 401 and "invalid token" in e.value.message


def test_anonymous_pull_grants_pull_only(tmp_path: Path) -> None:
    a = Authenticator(AuthSettings(htpasswd=str(_htpasswd(tmp_path)), token_auth=True, anonymous_pull=True),
                      tmp_path)
    assert a.grant(None, [repository("x", "pull", "push"), CATALOG]) == [repository("x", "pull")]
    assert a.grant("alice", [repository("x", "pull", "push"), CATALOG]) == [repository("x", "pull", "push"), CATALOG]
    basic = Authenticator(AuthSettings(htpasswd=str(_htpasswd(tmp_path)), anonymous_pull=True), tmp_path)
    assert basic.authorize(None, [repository("x", "pull")], "http://r") == ""
    with pytest.raises(RegistryError):
        basic.authorize(None, [repository("x", "pull", "push")], "http://r")
