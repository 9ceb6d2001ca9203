"""The server's receipt key: which one signs (its key_id and public key), or a new one for RECEIPT_SIGNING_KEY."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from leaderboard.submissions.receipts import new_signing_key, published_keys


class Command(BaseCommand):
    help = ("Print the public keys that sign score receipts (as /.well-known/egomask-receipt-key.json lists them), "
            "or, with --new, a fresh private key to set as RECEIPT_SIGNING_KEY.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--new", action="store_true", help="print a new private key (base64 seed) and exit")

    def handle(self, *args: object, new: bool, **options: object) -> None:
        if new:
            self.stdout.write(new_signing_key())
            return
        source = "RECEIPT_SIGNING_KEY" if settings.RECEIPT_SIGNING_KEY else "derived from SECRET_KEY"
        for entry in published_keys()["keys"]:
            state = f"current ({source})" if entry["current"] else "previous"
            self.stdout.write(f"{entry['key_id']}  {entry['public_key']}  {state}")
