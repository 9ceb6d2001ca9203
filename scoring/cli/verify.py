"""`egomask verify RECEIPT [--key KEY] [--file ZIP]`: check a server's score receipt offline.

With --key (the server's public key: base64, a PEM file, or its saved well-known JSON document) the
signature is checked against that key, which proves the server signed the receipt. Without it, it is
checked against the key embedded in the receipt, which proves only that the receipt was not changed
since whoever holds that key signed it; the key_id printed is to be compared with the server's
/.well-known/egomask-receipt-key.json. --file checks that a zip is the file the receipt is about.

Exit 0: verified; 1: the signature (or the file) does not match; 2: the receipt or the key cannot be read.
No network, no terminal library.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..metrics import METRICS
from ..receipts import ReceiptError, Verified, check_file, load_public_keys, loads, verify
from .exits import CommandError, ExitCode
from .remote import SCORE_ROWS

WELL_KNOWN = "/.well-known/egomask-receipt-key.json"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read the {what} {path}: {exc.strerror or exc}", ExitCode.INVALID) from None


def _keys(value: str) -> list[Any]:
    """--key: a file (PEM, well-known JSON, or base64 in a file) when one exists at that path, else base64."""
    path = Path(value)
    text: str | bytes = _read(path, "key file") if path.is_file() else value
    try:
        return load_public_keys(text)
    except ReceiptError as exc:
        where = f"--key {value}" if path.is_file() else "--key"
        raise CommandError(f"{where}: {exc.message} Give the server's public key (base64), a PEM file, or the "
                           f"document saved from <server>{WELL_KNOWN}.", ExitCode.INVALID) from None


def _fail(exc: ReceiptError, receipt: str) -> CommandError:
    if exc.unreadable:
        return CommandError(f"cannot read the receipt {receipt}: {exc.message}", ExitCode.INVALID)
    return CommandError(f"NOT VERIFIED: {receipt}: {exc.message}", ExitCode.PROBLEMS)


def _interval(ci: dict[str, Any], metric: str) -> str:
    pair = ci.get(metric)
    if isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int | float) for v in pair):
        return f" [{pair[0]:.2f}, {pair[1]:.2f}]"
    return ""


def _describe(done: Verified, file_checked: str | None) -> list[str]:
    p = done.payload
    who = "baseline" if p.get("baseline") else f"team {p.get('team')}"
    file = p.get("file") if isinstance(p.get("file"), dict) else {}
    lines = [f"Receipt of submission {p.get('submission')} (attempt {p.get('attempt')}) on {p.get('server')}, "
             f"challenge {p.get('challenge')}, phase {p.get('phase')}",
             f"  {who} · method {p.get('method')}",
             f"  file sha256 {file.get('sha256')} ({file.get('size')} bytes)",
             f"  scorer {p.get('scorer_version')} · ground truth {p.get('gt_version')}",
             f"  scored {p.get('scored_at')} · receipt issued {p.get('issued_at')}"]
    scores, cis = p.get("scores") or {}, p.get("ci") or {}
    counts = p.get("n_expressions") or {}
    splits = sorted(scores, key=lambda s: SCORE_ROWS.index(s) if s in SCORE_ROWS else len(SCORE_ROWS)) \
        if isinstance(scores, dict) else []
    for split in splits:
        values = scores[split]
        ci = cis.get(split) if isinstance(cis.get(split), dict) else {}
        cells = ", ".join(f"{m} {values[m]:.2f}{_interval(ci, m)}" for m in METRICS
                          if isinstance(values, dict) and isinstance(values.get(m), int | float))
        lines.append(f"  {split} ({counts.get(split, '?')} expressions): {cells}")
    if file_checked:
        lines.append("File: matches the receipt's sha256.")
    if done.trusted:
        lines.append(f"VERIFIED: signed by key {done.key_id}, one of the keys you gave (--key).")
    else:
        server = str(p.get("server") or "<server>").rstrip("/")
        lines.append(f"Signature valid for the key embedded in the receipt (key_id {done.key_id}). This proves only "
                     "that the receipt was not changed since that key signed it, not who signed it: check that "
                     f"{done.key_id} is listed at {server}{WELL_KNOWN}, or verify with --key.")
    return lines


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a receipt's signature (and a file's sha256): offline, exit 1 when it does not match."""
    path = Path(args.receipt)
    trusted = _keys(args.key) if args.key else None
    try:
        receipt = loads(_read(path, "receipt"))
        done = verify(receipt, trusted)
        checked = check_file(done.payload, args.file) if args.file else None
    except ReceiptError as exc:
        raise _fail(exc, str(path)) from None
    except OSError as exc:  # --file cannot be read
        raise CommandError(f"cannot read the file {args.file}: {exc.strerror or exc}", ExitCode.INVALID) from None
    if args.json:
        print(json.dumps({"verified": True, "key_id": done.key_id, "trusted_key": done.trusted,
                          "file_matches": None if checked is None else True, "payload": done.payload}))
    else:
        print("\n".join(_describe(done, checked)))
    return ExitCode.OK


def register(commands: Any) -> None:
    """Add `verify` to `egomask`'s subcommands (an argparse subparsers object)."""
    p = commands.add_parser("verify", help="check a score receipt's signature offline (and a zip's sha256)")
    p.add_argument("receipt", help="the receipt (egomask-receipt-<id>.json)")
    p.add_argument("--key", metavar="KEY_OR_FILE",
                   help=f"the server's public key: base64, a PEM file, or the JSON saved from <server>{WELL_KNOWN}; "
                        "without it only the receipt's own key is checked (integrity, not origin)")
    p.add_argument("--file", metavar="ZIP", help="also check that this zip is the file the receipt is about")
    p.add_argument("--json", action="store_true", help="print what was verified as one JSON object")
    p.set_defaults(run=cmd_verify)
