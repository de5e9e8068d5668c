"""Atomic writes: a product is complete under its final name or absent; clear errors name file and cause."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

from diffflux.products import ProductError, atomic_save, atomic_write, check_output_dir, write_products
from diffflux.products import atomic as atomic_mod


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_success_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_write(target, "w") as fh:
        fh.write("new content")
        assert target.read_text() == "old"  # nothing visible under the final name before the end
    assert target.read_text() == "new content"
    assert _leftovers(tmp_path) == ["a.txt"]
    assert (target.stat().st_mode & 0o777) == atomic_mod.FILE_MODE


def test_atomic_write_exception_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"previous")
    with pytest.raises(ProductError, match="a.bin.*RuntimeError: boom") as info:
        with atomic_write(target, "wb") as fh:
            fh.write(b"half of it")
            raise RuntimeError("boom")
    assert isinstance(info.value.cause, RuntimeError)
    assert target.read_bytes() == b"previous"
    assert _leftovers(tmp_path) == ["a.bin"]


def test_atomic_write_disk_full_leaves_no_file(tmp_path, monkeypatch):
    """ENOSPC at the fsync (the moment a full disk shows on many file systems): no file, a clear error."""
    target = tmp_path / "big.csv"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_mod.os, "fsync", full)
    with pytest.raises(ProductError) as info:
        with atomic_write(target, "w") as fh:
            fh.write("x" * 10000)
    msg = str(info.value)
    assert "big.csv" in msg and "no space left on device" in msg
    assert info.value.errno == errno.ENOSPC
    assert isinstance(info.value, OSError)
    assert _leftovers(tmp_path) == []


def test_atomic_save_writer_raising_enospc(tmp_path):
    target = tmp_path / "fluxes.nc"

    def writer(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"CDF partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(ProductError, match=r"fluxes\.nc.*no space left on device"):
        atomic_save(target, writer)
    assert _leftovers(tmp_path) == []


def test_atomic_save_success(tmp_path):
    target = tmp_path / "x.dat"
    assert atomic_save(target, lambda tmp: tmp.write_bytes(b"abc")) == target
    assert target.read_bytes() == b"abc"
    assert _leftovers(tmp_path) == ["x.dat"]


def test_check_output_dir_creates_missing_folder(tmp_path):
    out = tmp_path / "a" / "b"
    assert check_output_dir(out) == out
    assert out.is_dir()
    assert _leftovers(out) == []  # the probe file is gone


def test_check_output_dir_refuses_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ProductError, match="exists but is not a folder"):
        check_output_dir(f)
    with pytest.raises(ProductError, match=r"cannot create output folder .*file/sub"):
        check_output_dir(f / "sub")


def test_check_output_dir_unwritable(tmp_path, monkeypatch):
    """A folder where files cannot be created is refused, naming the folder (simulated, since root ignores
    permission bits)."""

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(ProductError, match=rf"output folder '{tmp_path}' is not writable.*Permission denied"):
        check_output_dir(tmp_path)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user"
)
def test_check_output_dir_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ProductError, match="is not writable"):
            check_output_dir(ro)
    finally:
        ro.chmod(0o700)


def test_write_products_refuses_unwritable_folder_before_writing(tmp_path, forward_record):
    f = tmp_path / "not_a_folder"
    f.write_text("")
    with pytest.raises(ProductError, match="not_a_folder"):
        write_products(forward_record, f / "out", plots=False)


def test_write_products_disk_full_midway(tmp_path, monkeypatch, forward_record):
    """ENOSPC while writing fluxes.nc: the error names the file, no fluxes.nc and no temporary file remain."""
    import xarray as xr

    real = xr.Dataset.to_netcdf

    def to_netcdf_full(self, path=None, *args, **kwargs):
        real(self, path, *args, **kwargs)  # a complete temporary file, then the disk fills at close
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", to_netcdf_full)
    with pytest.raises(ProductError, match=r"fluxes\.nc.*no space left on device"):
        write_products(forward_record, tmp_path, plots=False)
    assert not (tmp_path / "fluxes.nc").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
