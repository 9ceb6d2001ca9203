"""The checks every way in shares before a file becomes a submission: the web form and the API's one-POST
upload (services.submission_create) and the completion of a large upload (uploads.upload_complete).

Who (the user's team, or an organizer's baseline), when (the phase's dates), the method fields, the
file (size, zip magic, at least one entry) and, last, the quota, checked and used under a row lock
on the team so that two simultaneous uploads cannot both take the last slot.

A retried upload is not a second submission: one that carries the Idempotency-Key of an earlier one
by the same user, or (without a key) the same file from the same team to the same phase within
SUBMISSION_REPEAT_SECONDS, is answered with the earlier submission (`replayed`), using no quota again.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from typing import IO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from leaderboard.accounts.models import Team
from leaderboard.accounts.selectors import email_verified, team_for
from leaderboard.challenges.models import Phase, TermsAcceptance
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.challenges.terms import terms_accepted
from leaderboard.errors import ApplicationError, Conflict, NotAllowed, QuotaExceeded, TooLarge

from . import queue
from .models import Disqualification, FailureKind, Submission
from .selectors import quota_for, standing_disqualification

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NOT_A_ZIP = "This is not a zip file."
NO_TEAM = "Create or join a team for this challenge before submitting."
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"  # an archive that starts with its end record has no entries
METHOD_NAME_MAX = 200
URL_MAX = 200
IDEMPOTENCY_KEY_MAX = 200


def check_method_fields(*, method_name: str, method_url: str = "", code_url: str = "") -> str:
    """The cleaned method name, or ApplicationError for a missing name or a non-web URL."""
    method_name = method_name.strip()
    if not method_name:
        raise ApplicationError("Give your method a name; it is shown on the leaderboard.")
    if len(method_name) > METHOD_NAME_MAX:
        raise ApplicationError(f"The method name is longer than {METHOD_NAME_MAX} characters.")
    for label, url in (("method URL", method_url), ("code URL", code_url)):
        if url and not _is_web_url(url):
            raise ApplicationError(f"The {label} must be an http:// or https:// address.", detail={"url": url})
    return method_name


def _is_web_url(url: str) -> bool:
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return False
    return len(url) <= URL_MAX


def submission_admit(*, phase: Phase, user: AbstractBaseUser, is_baseline: bool = False,
                     now: dt.datetime | None = None) -> Team | None:
    """Who the submission is for (the user's team; None for a baseline), or raise why not now."""
    if is_baseline:
        if not organizer_can(user, phase.challenge_id, Can.MODERATE):
            raise NotAllowed("Only the challenge's organizers can add baseline entries.")
        return None
    team = team_for(user=user, challenge=phase.challenge)
    if team is None:
        raise NotAllowed(NO_TEAM)
    disqualified = standing_disqualification(phase=phase, team=team)
    if disqualified is not None:
        raise NotAllowed(disqualified_reason(disqualified))
    now = now or timezone.now()
    if not phase.is_open(now):
        raise NotAllowed(closed_reason(phase=phase, now=now))
    refusal = participant_refusal(phase=phase, user=user)
    if refusal is not None:
        raise refusal
    return team


def participant_refusal(*, phase: Phase, user: AbstractBaseUser) -> NotAllowed | None:
    """What the submitter (not the team) must do first, as the error to raise, or None: verify an e-mail
    address before their first submission (SUBMIT_REQUIRES_VERIFIED_EMAIL), accept the challenge's current
    terms where the phase requires them. Its detail has the URL to go to (verify_url, terms_url)."""
    if (settings.SUBMIT_REQUIRES_VERIFIED_EMAIL and not email_verified(user=user)
            # Accounts from before verification existed keep submitting: the rule is for a first submission.
            and not Submission.objects.filter(user=user, is_baseline=False).exists()):
        url = settings.SITE_URL + reverse("account_email")
        return NotAllowed(f"Verify your e-mail address before your first submission: open the link we mailed you, "
                          f"or send a new one from {url}", detail={"verify_url": url})
    if not terms_accepted(user=user, phase=phase):
        url = settings.SITE_URL + reverse("challenge_terms", args=[phase.challenge.slug])
        again = " again: they changed since you accepted them" if TermsAcceptance.objects.filter(
            user=user, challenge=phase.challenge).exists() else ""
        return NotAllowed(f"The phase {phase.name!r} takes submissions only from participants who accepted the "
                          f"terms of {phase.challenge.title}. Read and accept them{again} at {url}",
                          detail={"terms_url": url})
    return None


def disqualified_reason(disqualification: Disqualification) -> str:
    """What a disqualified team is told, on its pages and when it submits."""
    return f"Your team was disqualified from {disqualification.phase.name!r} by the organizers: " \
           f"{disqualification.reason}"


def closed_reason(*, phase: Phase, now: dt.datetime) -> str:
    """Why the phase takes no submission now, with the date it opens or closed."""
    if not phase.accepts_submissions:
        return f"The phase {phase.name!r} does not accept submissions."
    if phase.starts_at and now < phase.starts_at:
        return f"The phase {phase.name!r} opens at {phase.starts_at:%Y-%m-%d %H:%M} UTC."
    return f"The phase {phase.name!r} closed at {phase.ends_at:%Y-%m-%d %H:%M} UTC."


def quota_refusal(*, phase: Phase, team: Team | None, now: dt.datetime) -> QuotaExceeded | None:
    """The error to raise when the team has no submission left (baselines have no quota), else None."""
    if team is None:
        return None
    quota = quota_for(phase=phase, team_id=team.pk, now=now)
    which = quota.which
    if which is None:
        return None
    when = f" It resets at {quota.resets_at:%Y-%m-%d %H:%M} UTC." if which == "daily" else ""
    return QuotaExceeded(
        f"Your team has used its {which} quota of submissions for this phase.{when}",
        detail={"quota": which, "resets_at": quota.resets_at.isoformat() if which == "daily" else None},
    )


def participant_block(*, phase: Phase, team: Team | None, user: AbstractBaseUser | AnonymousUser) -> str:
    """What would refuse this user's submission other than the phase's dates, a missing team and the quota
    (a disqualification, an address to verify, terms to accept), in the words submitting would answer; "" if
    nothing (or nobody is signed in). The CLI says it before uploading a byte."""
    if not user.is_authenticated or team is None:
        return ""
    disqualified = standing_disqualification(phase=phase, team=team)
    if disqualified is not None:
        return disqualified_reason(disqualified)
    refusal = participant_refusal(phase=phase, user=user)
    return refusal.message if refusal is not None else ""


def why_not_now(*, phase: Phase, team: Team | None, now: dt.datetime, user: AbstractBaseUser | None = None) -> str:
    """Why this team (None: the user has none) cannot submit to the phase now, in the words submitting would
    answer, or "" when it can: for pages that disable the form and say why."""
    if team is None:
        return NO_TEAM
    disqualified = standing_disqualification(phase=phase, team=team)
    if disqualified is not None:
        return disqualified_reason(disqualified)
    if not phase.is_open(now):
        return closed_reason(phase=phase, now=now)
    participant = participant_refusal(phase=phase, user=user) if user is not None else None
    if participant is not None:
        return participant.message
    refusal = quota_refusal(phase=phase, team=team, now=now)
    return refusal.message if refusal else ""


def check_quota(*, phase: Phase, team: Team | None, now: dt.datetime) -> None:
    """Raise QuotaExceeded if the team has no submission left."""
    refusal = quota_refusal(phase=phase, team=team, now=now)
    if refusal is not None:
        raise refusal


def check_size(*, size: int) -> None:
    """Refuse a file over SUBMISSION_MAX_BYTES."""
    if size > settings.SUBMISSION_MAX_BYTES:
        raise TooLarge(f"The file is {size} bytes; the limit is {settings.SUBMISSION_MAX_BYTES} bytes.",
                       detail={"size": size, "limit": settings.SUBMISSION_MAX_BYTES})


def check_zip(*, handle: IO[bytes], filename: str = "") -> None:
    """Refuse what is not a zip, or is a zip with no entries, by its first bytes; leaves `handle` at the start.

    The scorer reads the archive itself and says what is wrong inside it; this only catches, before
    anything is stored or counted, the two mistakes that need no unpacking.
    """
    handle.seek(0)
    head = handle.read(22)
    handle.seek(0)
    if head[:4] not in ZIP_MAGIC:
        advice = (f"{filename!r} must be a zip of the split folders (short, medium, long)." if filename else
                  "Zip the split folders (short, medium, long) and upload the .zip.")
        raise ApplicationError(f"{NOT_A_ZIP} {advice}")
    # A zip that starts with its end-of-central-directory record has no local file entries; the
    # record's bytes 10-11 count the entries (an empty zip with a comment still counts 0).
    if head[:4] == _EMPTY_ZIP_MAGIC and len(head) >= 12 and struct.unpack("<H", head[10:12])[0] == 0:
        subject = f"The zip file {filename!r} is" if filename else "This zip file is"
        raise ApplicationError(f"{subject} empty: it has no files in it. Zip the split folders (short, medium, "
                               "long) and upload the .zip.")


def check_idempotency_key(key: str | None) -> str:
    """The client's Idempotency-Key header as stored ("" without one), or ApplicationError."""
    key = (key or "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable() or not key.isascii():
        raise ApplicationError(f"The Idempotency-Key header must be at most {IDEMPOTENCY_KEY_MAX} printable ASCII "
                               "characters (a UUID is a good key).")
    return key


def earlier_upload(*, phase: Phase, team: Team | None, user: AbstractBaseUser, sha256: str, key: str,
                   now: dt.datetime) -> Submission | None:
    """The submission this upload repeats, if any (see the module's docstring).

    A key the user already used for another file is refused: the client reused a key by mistake.
    Without a key, only a team's uploads are matched (baselines are added deliberately), and not one
    that was cancelled or failed on our side (the team may well be trying again on purpose).
    """
    if key:
        found = Submission.objects.filter(phase=phase, user=user, idempotency_key=key).first()
        if found is not None and found.file_sha256 != sha256:
            raise Conflict(f"The Idempotency-Key {key!r} was already used for another file (submission "
                           f"#{found.pk}); send a new key with a new upload.", detail={"submission": found.pk})
        return found
    if team is None:
        return None
    since = now - dt.timedelta(seconds=settings.SUBMISSION_REPEAT_SECONDS)
    return (Submission.objects.filter(phase=phase, team=team, file_sha256=sha256, submitted_at__gte=since)
            .exclude(status=Submission.Status.CANCELLED).exclude(failure_kind=FailureKind.INTERNAL)
            .order_by("-submitted_at", "-id").first())


def submission_insert(*, phase: Phase, team: Team | None, user: AbstractBaseUser, sha256: str, size: int,
                      now: dt.datetime, store: Callable[[Submission], None], idempotency_key: str = "",
                      **fields: object) -> Submission:
    """Create the row and queue its scoring, the quota checked under a lock on the team; or return the
    earlier submission this upload repeats, marked `replayed` (nothing stored, no quota used).

    `store` puts the file in place on the unsaved submission (saves a new file, or points the
    field at an object already in private storage).
    """
    submission = None
    try:
        with transaction.atomic():
            if team is not None:
                Team.objects.select_for_update().get(pk=team.pk)  # serialises quota checks per team
            earlier = earlier_upload(phase=phase, team=team, user=user, sha256=sha256, key=idempotency_key, now=now)
            if earlier is not None:
                earlier.replayed = True
                return earlier
            check_quota(phase=phase, team=team, now=now)
            submission = Submission(phase=phase, team=team, user=user, file_sha256=sha256, file_size=size,
                                    submitted_at=now, idempotency_key=idempotency_key, **fields)
            store(submission)
            submission.save()
            queue.score_on_commit(submission_id=submission.pk, attempt=submission.attempt)
    except IntegrityError:
        # Two requests with one key at once (a baseline: no team lock): the other one made it.
        earlier = idempotency_key and Submission.objects.filter(phase=phase, user=user,
                                                                idempotency_key=idempotency_key).first()
        if not earlier:
            raise
        if submission is not None and submission.file.name and submission.file.name != earlier.file.name:
            submission.file.delete(save=False)
        earlier.replayed = True
        return earlier
    return submission
