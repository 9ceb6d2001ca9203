"""Signed score receipts: the server's signed statement of what one scoring of a submission gave.

Issued by grading._finish (every scoring and rescoring ends there), inside its transaction, once the
Score rows are written: `receipt_issue` builds the payload from the submission and its Score rows, signs
it with the server's key (scoring.receipts) and stores it in Submission.receipt (a new receipt replaces
the last one; the history keeps no copy). The key is RECEIPT_SIGNING_KEY, else one derived from
SECRET_KEY; the public keys (the current one and RECEIPT_PREVIOUS_PUBLIC_KEYS) are published at
/.well-known/egomask-receipt-key.json, so `egomask verify --key` checks a receipt offline.

Who may download a receipt is the one rule (selectors.submission_access): whoever may see the
submission and its exact scores (`view` and `exact_scores`: never while the Ladder hides them).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.utils import timezone

from leaderboard.challenges.models import SPLIT_ORDER
from leaderboard.errors import Conflict, NotAllowed, NotFound
from scoring import receipts as signing

from .models import Score, Submission
from .selectors import Access, Viewer, submission_access, submission_get


@functools.cache
def _key(configured: str, secret: str) -> Ed25519PrivateKey:
    return signing.load_private_key(configured) if configured else signing.derive_private_key(secret)


def signing_key() -> Ed25519PrivateKey:
    """The server's receipt key: RECEIPT_SIGNING_KEY, else derived from SECRET_KEY (HKDF-SHA256)."""
    return _key(settings.RECEIPT_SIGNING_KEY, settings.SECRET_KEY)


def published_keys() -> dict[str, Any]:
    """The well-known document: the current public key first, then RECEIPT_PREVIOUS_PUBLIC_KEYS."""
    previous = [signing.load_public_keys(text)[0] for text in settings.RECEIPT_PREVIOUS_PUBLIC_KEYS]
    return signing.well_known_document(signing_key().public_key(), previous)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def receipt_payload(*, submission: Submission, scores: list[Score], issued_at: dt.datetime) -> dict[str, Any]:
    """What a receipt says about one finished scoring of `submission` (its Score rows)."""
    rows = sorted(scores, key=lambda s: SPLIT_ORDER.index(s.split) if s.split in SPLIT_ORDER else len(SPLIT_ORDER))
    phase = submission.phase
    return {
        "server": settings.SITE_URL,
        "challenge": phase.challenge.slug,
        "phase": phase.slug,
        "submission": submission.pk,
        "attempt": submission.attempt,
        "team": submission.team.name if submission.team else None,
        "baseline": submission.is_baseline,
        "method": submission.method_name,
        "file": {"sha256": submission.file_sha256, "size": submission.file_size},
        "scorer_version": submission.scorer_version,
        "gt_version": submission.gt_version,
        "scores": {s.split: s.metrics() for s in rows},
        "ci": {s.split: {m: list(v) for m, v in s.ci.items()} for s in rows if s.ci},
        "n_expressions": {s.split: s.n_expressions for s in rows},
        "scored_at": _utc(submission.finished_at) if submission.finished_at else None,
        "issued_at": _utc(issued_at),
    }


def receipt_issue(*, submission: Submission) -> dict[str, Any]:
    """Sign and store the receipt of the submission's current scores (called by grading._finish, in its
    transaction, after the Score rows and the finished state are written). Returns the receipt."""
    scores = list(Score.objects.filter(submission=submission))
    payload = receipt_payload(submission=submission, scores=scores, issued_at=timezone.now())
    receipt = signing.sign(payload, signing_key())
    # An UPDATE, not a save: the receipt is no audit-log event of its own (the save before it was).
    Submission.objects.filter(pk=submission.pk).update(receipt=receipt)
    submission.receipt = receipt
    return receipt


def receipt_available(*, submission: Submission, access: Access) -> bool:
    """Whether this viewer may download the submission's receipt (what the page's link and the API ask)."""
    return (access.view and access.exact_scores and submission.status == Submission.Status.FINISHED
            and bool(submission.receipt))


def receipt_get(*, submission_id: int, user: Viewer) -> dict[str, Any]:
    """The receipt of a submission for this viewer: NotFound where they may not see the submission (as for
    one that does not exist), NotAllowed while the Ladder hides its exact scores, Conflict when it has none."""
    submission = submission_get(submission_id=submission_id)
    access = submission and submission_access(submission=submission, user=user)
    if submission is None or not access.view:
        raise NotFound(f"There is no submission {submission_id} that you can see.")
    if not access.exact_scores:
        ends = submission.phase.ends_at
        when = f" on {ends.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if ends else ""
        raise NotAllowed(f"This phase runs the Ladder, which hides exact scores until it ends{when}; the receipt "
                         f"of submission {submission_id} carries them, so it can be downloaded then.")
    if not receipt_available(submission=submission, access=access):
        state = ("was scored before receipts were issued; a rescore issues one"
                 if submission.status == Submission.Status.FINISHED else "has not been scored")
        raise Conflict(f"Submission {submission_id} has no receipt: it {state}.")
    return submission.receipt


def new_signing_key() -> str:
    """A fresh RECEIPT_SIGNING_KEY value (base64 of a random 32-byte seed)."""
    return signing.seed_b64(Ed25519PrivateKey.generate())

