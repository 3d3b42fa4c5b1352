"""The static token file: kube-apiserver's CSV format, hashed tokens, reload, failing closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from authsvc.authn.tokenfile import TokenFileAuthenticator, hash_token_column, parse_token_file
from authsvc.errors import BackendUnavailable, ConfigError
from authsvc.identity import UserInfo

FILE = """\
plain-token-1,alice,u-1,"dev,ops"
{hashed},bob,u-2
  spaced-token , carol , u-3 , " qa , "

,nobody,u-4
"""


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text(FILE.format(hashed=hash_token_column("hashed-token-2")))
    return path


def test_parses_kube_apiserver_format(token_file: Path) -> None:
    users = {entry[1].username: entry[1] for entry in parse_token_file(token_file.read_text()).values()}
    assert users["alice"] == UserInfo("alice", "u-1", ("dev", "ops"), backend="tokenfile")
    assert users["bob"] == UserInfo("bob", "u-2", backend="tokenfile")
    assert users["carol"].groups == ("qa",)
    assert "nobody" not in users  # an empty token is skipped, as kube-apiserver does


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("only-token,alice\n", "line 1: needs at least 3 columns"),
        ("ok,alice,1\nt2,,2\n", "line 2: the user name is empty"),
        ('t,"unclosed,1\n', "line 1"),
    ],
)
def test_malformed_lines_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_token_file(text, "tokens.csv")


def test_authenticates_plain_and_hashed_tokens(token_file: Path) -> None:
    backend = TokenFileAuthenticator(token_file)
    assert backend.authenticate("plain-token-1") == UserInfo("alice", "u-1", ("dev", "ops"), backend="tokenfile")
    assert backend.authenticate("hashed-token-2") is not None
    assert backend.authenticate("spaced-token") is not None
    for wrong in ("plain-token-2", "plain-token-1x", "PLAIN-TOKEN-1", hash_token_column("hashed-token-2"), "alice"):
        assert backend.authenticate(wrong) is None
    assert "hashed-token-2" not in token_file.read_text()


def test_reloads_when_the_file_changes(token_file: Path) -> None:
    backend = TokenFileAuthenticator(token_file)
    assert backend.authenticate("new-token") is None
    token_file.write_text("new-token,dave,u-5,admins\n")
    assert backend.authenticate("new-token") == UserInfo("dave", "u-5", ("admins",), backend="tokenfile")
    assert backend.authenticate("plain-token-1") is None  # removed from the file: gone at once


def test_same_size_rewrite_is_seen(token_file: Path) -> None:
    # Same length, same second: the inode of an atomic replace (or mtime_ns) still differs.
    backend = TokenFileAuthenticator(token_file)
    replacement = token_file.with_suffix(".new")
    replacement.write_text(token_file.read_text().replace("plain-token-1", "plain-token-9"))
    os.replace(replacement, token_file)
    assert backend.authenticate("plain-token-9") is not None
    assert backend.authenticate("plain-token-1") is None


def test_a_broken_file_fails_closed_until_fixed(token_file: Path) -> None:
    backend = TokenFileAuthenticator(token_file)
    token_file.write_text("plain-token-1,alice\n")  # now malformed
    with pytest.raises(BackendUnavailable, match="line 1"):
        backend.authenticate("plain-token-1")
    assert backend.ready() is False
    token_file.unlink()
    with pytest.raises(BackendUnavailable, match="No such file"):
        backend.authenticate("plain-token-1")
    token_file.write_text("plain-token-1,alice,u-1\n")
    assert backend.authenticate("plain-token-1") is not None
    assert backend.ready() is True


def test_a_missing_or_broken_file_at_start_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        TokenFileAuthenticator(tmp_path / "absent.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("x\n")
    with pytest.raises(ConfigError, match="needs at least 3 columns"):
        TokenFileAuthenticator(bad)
