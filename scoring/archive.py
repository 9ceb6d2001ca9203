"""Read the files of a submission, zip or folder, without trusting it.

A zip is checked from its central directory before any byte is inflated: every entry must be a
plain file or folder with a relative path inside the archive (no absolute paths, no `..`, no
symlinks, devices, FIFOs or sockets), and the entry count, the declared uncompressed size and
the compression ratio must stay within `Limits`. No entry is inflated past its declared size
and its CRC is checked, so the declared sizes are a real bound on what is inflated.
"""

from __future__ import annotations

import bz2
import copy
import lzma
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import InvalidSubmission, Location, NotAZip, UnsafeEntry, ZipBomb

MiB = 2**20
_CHUNK = 1 * MiB
_LZMA_MEMORY = 512 * MiB  # what an LZMA entry's dictionary may take (7-Zip's largest preset uses 64 MiB)


@dataclass(frozen=True)
class Limits:
    """Bounds on what a submission may make the scorer read. All are parameters on purpose."""

    max_entries: int = 500_000
    max_total_bytes: int = 4096 * MiB  # uncompressed, whole submission
    max_file_bytes: int = 512 * MiB  # uncompressed, one file
    max_ratio: float = 200.0  # uncompressed / compressed, checked on files above ratio_floor_bytes
    ratio_floor_bytes: int = 1 * MiB
    max_image_pixels: int = 8192 * 8192  # PNG header check, before any pixel is decoded
    max_errors: int = 50  # stop collecting problems after this many


# Files that archivers and desktops add on their own, and the manifests `egomask run-baseline` keeps
# in its output folder to resume a run; never part of a submission.
def is_junk(path: PurePosixPath) -> bool:
    return (
        path.parts[0] == "__MACOSX"
        or path.name in {".DS_Store", "Thumbs.db", "desktop.ini"}
        or path.name.startswith(("._", ".egomask-run-"))
    )


class Source:
    """The regular files of a submission by relative POSIX path, and a way to read each.

    `folders` are the folders the archive or tree names itself (a zip made with `zip -r` lists
    empty folders too), without the parents implied by file paths.
    """

    def __init__(self, files: dict[str, int], folders: frozenset[str] = frozenset()) -> None:
        self.files = files  # relative path -> uncompressed size
        self.folders = folders

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ZipSource(Source):
    def __init__(self, archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], label: str,
                 folders: frozenset[str] = frozenset()) -> None:
        super().__init__({path: info.file_size for path, info in entries.items()}, folders)
        self._zip = archive
        self._entries = entries  # normalised path -> its entry ("a//b" and "./a/b" are listed as "a/b")
        self._label = label

    def read(self, path: str) -> bytes:
        # zipfile's read() without a size inflates everything a lying entry holds before
        # cutting it to the declared size. Asking for exactly the declared size bounds what a
        # stored or deflated entry inflates (zlib is told the maximum) and returns the bytes
        # without a copy; zipfile inflates bzip2 and lzma data a whole compressed chunk at a
        # time, without a bound, so those are inflated here (_inflate_bounded).
        info = self._entries[path]
        try:
            if info.compress_type in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
                return self._inflate_bounded(info)
            with self._zip.open(info) as entry:
                return entry.read(info.file_size)  # a longer stream fails the CRC check
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, OSError, RuntimeError,
                UnicodeDecodeError, zlib.error, lzma.LZMAError) as exc:
            # RuntimeError: encrypted entry; NotImplementedError: unsupported compression; zlib/lzma: damaged
            # data; UnicodeDecodeError: a local header whose name is not the UTF-8 it says it is.
            raise NotAZip(f"cannot read this entry of the zip ({exc})", Location(file=path)) from None

    def _inflate_bounded(self, info: zipfile.ZipInfo) -> bytes:
        """A bzip2 or lzma entry's bytes, never inflating more than it declares, its CRC checked."""
        raw = copy.copy(info)  # the same entry read as stored: its compressed bytes as they are
        raw.compress_type, raw.file_size = zipfile.ZIP_STORED, info.compress_size
        del raw.CRC  # zipfile checks the CRC of what it returns, here the compressed bytes: ours is checked below
        out = bytearray()
        with self._zip.open(raw) as stream:
            decompressor: bz2.BZ2Decompressor | lzma.LZMADecompressor
            if info.compress_type == zipfile.ZIP_BZIP2:
                decompressor, data = bz2.BZ2Decompressor(), stream.read(_CHUNK)
            else:
                decompressor, data = _lzma_decompressor(stream.read(4 + 5), info.filename), stream.read(_CHUNK)
            while len(out) < info.file_size and not decompressor.eof:
                out += decompressor.decompress(data, info.file_size - len(out))
                data = stream.read(_CHUNK) if decompressor.needs_input else b""
                if not data and decompressor.needs_input:
                    break
        if zlib.crc32(out) != info.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
        return bytes(out)

    def close(self) -> None:
        self._zip.close()


def _lzma_decompressor(header: bytes, name: str) -> lzma.LZMADecompressor:
    """A decompressor for a zip's lzma entry: 2 bytes of version, 2 of properties size (5), the LZMA1
    properties, then raw LZMA1 data, which liblzma reads as the .lzma format of those properties."""
    if len(header) < 9 or header[2:4] != b"\x05\x00":
        raise zipfile.BadZipFile(f"the LZMA header of {name!r} is damaged")
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE, memlimit=_LZMA_MEMORY)
    decompressor.decompress(header[4:9] + b"\xff" * 8, 0)  # .lzma: properties, then the size (unknown)
    return decompressor


class DirSource(Source):
    def __init__(self, root: Path, files: dict[str, int], folders: frozenset[str] = frozenset()) -> None:
        super().__init__(files, folders)
        self._root = root

    def read(self, path: str) -> bytes:
        return (self._root / path).read_bytes()


def open_source(path: str | os.PathLike[str], limits: Limits | None = None) -> Source:
    """Open a submission zip or folder after the safety checks. Raises InvalidSubmission."""
    limits = limits or Limits()
    path = Path(path)
    if path.is_dir():
        return _open_dir(path, limits)
    if not path.is_file():
        raise NotAZip(f"{path} does not exist")
    _check_entry_count(path, limits)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise NotAZip(f"this is not a zip archive ({exc}); upload a .zip of the prediction folders",
                      Location(file=path.name)) from None
    except NotImplementedError as exc:  # a "version needed to extract" zipfile does not know
        raise NotAZip(f"this zip needs a feature the scorer cannot read ({exc}); make it again with a standard "
                      f"zip tool (zip -r, or Python's zipfile)", Location(file=path.name)) from None
    try:
        entries, folders = _check_zip(archive, limits)
        return ZipSource(archive, entries, path.name, folders)
    except InvalidSubmission:
        archive.close()
        raise


_CENTRAL_RECORD = b"PK\x01\x02"  # starts each entry's record in the central directory (46 bytes at least)


def _check_entry_count(path: Path, limits: Limits) -> None:
    """Refuse a zip with too many entries from its end record, before zipfile makes an object of
    each (about 500 bytes apiece: a 98 MiB zip of 2 million entries took 1 GB and 11 s to refuse).

    zipfile reads every record the central directory holds, whatever count the end record says,
    so a directory that could hold more than the limit has its records counted too."""
    with path.open("rb") as handle:
        try:
            end = zipfile._EndRecData(handle)  # zipfile's own reading of the end records, zip64 ones too
        except (OSError, zipfile.BadZipFile, struct.error, ValueError):
            return  # not a zip: zipfile says so just after
        if end is None:
            return
        declared, size, location = end[4], end[5], end[9]  # total entries, directory size, where the end record is
        count = declared
        if declared <= limits.max_entries and size > 46 * limits.max_entries:
            count = _count_records(handle, max(location - size - 76, 0), location)  # 76: zip64 end records
        if count > limits.max_entries:
            raise ZipBomb(f"the zip has {count} entries; the limit is {limits.max_entries}")


def _count_records(handle: BinaryIO, start: int, stop: int) -> int:
    """How many central directory records lie in [start, stop) of the file, read in chunks."""
    handle.seek(start)
    count, tail, left = 0, b"", stop - start
    while left > 0 and (chunk := handle.read(min(_CHUNK, left))):
        left -= len(chunk)
        data = tail + chunk
        count += data.count(_CENTRAL_RECORD)
        tail = data[-(len(_CENTRAL_RECORD) - 1) :]  # a record split across two chunks is counted once
    return count


def _relative_posix(name: str) -> PurePosixPath | None:
    """The entry's path if it is safely relative, else None."""
    if "\\" in name or "\0" in name:
        return None
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    path = PurePosixPath(name)
    if any(part == ".." for part in path.parts):
        return None
    return path


def _check_zip(archive: zipfile.ZipFile, limits: Limits) -> tuple[dict[str, zipfile.ZipInfo], frozenset[str]]:
    """The files by normalised path, and the folders the zip lists; raises InvalidSubmission."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise ZipBomb(f"the zip has {len(infos)} entries; the limit is {limits.max_entries}")
    files: dict[str, zipfile.ZipInfo] = {}
    folders: set[str] = set()
    total = 0
    for info in infos:
        where = Location(file=info.filename)
        if not info.filename:  # zipfile itself fails on such an entry (IndexError in is_dir)
            raise UnsafeEntry("the zip has an entry with an empty name; make it again with a standard zip tool")
        path = _relative_posix(info.filename)
        if path is None:
            raise UnsafeEntry("absolute paths and '..' are not allowed in a submission zip", where)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if info.create_system == 3 and kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "a device, FIFO or socket"
            raise UnsafeEntry(f"the zip contains {what}; only plain files and folders are allowed", where)
        if info.is_dir():
            if path.parts and not is_junk(path):
                folders.add(path.as_posix())
            continue
        if not path.parts:  # "." or "./.": a file without a name
            raise UnsafeEntry(f"the zip has a file named {info.filename!r}, which is not a file name; make it again "
                              "with a standard zip tool", where)
        if info.flag_bits & 0x1:
            raise NotAZip("the zip entry is encrypted; upload an unencrypted zip", where)
        if info.file_size > limits.max_file_bytes:
            raise ZipBomb(
                f"the file is {info.file_size} bytes once uncompressed; the limit is {limits.max_file_bytes}", where
            )
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ZipBomb(
                f"suspicious compression ratio ({info.file_size / max(info.compress_size, 1):.0f}:1; "
                f"the limit is {limits.max_ratio:.0f}:1)",
                where,
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ZipBomb(f"the zip holds more than {limits.max_total_bytes} bytes once uncompressed")
        if path.as_posix() in files:
            raise UnsafeEntry("the zip lists this file twice", where)
        if not is_junk(path):
            files[path.as_posix()] = info
    return files, frozenset(folders)


def _open_dir(root: Path, limits: Limits) -> DirSource:
    files: dict[str, int] = {}
    folders: set[str] = set()
    total = 0
    pending = [""]
    while pending:
        relative_dir = pending.pop()
        with os.scandir(root / relative_dir if relative_dir else root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
                if entry.is_symlink():
                    raise UnsafeEntry("symbolic links are not allowed in a submission", Location(file=relative))
                if entry.is_dir(follow_symlinks=False):
                    if not is_junk(PurePosixPath(relative)):
                        folders.add(relative)
                    pending.append(relative)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise UnsafeEntry("devices, FIFOs and sockets are not allowed in a submission",
                                      Location(file=relative))
                if len(files) >= limits.max_entries:
                    raise ZipBomb(f"the submission has more than {limits.max_entries} files")
                size = entry.stat(follow_symlinks=False).st_size
                if size > limits.max_file_bytes:
                    raise ZipBomb(f"the file is {size} bytes; the limit is {limits.max_file_bytes}",
                                  Location(file=relative))
                total += size
                if total > limits.max_total_bytes:
                    raise ZipBomb(f"the submission holds more than {limits.max_total_bytes} bytes")
                if not is_junk(PurePosixPath(relative)):
                    files[relative] = size
    return DirSource(root, files, frozenset(folders))


def extract(path: str | os.PathLike[str], dest: str | os.PathLike[str], limits: Limits | None = None) -> Path:
    """Extract a zip into `dest` after the same safety checks as a submission; return `dest`."""
    dest = Path(dest)
    with open_source(path, limits) as source:
        for name in source.files:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read(name))
    return dest
