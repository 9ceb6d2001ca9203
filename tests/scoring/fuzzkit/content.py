"""Mutations of what a member holds: JSON text, RLE masks, PNG images.

Each mutator takes valid bytes and returns changed bytes and a line saying what changed. JSON
mutations work on the parsed value (a wrong type at one key path) or on the text (nesting,
numbers JSON cannot hold, encodings, duplicate keys); RLE mutations know the mask format
(size, counts string, uncompressed counts); PNG mutations know the chunk structure (IHDR
fields, CRCs, extra chunks, other modes and formats).
"""

from __future__ import annotations

import codecs
import functools
import io
import json
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

from scoring import rle

from .choices import Chooser

_RAW = "@@raw:"  # a string standing for raw JSON text, put in place after dumping

# Values of every JSON type and a few JSON cannot hold (inserted as raw text).
WRONG_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 1.5, -0.0, float("nan"), float("inf"),
    float("-inf"), "", "x", "36x64", "\ud800", "é" * 3, [], [None], [1, 2, 3], {}, {"size": []}, [[[]]],
    _RAW + "1e400", _RAW + "-1e400", _RAW + "1" + "0" * 5000, _RAW + "1e-400", _RAW + "123456789012345678901234567890",
)


def dumps(value: Any) -> bytes:
    """JSON of `value`, with the raw-text markers replaced by their text (numbers JSON cannot hold)."""
    text = json.dumps(value)
    if _RAW in text:
        pieces = text.split('"' + _RAW)
        text = pieces[0] + "".join(piece.split('"', 1)[0] + piece.split('"', 1)[1] for piece in pieces[1:])
    return text.encode()


def _paths(value: Any, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every key path into `value` (dict keys and list indices), the root included, up to 4 deep."""
    out = [prefix]
    if depth >= 4:
        return out
    if isinstance(value, dict):
        for key in list(value)[:6]:
            out += _paths(value[key], (*prefix, key), depth + 1)
    elif isinstance(value, list):
        for index in range(min(len(value), 3)):
            out += _paths(value[index], (*prefix, index), depth + 1)
    return out


def _set(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    value[path[0]] = _set(value[path[0]], path[1:], new)
    return value


def _nested(ch: Chooser) -> str:
    depth = ch.pick((2, 50, 1000, 20_000, 100_000))
    opener, closer = ch.pick((("[", "]"), ('{"a":', "}")))
    return _RAW + opener * depth + ("1" if opener != "[" else "") + closer * depth


def mutate_json(ch: Chooser, data: bytes) -> tuple[bytes, str]:
    """A JSON-level mutation of any JSON file: a wrong value at a key path, or a change of the text."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        body = None
    kind = ch.pick(("wrong_type", "wrong_type", "wrong_type", "nesting", "encoding", "bom", "duplicate_key",
                    "giant_string", "text_edit", "top_level", "remove_key"))
    if kind == "wrong_type" and body is not None:
        path = ch.pick(_paths(body))
        new = _nested(ch) if ch.chance(10) else ch.pick(WRONG_VALUES)
        return dumps(_set(body, path, new)), f"JSON: {list(path)} set to {str(new)[:40]!r}"
    if kind == "nesting" and body is not None:
        path = ch.pick(_paths(body))
        return dumps(_set(body, path, _nested(ch))), f"JSON: deep nesting at {list(path)}"
    if kind == "encoding":
        codec = ch.pick(("utf-16", "utf-16-be", "utf-32", "latin-1-bytes", "invalid-utf8", "surrogate"))
        text = data.decode("utf-8", "replace")
        if codec == "latin-1-bytes":
            return data.replace(b'"', b'"\xe9', 1), "JSON: a Latin-1 byte in a string"
        if codec == "invalid-utf8":
            spot = ch.integer(0, max(len(data) - 1, 0))
            return data[:spot] + ch.pick((b"\xff", b"\xc3\x28", b"\xf8\x88\x80\x80\x80", b"\x80")) + data[spot:], \
                f"JSON: invalid UTF-8 at byte {spot}"
        if codec == "surrogate":
            return data.replace(b'"', b'"\xed\xa0\x80', 1), "JSON: an encoded surrogate in a string"
        return text.encode(codec), f"JSON: encoded as {codec}"
    if kind == "bom":
        bom = ch.pick((codecs.BOM_UTF8, codecs.BOM_UTF8 * 2, b"\xff\xfe", b"\xfe\xff"))
        return bom + data, f"JSON: starts with the bytes {bom!r}"
    if kind == "duplicate_key" and isinstance(body, dict) and body:
        key = ch.pick(list(body))
        other = json.dumps(ch.pick(WRONG_VALUES[:20]))
        text = data.decode("utf-8", "replace").rstrip()
        text = text[:-1] + f', {json.dumps(key)}: {other}}}' if text.endswith("}") else text
        return text.encode(), f"JSON: key {key!r} twice, the second {other[:20]}"
    if kind == "giant_string" and body is not None:
        path = ch.pick(_paths(body))
        size = ch.pick((10_000, 1_000_000, 4_000_000))
        return dumps(_set(body, path, ch.pick(("0", "x", "é", "\\")) * size)), \
            f"JSON: a {size}-character string at {list(path)}"
    if kind == "text_edit" and data:
        spot = ch.integer(0, len(data) - 1)
        edit = ch.pick(("cut", "delete", "insert", "replace"))
        piece = ch.pick((b",", b"}", b"{", b"]", b'"', b"\\", b"\x00", b"NaN", b"//", b"'", b" ", b"\n"))
        changed = {"cut": data[:spot], "delete": data[:spot] + data[spot + 1 :],
                   "insert": data[:spot] + piece + data[spot:], "replace": data[:spot] + piece + data[spot + 1 :]}[edit]
        return changed, f"JSON text: {edit} {piece!r} at byte {spot}"
    if kind == "remove_key" and isinstance(body, dict) and body:
        path = ch.pick([p for p in _paths(body) if p])
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict):
            del parent[path[-1]]
        return dumps(body), f"JSON: {list(path)} removed"
    top = ch.pick((b"", b"null", b"[]", b"[{}]", b'"x"', b"0", b"{}", b"{} {}", b"\x00"))
    return top, f"JSON: the whole file is {top!r}"


# --- RLE masks -----------------------------------------------------------------------------------------------------


def _runs(counts: str, size: tuple[int, int]) -> list[int]:
    """The run lengths of a counts string, or one background run if an earlier mutation broke it."""
    try:
        return [int(v) for v in rle.parse_counts([counts], size[0] * size[1]).runs(0)]
    except rle.RLEFormatError:
        return [size[0] * size[1]]


def _valid_chars(ch: Chooser, n: int) -> str:
    return "".join(chr(48 + ch.integer(0, 63)) for _ in range(n))


def mutate_rle(ch: Chooser, data: bytes) -> tuple[bytes, str]:
    """An RLE-level mutation of a prediction or annotation file {frame: {"size": [h, w], "counts": str} | null}."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        body = None
    frames = [f for f, m in body.items() if isinstance(m, dict) and isinstance(m.get("counts"), str)
              and rle.mask_size(m.get("size")) is not None] if isinstance(body, dict) else []
    if not frames:
        return mutate_json(ch, data)
    frame = ch.pick(frames)
    mask = body[frame]  # type: ignore[index]
    h, w = mask["size"]
    counts = mask["counts"]
    kind = ch.pick(("size", "size", "counts", "counts", "counts", "uncompressed", "mask", "frame_name"))
    if kind == "size":
        new = ch.pick(([w, h], [h + 1, w], [h, w - 1], [h * w, 1], [1, h * w], [2 * h, w // 2 or 1], [0, w], [-h, w],
                       [h], [h, w, 1], [float(h), w], [str(h), w], [True, w], [h, None], [2**40, 2**40],
                       [2**31, 2**31], [2**63, 2], [2**64, 1], [2**14, 2**14], [2**14 + 1, 2**14],
                       [_RAW + "1e400", 1], [float("nan"), w], {"h": h, "w": w}, f"{h}x{w}", None))
        mask["size"] = new
        return dumps(body), f"RLE {frame}: size {str(new)[:40]}"
    if kind == "counts":
        edit = ch.pick(("truncate", "substitute", "insert", "delete", "empty", "other_size", "long", "invalid_char",
                        "repr_bytes", "escaped", "repeat", "random_valid"))
        if edit == "truncate":
            new = counts[: ch.integer(0, max(len(counts) - 1, 0))]
        elif edit == "substitute" and counts:
            spot = ch.integer(0, len(counts) - 1)
            new = counts[:spot] + _valid_chars(ch, 1) + counts[spot + 1 :]
        elif edit == "insert":
            spot = ch.integer(0, len(counts))
            new = counts[:spot] + _valid_chars(ch, ch.integer(1, 8)) + counts[spot:]
        elif edit == "delete" and counts:
            spot = ch.integer(0, len(counts) - 1)
            new = counts[:spot] + counts[spot + 1 :]
        elif edit == "other_size":
            scale = ch.pick((2, 3))
            big = np.zeros((h * scale, w), dtype=bool)
            big[: h // 2, : w // 2] = True
            new = str(rle.encode(big)["counts"])
        elif edit == "long":
            new = ch.pick(("0", "1", "o0", "P")) * ch.pick((1000, 100_000, 2_000_000))
        elif edit == "invalid_char":
            spot = ch.integer(0, len(counts))
            new = counts[:spot] + ch.pick((" ", "~", "é", "\x00", "\ud800", "/", "\n", "\u0660")) + counts[spot:]
        elif edit == "repr_bytes":
            new = repr(counts.encode("utf-8", "surrogatepass"))  # str(rle["counts"]) of pycocotools' bytes: "b'...'"
        elif edit == "escaped":
            return dumps(body).replace(json.dumps(counts).encode(), json.dumps(counts, ensure_ascii=True)
                                       .replace("0", "\\u0030").encode(), 1), f"RLE {frame}: counts with \\u escapes"
        elif edit == "repeat":
            new = counts * ch.integer(2, 3)
        elif edit == "random_valid":
            new = _valid_chars(ch, ch.integer(1, 40))
        else:
            new = ""
        mask["counts"] = new
        return dumps(body), f"RLE {frame}: counts {edit} ({str(new)[:30]!r})"
    if kind == "uncompressed":
        runs = _runs(counts, (h, w))
        edit = ch.pick(("valid", "valid", "overrun", "negative", "float", "strings", "bytes", "huge", "empty", "zeros",
                        "nested", "bools"))
        new: Any = {
            "valid": runs, "overrun": [*runs, 5], "negative": [-1, *runs[:-1], runs[-1] + 1],
            "float": [float(r) for r in runs], "strings": [str(r) for r in runs],
            "bytes": list(counts.encode("utf-8", "surrogatepass")),  # the bytes of the counts string, as numbers
            "huge": [2**63, *runs], "empty": [], "zeros": [0] * 5000 + runs, "nested": [runs],
            "bools": [True] * (h * w),
        }[edit]
        mask["counts"] = new
        return dumps(body), f"RLE {frame}: uncompressed counts, {edit}"
    if kind == "mask":
        new = ch.pick((None, {}, {"size": [h, w]}, {"counts": counts}, [[h, w], counts], counts, 0,
                       {"size": [h, w], "counts": counts, "extra": 1}, {"size": [h, w], "counts": None},
                       {"size": [h, w], "counts": {"0": 1}}, {"SIZE": [h, w], "counts": counts}))
        body[frame] = new
        return dumps(body), f"RLE {frame}: the mask is {str(new)[:40]}"
    new_name = ch.pick(("", "5", str(int(frame) if frame.isdigit() else 0), frame + ".png", "x" * 5000, "é", "\ud800",
                        "00000/00005", frame.upper() + " ", "99999"))
    body[new_name] = body.pop(frame)
    return dumps(body), f"RLE {frame}: the frame renamed {new_name[:20]!r}"


# --- PNG images -----------------------------------------------------------------------------------------------------

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a well-formed PNG."""
    out, at = [], 8
    while at + 8 <= len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        out.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return out


def png_of(chunk_list: list[tuple[bytes, bytes]]) -> bytes:
    return _SIGNATURE + b"".join(chunk(kind, body) for kind, body in chunk_list)


def header_only(width: int, height: int, depth: int = 1, colour: int = 0) -> bytes:
    """A PNG declaring width x height whose pixel data is far too short."""
    return png_of([(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)),
                   (b"IDAT", zlib.compress(b"\x00" * 16)), (b"IEND", b"")])


def encode_png(array: np.ndarray, mode: str | None = None, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode and mode != image.mode else image).save(buffer, format="PNG", **params)
    return buffer.getvalue()


def _other_format(mask: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format=fmt)
    return buffer.getvalue()


def mutate_png(ch: Chooser, data: bytes) -> tuple[bytes, str]:
    """A PNG-level mutation: other modes and sizes, header fields, chunks, truncation, other formats."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if not 0 < image.width * image.height <= 2**22:  # empty, or a bomb an earlier mutation made
                raise ValueError(image.size)
            mask = np.asarray(image.convert("L")) != 0
    except Exception:  # noqa: BLE001 - a mask already mutated: start again from a plain one
        mask = np.zeros((36, 64), dtype=bool)
    h, w = mask.shape
    parts = chunks(data)
    if not parts or parts[0][0] != b"IHDR" or len(parts[0][1]) != 13:  # an earlier mutation broke it: start again
        data = encode_png(mask)
        parts = chunks(data)
    kind = ch.pick(("mode", "mode", "size", "header", "header", "chunk", "chunk", "truncate", "flip", "format",
                    "big", "empty"))
    if kind == "mode":
        mode = ch.pick(("1", "L", "P", "LA", "RGB", "RGBA", "I;16", "I;16-low", "palette_transparent", "TIFF"))
        if mode.startswith("I;16"):
            return encode_png(mask.astype(np.uint16) * (1 if mode.endswith("low") else 65535)), f"PNG: {mode} grayscale"
        if mode == "palette_transparent":
            return encode_png(mask.astype(np.uint8) * 255, "P", transparency=0), "PNG: palette with transparency"
        if mode == "TIFF":
            return _other_format(mask, "TIFF"), "PNG: a TIFF file"
        return encode_png(mask.astype(np.uint8) * 255, mode), f"PNG: mode {mode}"
    if kind == "size":
        shape = ch.pick(((w, h), (h + 1, w), (h, max(w - 1, 1)), (1, 1), (2 * h, 2 * w)))
        return encode_png(np.resize(mask, shape)), f"PNG: {shape[0]}x{shape[1]} pixels"
    if kind == "header":
        width, height, depth, colour = struct.unpack(">IIBB", parts[0][1][:10])
        field = ch.pick(("dims", "dims", "depth", "colour", "interlace", "compression", "length"))
        if field == "dims":
            width, height = ch.pick(((100_000, 100_000), (65535, 65535), (9000, 9000), (8193, 8192), (2**31 - 1, 1),
                                     (0, h), (w, 0), (2**32 - 1, 2**32 - 1), (8192, 8192), (w, h + 1)))
            header = struct.pack(">II", width, height) + parts[0][1][8:]
            fixed = ch.chance(80)
            rest = b"".join(chunk(k, d) for k, d in parts[1:])
            body = _SIGNATURE + chunk(b"IHDR", header, None if fixed else 0) + rest
            return body, f"PNG: IHDR says {width}x{height}{'' if fixed else ', CRC wrong'}"
        offset = {"depth": 8, "colour": 9, "compression": 10, "interlace": 12, "length": None}[field]
        if offset is None:
            return _SIGNATURE + struct.pack(">I", ch.pick((0, 12, 14, 2**31 - 1))) + data[12:], "PNG: IHDR length wrong"
        header = bytearray(parts[0][1])
        header[offset] = ch.pick((0, 1, 2, 3, 4, 6, 8, 16, 255))
        return png_of([(b"IHDR", bytes(header)), *parts[1:]]), f"PNG: IHDR {field} {header[offset]}"
    if kind == "chunk":
        extra = ch.pick(("second_ihdr", "second_ihdr", "iccp", "ztxt", "text_huge", "critical_unknown", "trns", "plte",
                         "no_iend", "no_idat", "split_idat", "bad_crc", "huge_length", "actl"))
        if extra == "second_ihdr":
            width, height = ch.pick(((12000, 12000), (9000, 9000), (9000, 9000), (w * 2, h), (100_000, 100_000)))
            second = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
            if width * height > 2**26 and width <= 12000 and ch.chance(60):  # with pixel data: a true bomb
                return png_of([parts[0], (b"IHDR", second), (b"IDAT", _blank_rows(width, height)), (b"IEND", b"")]), \
                    f"PNG: a second IHDR of {width}x{height} with its pixels"
            return png_of([parts[0], (b"IHDR", second), *parts[1:]]), f"PNG: a second IHDR of {width}x{height}"
        inserted = {
            "iccp": (b"iCCP", b"name\x00\x00" + b"not zlib"), "ztxt": (b"zTXt", b"k\x00\x00" + b"\xff" * 20),
            "text_huge": (b"tEXt", b"k\x00" + b"x" * 1_000_000), "critical_unknown": (b"ABCD", b"1234"),
            "trns": (b"tRNS", b"\x00"), "plte": (b"PLTE", b"\x00\x00"), "actl": (b"acTL", b"\x00\x00\x00\x05"),
        }
        if extra in inserted:
            return png_of([parts[0], inserted[extra], *parts[1:]]), f"PNG: an extra {inserted[extra][0]!r} chunk"
        if extra == "no_iend":
            return png_of([p for p in parts if p[0] != b"IEND"]), "PNG: no IEND"
        if extra == "no_idat":
            return png_of([p for p in parts if p[0] != b"IDAT"]), "PNG: no IDAT"
        if extra == "split_idat":
            idat = b"".join(d for k, d in parts if k == b"IDAT")
            cut = len(idat) // 2
            return png_of([parts[0], (b"IDAT", idat[:cut]), (b"IDAT", idat[cut:]), (b"IEND", b"")]), "PNG: IDAT in two"
        if extra == "bad_crc":
            return _SIGNATURE + b"".join(chunk(k, d, 0 if k == b"IDAT" else None) for k, d in parts), "PNG: IDAT CRC 0"
        return (data[:8] + data[8:33] + struct.pack(">I", 0x7FFFFFFF) + data[37:41]
                + b"\x00" * 16), "PNG: a chunk declaring 2 GiB"
    if kind == "truncate":
        cut = ch.integer(0, len(data) - 1)
        return data[:cut], f"PNG: cut at byte {cut} of {len(data)}"
    if kind == "flip":
        spot = ch.integer(0, len(data) - 1)
        flipped = bytes([data[spot] ^ (1 << ch.integer(0, 7))])
        return data[:spot] + flipped + data[spot + 1 :], f"PNG: bit flip at {spot}"
    if kind == "format":
        fmt = ch.pick(("JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM"))
        return _other_format(mask, fmt), f"PNG: a {fmt} file"
    if kind == "big":
        side = ch.pick((1024, 2048, 4096))
        big = np.zeros((side, side), dtype=bool)
        big[: min(h, side), : min(w, side)] = mask[:side, :side]
        return encode_png(big), f"PNG: {side}x{side}, compressed to almost nothing"
    return ch.pick((b"", _SIGNATURE, _SIGNATURE + data[8:20], b"\x89PNG")), "PNG: a few bytes only"


@functools.lru_cache(maxsize=4)
def _blank_rows(width: int, height: int) -> bytes:
    """The compressed pixel data of an empty 1-bit width x height image."""
    row = b"\x00" + bytes((width + 7) // 8)
    packer = zlib.compressobj(9)
    return b"".join(packer.compress(row * 500) for _ in range(height // 500)) + packer.compress(row * (height % 500)) \
        + packer.flush()
