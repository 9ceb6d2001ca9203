"""Signed score receipts: what a leaderboard server attests about one scored submission, checkable offline.

A receipt is a JSON object

    {"format": "egomask-receipt/1", "payload": {...}, "key_id": "<16 hex>",
     "public_key": "<base64 of the raw 32-byte Ed25519 key>", "signature": "<base64 of 64 bytes>"}

whose signature is Ed25519 over the canonical bytes of {"format": ..., "payload": ...} (json.dumps with
sorted keys, no spaces, UTF-8, no NaN), so the format is signed with the payload and a receipt reads the
same after any re-indentation. `key_id` is the first 16 hex digits of the sha256 of the raw public key.

The key embedded in a receipt proves only that the receipt was not changed since someone holding that
key signed it; that the server signed it is proved by checking against the server's published key (its
well-known document, `well_known_document`), which `verify(receipt, trusted_keys)` does.

Framework-free: cryptography only, no Django, nothing printed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT = "egomask-receipt/1"
ALGORITHM = "Ed25519"
# The server's key, when none is configured, is derived from its SECRET_KEY with this info string: changing
# it would change every such server's key, so it is frozen (tests/scoring/test_receipts.py).
HKDF_INFO = b"egomask receipt signing key v1"
FIELDS = ("format", "payload", "key_id", "public_key", "signature")


class ReceiptError(Exception):
    """A receipt that cannot be read or does not verify: `message` says which and why, in a sentence.

    `kind` is one of NOT_A_RECEIPT, UNKNOWN_FORMAT (the receipt cannot be read), BAD_SIGNATURE (changed
    after signing, or signed by another key than it says), UNTRUSTED_KEY (signed by a key that is not one
    of the trusted ones), FILE_MISMATCH (the file is not the one the receipt is about), BAD_KEY (a key
    that cannot be read).
    """

    NOT_A_RECEIPT = "not_a_receipt"
    UNKNOWN_FORMAT = "unknown_format"
    BAD_SIGNATURE = "bad_signature"
    UNTRUSTED_KEY = "untrusted_key"
    FILE_MISMATCH = "file_mismatch"
    BAD_KEY = "bad_key"
    UNREADABLE = (NOT_A_RECEIPT, UNKNOWN_FORMAT, BAD_KEY)

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def unreadable(self) -> bool:
        """The receipt (or a key) could not be read at all, as opposed to read and refused."""
        return self.kind in self.UNREADABLE


@dataclass(frozen=True)
class Verified:
    """What `verify` checked: the payload, the key that signed it, and whether that key was a trusted one
    (False: checked against the key embedded in the receipt only, which proves integrity, not origin)."""

    payload: dict[str, Any]
    key_id: str
    trusted: bool


# --- bytes and keys ------------------------------------------------------------------------------


def canonical_bytes(value: Any) -> bytes:
    """The one byte string a JSON value is signed as: sorted keys, compact separators, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _signed_bytes(payload: Mapping[str, Any]) -> bytes:
    return canonical_bytes({"format": FORMAT, "payload": payload})


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the sha256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def public_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(key)).decode("ascii")


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def seed_b64(key: Ed25519PrivateKey) -> str:
    """The private key as base64 of its raw 32-byte seed (what RECEIPT_SIGNING_KEY holds)."""
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def derive_private_key(secret: str | bytes) -> Ed25519PrivateKey:
    """A signing key derived deterministically from a secret (HKDF-SHA256, no salt, HKDF_INFO)."""
    material = secret.encode("utf-8") if isinstance(secret, str) else secret
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(material)
    return Ed25519PrivateKey.from_private_bytes(seed)


def _b64_bytes(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptError(ReceiptError.BAD_KEY, f"{what} is not base64.") from None
    if len(raw) != size:
        raise ReceiptError(ReceiptError.BAD_KEY, f"{what} is {len(raw)} bytes once decoded; an Ed25519 key is "
                           f"{size}.")
    return raw


def load_private_key(text: str | bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from base64 of its 32-byte seed, or from a PEM (PKCS#8, unencrypted)."""
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if "-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ReceiptError(ReceiptError.BAD_KEY, f"The PEM private key cannot be read ({exc}).") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ReceiptError(ReceiptError.BAD_KEY, "The PEM private key is not an Ed25519 key.")
        return key
    return Ed25519PrivateKey.from_private_bytes(_b64_bytes(data, 32, "The private key"))


def load_public_keys(text: str | bytes) -> list[Ed25519PublicKey]:
    """The Ed25519 public keys a text holds: base64 of a raw 32-byte key, a PEM public key, or a server's
    well-known JSON document (every key listed in it)."""
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    stripped = data.strip()
    if stripped.startswith("{"):
        return _keys_of_document(stripped)
    if "-----BEGIN" in stripped:
        try:
            key = serialization.load_pem_public_key(stripped.encode())
        except (ValueError, TypeError) as exc:
            raise ReceiptError(ReceiptError.BAD_KEY, f"The PEM public key cannot be read ({exc}).") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ReceiptError(ReceiptError.BAD_KEY, "The PEM public key is not an Ed25519 key.")
        return [key]
    return [Ed25519PublicKey.from_public_bytes(_b64_bytes(stripped, 32, "The public key"))]


def _keys_of_document(text: str) -> list[Ed25519PublicKey]:
    try:
        document = json.loads(text)
    except ValueError:
        raise ReceiptError(ReceiptError.BAD_KEY, "The key document is not JSON.") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if document.get("algorithm") != ALGORITHM or not isinstance(entries, list) or not entries:
        raise ReceiptError(ReceiptError.BAD_KEY, 'The key document is not a server\'s key list (it needs '
                           '"algorithm": "Ed25519" and a non-empty "keys").')
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str):
            raise ReceiptError(ReceiptError.BAD_KEY, 'An entry of the key document has no "public_key".')
        keys.append(Ed25519PublicKey.from_public_bytes(_b64_bytes(entry["public_key"], 32, "A listed key")))
    return keys


def well_known_document(current: Ed25519PublicKey, previous: Iterable[Ed25519PublicKey] = ()) -> dict[str, Any]:
    """What a server publishes at /.well-known/egomask-receipt-key.json: its current key and the earlier ones
    (whose receipts still verify), each with its key_id, base64 and PEM forms."""
    seen, keys = set(), []
    for key, current_one in ((current, True), *((k, False) for k in previous)):
        if key_id(key) in seen:
            continue
        seen.add(key_id(key))
        keys.append({"key_id": key_id(key), "public_key": public_b64(key), "pem": public_pem(key),
                     "current": current_one})
    return {"algorithm": ALGORITHM, "format": FORMAT, "keys": keys}


# --- signing and checking ------------------------------------------------------------------------


def sign(payload: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A receipt for `payload` (a JSON object: strings, numbers, lists, objects; no NaN), signed by the key."""
    public = private_key.public_key()
    plain = json.loads(canonical_bytes(dict(payload)))  # the receipt holds what was signed, not the caller's object
    signature = private_key.sign(_signed_bytes(plain))
    return {"format": FORMAT, "payload": plain, "key_id": key_id(public), "public_key": public_b64(public),
            "signature": base64.b64encode(signature).decode("ascii")}


def loads(text: str | bytes) -> dict[str, Any]:
    """A receipt read from its JSON text (a file's contents); ReceiptError when it is not one."""
    try:
        receipt = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, "This is not a receipt: it is not JSON.") from None
    _shape(receipt)
    return receipt


def _shape(receipt: Any) -> None:
    if not isinstance(receipt, dict):
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, "This is not a receipt: it is not a JSON object.")
    if "format" not in receipt:
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, 'This is not a receipt: it has no "format".')
    if receipt["format"] != FORMAT:
        raise ReceiptError(ReceiptError.UNKNOWN_FORMAT, f"The receipt's format {receipt['format']!r} is not one "
                           f"this tool knows ({FORMAT}); a newer egomask may read it.")
    missing = [name for name in FIELDS if name not in receipt]
    if missing:
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, f"This is not a complete receipt: it has no "
                           f"{', '.join(repr(m) for m in missing)}.")
    if not isinstance(receipt["payload"], dict):
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, 'This is not a receipt: its "payload" is not an object.')
    for name in ("key_id", "public_key", "signature"):
        if not isinstance(receipt[name], str):
            raise ReceiptError(ReceiptError.NOT_A_RECEIPT, f'This is not a receipt: its "{name}" is not a string.')


def verify(receipt: Mapping[str, Any], trusted_keys: Iterable[Ed25519PublicKey] | None = None) -> Verified:
    """Check a receipt's signature: against `trusted_keys` (e.g. a server's published keys), or, without them,
    against the key embedded in the receipt (integrity only). Raises ReceiptError saying what is wrong."""
    _shape(receipt)
    try:
        embedded = load_public_keys(receipt["public_key"])[0]
    except ReceiptError:
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, 'This is not a receipt: its "public_key" is not a '
                           "base64 Ed25519 key.") from None
    try:
        signature = base64.b64decode(receipt["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, 'This is not a receipt: its "signature" is not '
                           "base64.") from None
    if receipt["key_id"] != key_id(embedded):
        raise ReceiptError(ReceiptError.BAD_SIGNATURE, f"The receipt was changed: its key_id {receipt['key_id']!r} "
                           f"is not that of its public key ({key_id(embedded)}).")
    if trusted_keys is None:
        key, trusted = embedded, False
    else:
        by_id = {key_id(k): k for k in trusted_keys}
        if receipt["key_id"] not in by_id:
            known = ", ".join(sorted(by_id)) or "none"
            raise ReceiptError(ReceiptError.UNTRUSTED_KEY, f"The receipt is signed by key {receipt['key_id']}, "
                               f"which is not one of the trusted keys ({known}).")
        key, trusted = by_id[receipt["key_id"]], True
    try:
        message = _signed_bytes(receipt["payload"])
    except ValueError:  # NaN or infinity: never signed by a server
        raise ReceiptError(ReceiptError.BAD_SIGNATURE, "The receipt was changed: its payload holds a number "
                           "JSON cannot carry.") from None
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise ReceiptError(ReceiptError.BAD_SIGNATURE, f"The signature does not match: the receipt was changed "
                           f"after key {receipt['key_id']} signed it, or that key did not sign it.") from None
    return Verified(payload=dict(receipt["payload"]), key_id=receipt["key_id"], trusted=trusted)


def check_file(payload: Mapping[str, Any], path: str | Path) -> str:
    """The file's sha256 when it is the file the receipt is about; ReceiptError (FILE_MISMATCH) when not."""
    expected = (payload.get("file") or {}).get("sha256") if isinstance(payload.get("file"), dict) else None
    if not isinstance(expected, str):
        raise ReceiptError(ReceiptError.NOT_A_RECEIPT, "The receipt names no file sha256 to compare with.")
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ReceiptError(ReceiptError.FILE_MISMATCH, f"{path} is not the file of this receipt: its sha256 is "
                           f"{digest.hexdigest()}, the receipt's is {expected}.")
    return expected
