"""Client contexts are cached per CA file and follow the file when it changes on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trustme

from pop3watch.errors import ConfigError
from pop3watch.probe import tls


def _write_ca(path: Path, ca: trustme.CA, mtime: float) -> None:
    ca.cert_pem.write_to_path(str(path))
    os.utime(path, (mtime, mtime))


def _trusted_serials(context: object) -> set[int]:
    return {int(c["serialNumber"], 16) for c in context.get_ca_certs()}  # type: ignore[attr-defined]


def _serial(ca: trustme.CA) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(ca.cert_pem.bytes()).serial_number


@pytest.mark.parametrize("keeps_mtime", [False, True], ids=["rewritten", "cp-p"])
def test_a_replaced_ca_file_is_loaded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keeps_mtime: bool
) -> None:
    """Rewritten with a new mtime, or replaced keeping the old one (``cp -p`` and rsync
    do): the new inode and ctime still tell."""
    first, second = trustme.CA(), trustme.CA()
    ca_file = tmp_path / "ca.pem"
    _write_ca(ca_file, first, 1_000_000)
    monkeypatch.setattr(tls, "CA_RESTAT_S", 0.0)

    before = tls.client_context(verify=True, ca_file=ca_file, pinned=False)
    assert tls.client_context(verify=True, ca_file=ca_file, pinned=False) is before
    assert _trusted_serials(before) == {_serial(first)}

    if keeps_mtime:
        staged = tmp_path / "staged.pem"
        _write_ca(staged, second, 1_000_000)
        staged.replace(ca_file)
    else:
        _write_ca(ca_file, second, 2_000_000)
    after = tls.client_context(verify=True, ca_file=ca_file, pinned=False)
    assert after is not before
    assert _trusted_serials(after) == {_serial(second)}


def test_within_the_restat_interval_the_file_is_not_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    _write_ca(ca_file, trustme.CA(), 3_000_000)
    monkeypatch.setattr(tls, "CA_RESTAT_S", 3600.0)
    context = tls.client_context(verify=True, ca_file=ca_file, pinned=False)
    ca_file.unlink()  # a stat now would fail: the cached answer must be used
    assert tls.client_context(verify=True, ca_file=ca_file, pinned=False) is context


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "ca_file {}: No such file or directory"),
        (b"not a certificate\n", "ca_file {} is not a PEM CA bundle: "),
    ],
    ids=["missing", "not-pem"],
)
def test_a_bad_ca_file_is_a_config_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        tls.client_context(verify=True, ca_file=ca_file, pinned=False)
    assert str(caught.value.detail).startswith(message.format(ca_file))


def test_a_nul_byte_in_the_ca_file_path_is_a_config_error() -> None:
    # "embedded null byte" before Python 3.13, "embedded null character in path" since
    with pytest.raises(ConfigError, match="embedded null"):
        tls.trust_key(Path("/tmp/a\x00b"), "localhost")


def test_pinned_or_unverified_contexts_ignore_the_ca_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pem"
    unverified = tls.client_context(verify=False, ca_file=missing, pinned=False)
    pinned = tls.client_context(verify=True, ca_file=missing, pinned=True)
    assert unverified is pinned  # both: no chain verification, one shared context
    assert unverified.check_hostname is False
