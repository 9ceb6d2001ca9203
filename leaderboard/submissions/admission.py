"""The checks every way in shares before a file becomes a submission: the web form and the API's one-POST
upload (services.submission_create) and the completion of a large upload (uploads.upload_complete).

Who (the user's team, or an organizer's baseline), when (the phase's dates), the method fields, the
file (size, zip magic, at least one entry) and, last, the quota, checked and used under a row lock
on the team so that two simultaneous uploads cannot both take the last slot.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from typing import IO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from leaderboard.accounts.models import Team
from leaderboard.accounts.selectors import team_for
from leaderboard.challenges.models import Phase
from leaderboard.errors import ApplicationError, NotAllowed, QuotaExceeded, TooLarge

from . import queue
from .models import Submission
from .selectors import quota_for

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NOT_A_ZIP = "This is not a zip file."
NO_TEAM = "Create or join a team for this challenge before submitting."
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"  # an archive that starts with its end record has no entries
METHOD_NAME_MAX = 200
URL_MAX = 200


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
        if not user.is_staff:
            raise NotAllowed("Only organizers can add baseline entries.")
        return None
    team = team_for(user=user, challenge=phase.challenge)
    if team is None:
        raise NotAllowed(NO_TEAM)
    now = now or timezone.now()
    if not phase.is_open(now):
        raise NotAllowed(closed_reason(phase=phase, now=now))
    return team


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


def why_not_now(*, phase: Phase, team: Team | None, now: dt.datetime) -> str:
    """Why this team (None: the user has none) cannot submit to the phase now, in the words submitting would
    answer, or "" when it can: for pages that disable the form and say why."""
    if team is None:
        return NO_TEAM
    if not phase.is_open(now):
        return closed_reason(phase=phase, now=now)
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


def submission_insert(*, phase: Phase, team: Team | None, user: AbstractBaseUser, sha256: str, size: int,
                      now: dt.datetime, store: Callable[[Submission], None], **fields: object) -> Submission:
    """Create the row and queue its scoring, the quota checked under a lock on the team.

    `store` puts the file in place on the unsaved submission (saves a new file, or points the
    field at an object already in private storage).
    """
    with transaction.atomic():
        if team is not None:
            Team.objects.select_for_update().get(pk=team.pk)  # serialises quota checks per team
        check_quota(phase=phase, team=team, now=now)
        submission = Submission(phase=phase, team=team, user=user, file_sha256=sha256, file_size=size,
                                submitted_at=now, **fields)
        store(submission)
        submission.save()
        queue.score_on_commit(submission_id=submission.pk, attempt=submission.attempt)
    return submission
