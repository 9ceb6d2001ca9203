"""`egomask receipt` against a live server, then `egomask verify` offline with the key the server publishes."""

from __future__ import annotations

import json
import urllib.request

from scoring import receipts

from .test_cli_remote import as_alice, cli_env, egomask  # noqa: F401  (as_alice, cli_env: its fixtures)

WELL_KNOWN = "/.well-known/egomask-receipt-key.json"


def test_it_downloads_a_receipt_that_verifies_with_the_saved_key_document(
        as_alice, cli_env,  # noqa: F811  (the fixtures imported above)
        live_server, alice, carol, submit, score, tmp_path):
    scored = score(submit(alice, "noisy", method_name="Noisy"))
    out = tmp_path / "mine.json"
    done = egomask("receipt", scored.pk, "-o", out, env=as_alice)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"Receipt of submission {scored.pk} written to {out} "
                                   f"(signed by key {scored.receipt['key_id']}).")
    assert f"{live_server.url}{WELL_KNOWN}" in done.stderr
    assert json.loads(out.read_text()) == scored.receipt

    key_file = tmp_path / "egomask-receipt-key.json"
    with urllib.request.urlopen(live_server.url + WELL_KNOWN) as answer:  # noqa: S310  (the test's own server)
        key_file.write_bytes(answer.read())
    zip_path = tmp_path / "sub.zip"
    with scored.file.open("rb") as handle:
        zip_path.write_bytes(handle.read())
    done = egomask("verify", out, "--key", key_file, "--file", zip_path, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert f"VERIFIED: signed by key {scored.receipt['key_id']}" in done.stdout
    assert receipts.verify(receipts.loads(out.read_text()), receipts.load_public_keys(key_file.read_text())).trusted

    # without a login: a public submission's receipt, printed as JSON
    done = egomask("receipt", scored.pk, "--json", env=cli_env)
    assert done.returncode == 0 and json.loads(done.stdout) == scored.receipt
    private = score(submit(carol, is_public=False))
    done = egomask("receipt", private.pk, env=as_alice)  # another team's: as if it did not exist
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == f"egomask: error: There is no submission {private.pk} that you can see."
