"""Zip archives written field by field, and mutations of each field and of the bytes.

`build_zip` writes local headers, data, the central directory and its end record itself, so a
mutation can set any field to any value (a method zipfile does not know, a lying size, a Unix
mode, a flag, raw name bytes, a zip64 extra) and then flip or cut the bytes of one region.
The data of the known methods is compressed by zipfile itself (one entry written in memory),
so an unmutated entry is exactly what Python's zipfile writes.
"""

from __future__ import annotations

import functools
import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field, replace

from .choices import Chooser

KNOWN_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# Methods of the zip specification zipfile cannot inflate: shrink, implode, deflate64, zstd, xz, ppmd, AES.
UNKNOWN_METHODS = (1, 6, 9, 10, 18, 93, 95, 98, 99, 0xFFFF)
_DATE, _TIME = (2026 - 1980) << 9 | 1 << 5 | 1, 12 << 11
_ZIP64 = 0xFFFFFFFF


@dataclass
class Entry:
    """One member of a zip (or one file of a folder). Fields left None take their true values."""

    name: str
    data: bytes = b""
    method: int = zipfile.ZIP_DEFLATED
    folder: bool = False
    mode: int | None = None  # Unix st_mode in the external attributes; None: a plain file or folder
    create_system: int = 3
    flags: int = 0
    version: int = 20
    raw_name: bytes | None = None  # the name's bytes in both headers, instead of name encoded
    local_name: bytes | None = None  # another name in the local header only
    payload: bytes | None = None  # the stored bytes, instead of `data` compressed by `method`
    file_size: int | None = None
    compress_size: int | None = None
    crc: int | None = None
    zip64: bool = False
    extra: bytes = b""  # more extra fields, after the zip64 one


def entries_from_files(files: dict[str, bytes], folders: tuple[str, ...] = ()) -> list[Entry]:
    """Entries for a tree given as {path: bytes}; `folders` get entries of their own first (as zip -r writes)."""
    return [Entry(f.rstrip("/") + "/", folder=True, method=zipfile.ZIP_STORED) for f in folders] + [
        Entry(name, data) for name, data in files.items()
    ]


def compress(data: bytes, method: int) -> bytes:
    """`data` compressed as zipfile stores it with `method`; unknown methods store the bytes as they are."""
    if method not in KNOWN_METHODS:
        return data
    return _compress_small(data, method) if len(data) < 2**16 else _compress(data, method)


@functools.lru_cache(maxsize=1024)
def _compress_small(data: bytes, method: int) -> bytes:
    return _compress(data, method)  # the valid inputs' members, compressed again in most cases


def _compress(data: bytes, method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("x", data)
    return _stored_bytes(buffer)


def _stored_bytes(buffer: io.BytesIO) -> bytes:
    """The stored (compressed) bytes of the only member of the zip in `buffer`."""
    info = zipfile.ZipFile(buffer).infolist()[0]
    raw = buffer.getvalue()
    local_extra = struct.unpack("<H", raw[info.header_offset + 28 : info.header_offset + 30])[0]
    start = info.header_offset + 30 + len(info.filename) + local_extra
    return raw[start : start + info.compress_size]


@dataclass
class Built:
    """A zip's bytes and where each of its regions lies, for byte-level mutations."""

    data: bytes
    regions: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def build_zip(entries: list[Entry], *, comment: bytes = b"", prefix: bytes = b"", count: int | None = None,
              cd_shift: int = 0) -> Built:
    """The zip of `entries`; `prefix` bytes before it (a self-extractor), `count`/`cd_shift` lie in the end record."""
    out = bytearray(prefix)
    regions: dict[str, list[tuple[int, int]]] = {"local": [], "data": [], "central": [], "end": []}
    central = bytearray()
    for entry in entries:
        name = entry.raw_name if entry.raw_name is not None else entry.name.encode("utf-8", "surrogateescape")
        flags = entry.flags | (0x800 if entry.raw_name is None and not entry.name.isascii() else 0)
        payload = entry.payload if entry.payload is not None else compress(entry.data, entry.method)
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.file_size is None else entry.file_size
        csize = len(payload) if entry.compress_size is None else entry.compress_size
        zip64 = entry.zip64 or size > _ZIP64 or csize > _ZIP64
        extra = (struct.pack("<HHQQ", 1, 16, size % 2**64, csize % 2**64) if zip64 else b"") + entry.extra
        size32, csize32 = (_ZIP64, _ZIP64) if zip64 else (size, csize)
        mode = entry.mode if entry.mode is not None else (0o40755 if entry.folder else 0o100644)
        attributes = (mode << 16) | (0x10 if entry.folder else 0)
        local_name = entry.local_name if entry.local_name is not None else name
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", entry.version, flags, entry.method & 0xFFFF, _TIME, _DATE,
                           crc & _ZIP64, size32, csize32, len(local_name), len(extra)) + local_name + extra
        regions["local"].append((offset, len(out)))
        regions["data"].append((len(out), len(out) + len(payload)))
        out += payload
        start = len(central)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", (entry.create_system << 8) | 20, entry.version, flags,
                               entry.method & 0xFFFF, _TIME, _DATE, crc & _ZIP64, csize32, size32, len(name),
                               len(extra), 0, 0, 0, attributes & _ZIP64, offset - len(prefix)) + name + extra
        regions["central"].append((start, len(central)))
    cd_offset = len(out)
    regions["central"] = [(cd_offset + a, cd_offset + b) for a, b in regions["central"]]
    out += central
    total = len(entries) if count is None else count
    end = len(out)
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, total & 0xFFFF, total & 0xFFFF, len(central),
                       (cd_offset - len(prefix) + cd_shift) % 2**32, len(comment)) + comment
    regions["end"].append((end, len(out)))
    return Built(bytes(out), regions)


def zip_bytes(entries: list[Entry]) -> bytes:
    return build_zip(entries).data


# --- mutations of the members' fields ----------------------------------------------------------------------------


def _file_entries(entries: list[Entry]) -> list[int]:
    return [i for i, e in enumerate(entries) if not e.folder] or list(range(len(entries)))


def mutate_fields(ch: Chooser, entries: list[Entry], payloads: dict[str, bytes], honest_bombs: bool = True) -> str:
    """Change the header fields of one member (or add one); returns what it did. A bomb declares its
    true size only if `honest_bombs` (a submission's limits refuse it; the ground truth's let it be read)."""
    if not entries:
        entries.append(Entry("short/x/0/0-0.json", b"{}"))
    i = ch.pick(_file_entries(entries))
    e = entries[i]
    kind = ch.pick(("method", "unknown_method", "declared_size", "huge_size", "compress_size", "crc", "bomb",
                    "unix_mode", "flags", "version", "utf8_name", "local_name", "zip64", "extra", "create_system",
                    "lzma_header"))
    if kind == "method":
        e.method = ch.pick(KNOWN_METHODS)
        return f"{e.name}: compressed with method {e.method}"
    if kind == "unknown_method":
        e.method = ch.pick(UNKNOWN_METHODS)
        return f"{e.name}: compression method {e.method} (unknown to zipfile)"
    if kind == "declared_size":
        e.file_size = ch.pick((0, 1, max(len(e.data) - 1, 0), len(e.data) + 1, len(e.data) * 2 + 7))
        return f"{e.name}: declares {e.file_size} bytes (holds {len(e.data)})"
    if kind == "huge_size":
        e.file_size = ch.pick((2**31 - 1, _ZIP64 - 1, 600 * 2**20, 2**40, 2**63 - 1, 2**64 - 1))
        return f"{e.name}: declares {e.file_size} bytes"
    if kind == "compress_size":
        size = len(e.payload if e.payload is not None else compress(e.data, e.method))
        e.compress_size = ch.pick((0, 1, max(size - 1, 0), size + 1, size + 4096, 2**31, _ZIP64 - 1))
        return f"{e.name}: compressed size {e.compress_size} (is {size})"
    if kind == "crc":
        e.crc = zlib.crc32(e.data) ^ (1 << ch.integer(0, 31))
        return f"{e.name}: wrong CRC"
    if kind == "bomb":
        method = ch.pick(tuple(payloads))
        e.method, e.payload = {"deflate": zipfile.ZIP_DEFLATED, "bzip2": zipfile.ZIP_BZIP2,
                               "lzma": zipfile.ZIP_LZMA}[method], payloads[method]
        honest = honest_bombs and ch.chance(30)
        e.file_size = BOMB_BYTES if honest else len(e.data)
        e.crc = _zeros_crc() if honest else None
        return f"{e.name}: a {method} bomb of {BOMB_BYTES} bytes declaring {e.file_size}"
    if kind == "unix_mode":
        e.mode = ch.pick((stat.S_IFLNK | 0o777, stat.S_IFCHR | 0o644, stat.S_IFBLK | 0o644, stat.S_IFIFO | 0o644,
                          stat.S_IFSOCK | 0o644, stat.S_IFDIR | 0o755, 0o644, 0o100000, 0xFFFF))
        if stat.S_ISLNK(e.mode) and ch.chance(50):
            e.data = ch.pick((b"/etc/passwd", b"../../../outside.json", b"0-1.json"))
        return f"{e.name}: Unix mode {e.mode:o}"
    if kind == "flags":
        e.flags |= ch.pick((0x1, 0x8, 0x20, 0x40, 0x800, 0x2000, 0xFFFF))
        return f"{e.name}: flag bits {e.flags:#x}"
    if kind == "version":
        e.version = ch.pick((0, 45, 63, 64, 99, 0xFFFF))
        return f"{e.name}: version needed {e.version}"
    if kind == "utf8_name":
        name = e.name.encode("utf-8", "surrogateescape")
        spot = ch.integer(0, max(len(name) - 1, 0))
        e.raw_name = name[:spot] + ch.pick((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe9", b"\x80")) + name[spot + 1 :]
        e.flags |= 0x800 if ch.chance(70) else 0
        return f"{e.name}: raw name {e.raw_name!r}, flags {e.flags:#x}"
    if kind == "local_name":
        name = e.name.encode("utf-8", "surrogateescape")
        e.local_name = ch.pick((name.upper(), name + b"x", b"", name[:-1], b"\xff" + name[1:], name[:-1] + b"\xe9"))
        e.flags |= 0x800 if ch.chance(50) else 0  # the local name then has to be UTF-8
        return f"{e.name}: local header names it {e.local_name!r}, flags {e.flags:#x}"
    if kind == "zip64":
        e.zip64 = True
        return f"{e.name}: sizes in a zip64 extra"
    if kind == "extra":
        e.extra = ch.pick((b"\x01\x00\x08\x00" + b"\xff" * 8, b"\x01\x00\x04\x00\x00", b"\x55\x54\xff\xff",
                           b"\x01\x00", b"\x75\x70\x05\x00\x01\x00\x00\x00\x00", ch.binary(1, 12)))
        return f"{e.name}: extra field {e.extra!r}"
    if kind == "lzma_header":
        e.method = zipfile.ZIP_LZMA
        # version (2 bytes), size of the properties (2), the properties (5: lc/lp/pb, dictionary size)
        stored = bytearray(compress(e.data, zipfile.ZIP_LZMA))
        field_at, value = ch.pick(((5, b"\xff\xff\xff\xff"), (5, b"\x00\x00\x00\x00"), (4, b"\xff"), (2, b"\x00\x00"),
                                   (2, b"\xff\xff"), (0, b"\xff\xff")))
        stored[field_at : field_at + len(value)] = value
        e.payload = bytes(stored)
        return f"{e.name}: LZMA header bytes {field_at}.. set to {value!r}"
    e.create_system = ch.pick((0, 1, 11, 19, 255))
    e.mode = ch.pick((None, stat.S_IFLNK | 0o777, 0xFFFF))
    return f"{e.name}: made by system {e.create_system}, mode {e.mode}"


BOMB_BYTES = 256 * 2**20  # what a bomb payload inflates to


def bomb_payloads() -> dict[str, bytes]:
    """Compressed BOMB_BYTES zero bytes for each method that can hold a bomb, as zipfile would store them."""
    return {name: _compressed_zeros(method) for name, method in
            (("deflate", zipfile.ZIP_DEFLATED), ("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA))}


@functools.cache
def _zeros_crc() -> int:
    crc, chunk = 0, bytes(2**22)
    for _ in range(BOMB_BYTES // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return crc


@functools.cache
def _compressed_zeros(method: int) -> bytes:
    buffer = io.BytesIO()
    chunk = bytes(2**22)
    with zipfile.ZipFile(buffer, "w", method) as archive, archive.open("x", "w", force_zip64=False) as out:
        for _ in range(BOMB_BYTES // len(chunk)):
            out.write(chunk)
    return _stored_bytes(buffer)


# --- mutations of the whole archive -------------------------------------------------------------------------------


def mutate_bytes(ch: Chooser, built: Built) -> tuple[bytes, str]:
    """Flip, cut, prepend or append bytes, aimed at one region of the archive."""
    data = bytearray(built.data)
    kind = ch.pick(("flip", "flip", "truncate", "prepend", "append", "end_record", "empty", "random"))
    if kind in ("flip", "truncate"):
        region = ch.pick([name for name, spans in built.regions.items() if spans])
        start, stop = ch.pick(built.regions[region])
        at = ch.integer(start, max(start, stop - 1))
        if kind == "truncate":
            return bytes(data[:at]), f"cut at byte {at} (in the {region} region)"
        for _ in range(ch.integer(1, 4)):
            spot = min(len(data) - 1, at + ch.integer(0, 7))
            data[spot] = ch.pick((0x00, 0xFF, data[spot] ^ (1 << ch.integer(0, 7)), ch.integer(0, 255)))
        return bytes(data), f"bytes flipped near {at} (in the {region} region)"
    if kind == "prepend":
        junk = ch.pick((b"MZ" + bytes(62), b"#!/bin/sh\nexit 0\n", ch.binary(1, 64), b"PK\x03\x04"))
        return bytes(junk) + bytes(data), f"{len(junk)} bytes before the archive"
    if kind == "append":
        junk = ch.pick((b"\x00" * 100, ch.binary(1, 64), b"PK\x05\x06" + bytes(18), bytes(data[-22:])))
        return bytes(data) + bytes(junk), f"{len(junk)} bytes after the archive"
    if kind == "end_record":
        end = built.regions["end"][0][0]
        field_at = end + ch.pick((4, 6, 8, 10, 12, 16, 20))
        width = 4 if field_at - end in (12, 16) else 2
        value = ch.pick((0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF))
        data[field_at : field_at + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
        return bytes(data), f"end record field at +{field_at - end} set to {value}"
    if kind == "empty":
        return b"", "an empty file"
    return ch.binary(0, 512), "random bytes"


def nest(entries: list[Entry], ch: Chooser) -> tuple[list[Entry], str]:
    """The submission zipped once more, as one member of a new zip (or beside the original members)."""
    inner = zip_bytes(entries)
    name = ch.pick(("submission.zip", "short/a/0/0-0.json", "predictions.zip/"))
    nested = [Entry(name, inner, method=ch.pick(KNOWN_METHODS))]
    if ch.chance(40):
        nested = [*entries, *nested]
    return nested, f"nested zip as {name!r}"


def copy_entries(entries: list[Entry]) -> list[Entry]:
    return [replace(e) for e in entries]
