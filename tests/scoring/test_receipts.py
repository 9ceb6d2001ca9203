"""Signed score receipts (scoring/receipts.py) and `egomask verify`: round trip, every field tampered, wrong
keys, unreadable receipts, frozen signatures and key derivation, and the command line as a subprocess."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from scoring import receipts
from scoring.receipts import ReceiptError

SEED = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
PAYLOAD = {
    "server": "https://egomask.example.org", "challenge": "egomask", "phase": "test", "submission": 42, "attempt": 2,
    "team": "Équipe Ω", "baseline": False, "method": "SAM2 + tracker", "file": {"sha256": "ab" * 32, "size": 123456},
    "scorer_version": "1.4.0", "gt_version": "cd" * 32,
    "scores": {"long": {"T_recall": 61.25, "IoU_all": 40.5, "IoU_gold": 38.0, "IoU_gold_pred": 33.3333333333}},
    "ci": {"long": {"IoU_gold_pred": [30.1, 36.7]}}, "n_expressions": {"long": 100},
    "scored_at": "2026-12-01T18:59:55.123456Z", "issued_at": "2026-12-01T18:59:56Z",
}
# Ed25519 is deterministic: this seed and this payload give this signature, on every machine, forever. A change
# here means every receipt ever issued stops verifying.
FROZEN_SIGNATURE = ("jIazM7d2AZw/YOzfoMdVQ1CPmGXbToNPxKrNJemWvEh9Ryej9b32y9wVy+8eBvVpKAFRX9RncRfjWMdoIbH9DA==")
FROZEN_PUBLIC = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
FROZEN_KEY_ID = "56475aa75463474c"


def _leaves(value: object, path: tuple = ()) -> list[tuple]:
    """Every leaf of a JSON value, as the path of keys and indexes to it."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [path]


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 0.01
    return f"{value}x"


# --- the library --------------------------------------------------------------------------------


def test_it_signs_and_verifies_a_round_trip_through_json_text():
    receipt = receipts.sign(PAYLOAD, KEY)
    assert set(receipt) == {"format", "payload", "key_id", "public_key", "signature"}
    assert receipt["format"] == "egomask-receipt/1"
    again = receipts.loads(json.dumps(receipt, indent=4))  # re-indented, as a downloaded file may be
    done = receipts.verify(again)
    assert done.payload == PAYLOAD and done.key_id == receipt["key_id"] and done.trusted is False
    assert receipts.verify(again, [KEY.public_key()]).trusted is True


def test_it_freezes_the_signature_of_a_fixed_seed_and_payload():
    receipt = receipts.sign(PAYLOAD, KEY)
    assert receipt["signature"] == FROZEN_SIGNATURE
    assert receipt["public_key"] == FROZEN_PUBLIC
    assert receipt["key_id"] == FROZEN_KEY_ID
    raw = base64.b64decode(FROZEN_PUBLIC)
    assert hashlib.sha256(raw).hexdigest()[:16] == FROZEN_KEY_ID


def test_it_signs_the_documented_bytes():
    """What a third party reimplements: Ed25519 over {"format", "payload"} with sorted keys, no spaces, UTF-8."""
    receipt = receipts.sign({"b": [1.5, "é"], "a": 1}, KEY)
    message = '{"format":"egomask-receipt/1","payload":{"a":1,"b":[1.5,"é"]}}'.encode()
    KEY.public_key().verify(base64.b64decode(receipt["signature"]), message)  # raises if not


def test_it_derives_the_same_key_from_a_secret_as_hkdf_by_hand():
    secret = "django-insecure-test-secret"
    key = receipts.derive_private_key(secret)
    assert receipts.seed_b64(key) == "fCuIMBz6Zrbf2PXOVBjxy2/7ZmUpqgBw6uAY3dh8dBU="
    assert receipts.key_id(key.public_key()) == "a7e85b8d3a95813d"
    # RFC 5869 with no salt (32 zero bytes) and one block of output
    prk = hmac.new(b"\0" * 32, secret.encode(), hashlib.sha256).digest()
    okm = hmac.new(prk, b"egomask receipt signing key v1" + b"\x01", hashlib.sha256).digest()
    assert receipts.seed_b64(key) == base64.b64encode(okm).decode()
    assert receipts.seed_b64(receipts.derive_private_key("another secret")) != receipts.seed_b64(key)


@pytest.mark.parametrize("path", _leaves(PAYLOAD), ids=lambda p: ".".join(map(str, p)))
def test_it_refuses_a_receipt_with_any_payload_field_changed(path):
    receipt = receipts.sign(PAYLOAD, KEY)
    tampered = copy.deepcopy(receipt)
    holder = tampered["payload"]
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = _changed(holder[path[-1]])
    for trusted in (None, [KEY.public_key()]):
        with pytest.raises(ReceiptError) as caught:
            receipts.verify(tampered, trusted)
        assert caught.value.kind == ReceiptError.BAD_SIGNATURE and not caught.value.unreadable
        assert "changed" in caught.value.message


def test_it_refuses_an_added_or_removed_payload_field():
    receipt = receipts.sign(PAYLOAD, KEY)
    for change in (lambda p: p.update(extra=1), lambda p: p.pop("ci")):
        tampered = copy.deepcopy(receipt)
        change(tampered["payload"])
        with pytest.raises(ReceiptError, match="changed") as caught:
            receipts.verify(tampered)
        assert caught.value.kind == ReceiptError.BAD_SIGNATURE


def test_it_refuses_a_receipt_signed_by_another_key_than_the_trusted_one():
    forged = receipts.sign(PAYLOAD, OTHER)
    receipts.verify(forged)  # integrity alone holds: it is intact, signed by its own key
    with pytest.raises(ReceiptError, match=f"signed by key {forged['key_id']}, which is not one of the trusted"
                       f" keys \\({FROZEN_KEY_ID}\\)") as caught:
        receipts.verify(forged, [KEY.public_key()])
    assert caught.value.kind == ReceiptError.UNTRUSTED_KEY


def test_it_refuses_a_receipt_whose_key_was_swapped():
    receipt = receipts.sign(PAYLOAD, KEY)
    swapped = {**receipt, "public_key": receipts.public_b64(OTHER.public_key())}
    with pytest.raises(ReceiptError, match="key_id") as caught:
        receipts.verify(swapped)
    assert caught.value.kind == ReceiptError.BAD_SIGNATURE
    # key and key_id both swapped to the other key's: the signature still betrays it
    both = {**swapped, "key_id": receipts.key_id(OTHER.public_key())}
    with pytest.raises(ReceiptError, match="signature does not match"):
        receipts.verify(both)
    # a forger claiming the trusted key's id with the trusted key embedded cannot make the signature fit
    claimed = {**receipts.sign(PAYLOAD, OTHER), "key_id": FROZEN_KEY_ID, "public_key": FROZEN_PUBLIC}
    with pytest.raises(ReceiptError, match="signature does not match"):
        receipts.verify(claimed, [KEY.public_key()])


@pytest.mark.parametrize(("text", "kind", "words"), [
    ("not json", ReceiptError.NOT_A_RECEIPT, "not JSON"),
    ("[1, 2]", ReceiptError.NOT_A_RECEIPT, "not a JSON object"),
    ('{"payload": {}}', ReceiptError.NOT_A_RECEIPT, 'no "format"'),
    ('{"format": "egomask-receipt/9", "payload": {}}', ReceiptError.UNKNOWN_FORMAT, "egomask-receipt/9"),
    ('{"format": "egomask-receipt/1", "payload": {}}', ReceiptError.NOT_A_RECEIPT, "'key_id', 'public_key'"),
    ('{"format": "egomask-receipt/1", "payload": [], "key_id": "", "public_key": "", "signature": ""}',
     ReceiptError.NOT_A_RECEIPT, '"payload" is not an object'),
])
def test_it_says_why_a_text_is_not_a_receipt(text, kind, words):
    with pytest.raises(ReceiptError) as caught:
        receipts.loads(text)
    assert caught.value.kind == kind and caught.value.unreadable
    assert words in caught.value.message


def test_it_says_a_receipt_with_a_broken_key_or_signature_is_not_one():
    receipt = receipts.sign(PAYLOAD, KEY)
    for field, value in (("public_key", "!!"), ("public_key", base64.b64encode(b"short").decode()),
                         ("signature", "not base64!")):
        with pytest.raises(ReceiptError, match=f'"{field}"') as caught:
            receipts.verify({**receipt, field: value})
        assert caught.value.kind == ReceiptError.NOT_A_RECEIPT


def test_it_loads_keys_as_base64_pem_and_the_well_known_document():
    public = KEY.public_key()
    document = receipts.well_known_document(public, [OTHER.public_key(), public])
    assert document["algorithm"] == "Ed25519"
    assert [(k["key_id"], k["current"]) for k in document["keys"]] == [
        (FROZEN_KEY_ID, True), (receipts.key_id(OTHER.public_key()), False)]  # the repeat is listed once
    for text in (FROZEN_PUBLIC, receipts.public_pem(public), document["keys"][0]["pem"]):
        (key,) = receipts.load_public_keys(text)
        assert receipts.key_id(key) == FROZEN_KEY_ID
    listed = receipts.load_public_keys(json.dumps(document))
    assert [receipts.key_id(k) for k in listed] == [FROZEN_KEY_ID, receipts.key_id(OTHER.public_key())]
    assert receipts.seed_b64(receipts.load_private_key(base64.b64encode(SEED).decode())) == base64.b64encode(
        SEED).decode()


@pytest.mark.parametrize(("text", "words"), [
    ("abc", "not base64"), (base64.b64encode(b"x" * 31).decode(), "31 bytes"),
    ('{"algorithm": "RSA", "keys": []}', "key list"), ("{nope", "not JSON"),
    ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "PEM public key cannot be read"),
])
def test_it_says_why_a_key_cannot_be_read(text, words):
    with pytest.raises(ReceiptError, match=words) as caught:
        receipts.load_public_keys(text)
    assert caught.value.kind == ReceiptError.BAD_KEY


def test_it_checks_a_file_against_the_receipt(tmp_path):
    data = b"PK\x03\x04 a zip"
    zip_path = tmp_path / "sub.zip"
    zip_path.write_bytes(data)
    payload = {**PAYLOAD, "file": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}
    assert receipts.check_file(payload, zip_path) == hashlib.sha256(data).hexdigest()
    zip_path.write_bytes(data + b"!")
    with pytest.raises(ReceiptError, match="is not the file of this receipt") as caught:
        receipts.check_file(payload, zip_path)
    assert caught.value.kind == ReceiptError.FILE_MISMATCH


def test_it_never_signs_a_nan():
    with pytest.raises(ValueError):
        receipts.sign({"scores": {"long": {"T_recall": float("nan")}}}, KEY)


# --- egomask verify -----------------------------------------------------------------------------


def egomask(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scoring.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def _error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("egomask: error: "), done.stderr
    return lines[0]


@pytest.fixture
def saved(tmp_path) -> dict[str, Path]:
    data = b"PK\x03\x04 the submitted zip"
    payload = {**PAYLOAD, "file": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}
    paths = {"receipt": tmp_path / "egomask-receipt-42.json", "zip": tmp_path / "sub.zip",
             "pem": tmp_path / "key.pem", "doc": tmp_path / "egomask-receipt-key.json",
             "other_doc": tmp_path / "other.json"}
    paths["receipt"].write_text(json.dumps(receipts.sign(payload, KEY), indent=2, ensure_ascii=False))
    paths["zip"].write_bytes(data)
    paths["pem"].write_text(receipts.public_pem(KEY.public_key()))
    paths["doc"].write_text(json.dumps(receipts.well_known_document(OTHER.public_key(), [KEY.public_key()])))
    paths["other_doc"].write_text(json.dumps(receipts.well_known_document(OTHER.public_key())))
    return paths


def test_it_verifies_against_the_key_in_the_receipt_and_says_that_proves_integrity_only(saved):
    done = egomask("verify", saved["receipt"])
    assert done.returncode == 0, done.stderr
    assert "Receipt of submission 42 (attempt 2) on https://egomask.example.org" in done.stdout
    assert "team Équipe Ω · method SAM2 + tracker" in done.stdout
    assert "long (100 expressions): T_recall 61.25, IoU_all 40.50, IoU_gold 38.00, IoU_gold_pred 33.33 " \
           "[30.10, 36.70]" in done.stdout
    assert f"key_id {FROZEN_KEY_ID}" in done.stdout and "proves only" in done.stdout
    assert "https://egomask.example.org/.well-known/egomask-receipt-key.json" in done.stdout
    assert "VERIFIED" not in done.stdout


@pytest.mark.parametrize("key", ["pem", "doc", "base64"])
def test_it_verifies_against_a_given_key_in_each_form(saved, key):
    given = FROZEN_PUBLIC if key == "base64" else saved[key]
    done = egomask("verify", saved["receipt"], "--key", given, "--file", saved["zip"])
    assert done.returncode == 0, done.stderr
    assert f"VERIFIED: signed by key {FROZEN_KEY_ID}" in done.stdout
    assert "File: matches the receipt's sha256." in done.stdout
    assert "proves only" not in done.stdout


def test_it_prints_what_it_verified_as_json(saved):
    done = egomask("verify", saved["receipt"], "--key", saved["pem"], "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["verified"] is True and answer["trusted_key"] is True and answer["key_id"] == FROZEN_KEY_ID
    assert answer["file_matches"] is None
    assert answer["payload"]["submission"] == 42 and answer["payload"]["team"] == "Équipe Ω"


def test_it_exits_1_when_the_signature_does_not_match(saved):
    receipt = json.loads(saved["receipt"].read_text())
    receipt["payload"]["scores"]["long"]["IoU_gold_pred"] = 99.0
    saved["receipt"].write_text(json.dumps(receipt))
    line = _error_line(egomask("verify", saved["receipt"]), 1)
    assert "NOT VERIFIED" in line and "signature does not match" in line
    line = _error_line(egomask("verify", saved["receipt"], "--key", saved["pem"]), 1)
    assert "NOT VERIFIED" in line


def test_it_exits_1_for_a_key_that_did_not_sign_it_and_for_another_file(saved):
    line = _error_line(egomask("verify", saved["receipt"], "--key", saved["other_doc"]), 1)
    assert f"signed by key {FROZEN_KEY_ID}, which is not one of the trusted keys" in line
    saved["zip"].write_bytes(b"another file")
    line = _error_line(egomask("verify", saved["receipt"], "--key", saved["pem"], "--file", saved["zip"]), 1)
    assert "is not the file of this receipt" in line


def test_it_exits_2_when_it_cannot_read_the_receipt_or_the_key(saved, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    line = _error_line(egomask("verify", broken), 2)
    assert "cannot read the receipt" in line and "not JSON" in line
    line = _error_line(egomask("verify", tmp_path / "absent.json"), 2)
    assert "cannot read the receipt" in line
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**json.loads(saved["receipt"].read_text()), "format": "egomask-receipt/2"}))
    assert "newer egomask" in _error_line(egomask("verify", future), 2)
    line = _error_line(egomask("verify", saved["receipt"], "--key", "not-a-key"), 2)
    assert "--key" in line and "not base64" in line
    line = _error_line(egomask("verify", saved["receipt"], "--file", tmp_path / "absent.zip"), 2)
    assert "cannot read the file" in line


def test_the_one_key_of_a_well_known_document_that_signed_it_is_enough(saved):
    """A rotated server lists its earlier keys: a receipt of the previous key verifies with the document."""
    document = json.loads(saved["doc"].read_text())
    assert [k["current"] for k in document["keys"]] == [True, False]
    assert isinstance(receipts.load_public_keys(saved["doc"].read_text())[1], Ed25519PublicKey)
    assert egomask("verify", saved["receipt"], "--key", saved["doc"]).returncode == 0
