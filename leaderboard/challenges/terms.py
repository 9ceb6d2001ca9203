"""A challenge's terms: which text is current (its sha256), whether a user accepted it, and accepting it.

The acceptance is per user, not per team: whoever submits must have accepted the text in force. A text
that changes (another sha256) must be accepted again; the earlier acceptances stay, as the record of what
each user agreed to and when.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction

from leaderboard.errors import ApplicationError, Conflict

from .models import Challenge, Phase, TermsAcceptance


def terms_sha256(*, challenge: Challenge) -> str:
    """The sha256 of the challenge's current terms ("" when it has none); line endings and the surrounding
    blank space do not count as a change."""
    text = (challenge.terms or "").replace("\r\n", "\n").strip()
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else ""


def terms_acceptance(*, user: AbstractBaseUser | AnonymousUser, challenge: Challenge) -> TermsAcceptance | None:
    """The user's acceptance of the challenge's current terms, if any."""
    sha = terms_sha256(challenge=challenge)
    if not sha or not user.is_authenticated:
        return None
    return TermsAcceptance.objects.filter(user=user, challenge=challenge, terms_sha256=sha).first()


def terms_accepted(*, user: AbstractBaseUser | AnonymousUser, phase: Phase) -> bool:
    """Whether the user may submit to the phase as far as terms go: the phase does not require them, the
    challenge has none, or the user accepted the current text."""
    if not phase.requires_terms or not terms_sha256(challenge=phase.challenge):
        return True
    return terms_acceptance(user=user, challenge=phase.challenge) is not None


def terms_accept(*, user: AbstractBaseUser, challenge: Challenge, terms_sha256_seen: str) -> TermsAcceptance:
    """Record that the user accepted the text they read (`terms_sha256_seen`, sent back by the form); Conflict
    when the terms changed meanwhile, so that nobody accepts a text they did not see. Accepting twice is
    one acceptance."""
    current = terms_sha256(challenge=challenge)
    if not current:
        raise ApplicationError(f"{challenge.title} has no terms to accept.")
    if terms_sha256_seen != current:
        raise Conflict("The terms changed while you were reading them: read the new text, then accept it.",
                       detail={"terms_sha256": current})
    try:
        with transaction.atomic():
            acceptance, _ = TermsAcceptance.objects.get_or_create(user=user, challenge=challenge,
                                                                  terms_sha256=current)
    except IntegrityError:  # the same form sent twice at once
        acceptance = TermsAcceptance.objects.get(user=user, challenge=challenge, terms_sha256=current)
    return acceptance
