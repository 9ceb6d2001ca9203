"""The organizers' moderation: hide or flag a submission, mark it as a baseline, disqualify a team from a phase,
and undo each. Every service takes the acting user (`by`), asks the one permission rule (MODERATE on the
challenge), needs a reason, and records it in the audit log (history.py, simple-history); the boards are
rebuilt in the same transaction. The team sees the reasons of a hide, a flag and a disqualification."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from leaderboard.accounts.models import Team
from leaderboard.challenges.models import Phase
from leaderboard.errors import ApplicationError, Conflict

from .boards import board_changed
from .models import Disqualification, Submission
from .services import check_moderates, given_reason, set_flag


def _challenge_of(submission: Submission) -> int:
    return Phase.objects.values_list("challenge_id", flat=True).get(pk=submission.phase_id)


def submission_hide(*, submission: Submission, by: AbstractBaseUser | None, reason: str,
                    hidden: bool = True) -> Submission:
    """Hide a submission from every board (kept, still the team's, who sees `reason`), or show it again."""
    reason = given_reason(reason)
    check_moderates(by=by, challenge_id=_challenge_of(submission))
    return set_flag(submission, by=by, reason=f"{'hidden' if hidden else 'shown'}: {reason}", hidden=hidden,
                    hidden_reason=reason if hidden else "")


def submission_flag(*, submission: Submission, by: AbstractBaseUser | None, reason: str,
                    flagged: bool = True) -> Submission:
    """Flag a submission (it stays on the boards, marked; the team sees `reason`), or lift the flag."""
    reason = given_reason(reason)
    check_moderates(by=by, challenge_id=_challenge_of(submission))
    return set_flag(submission, by=by, reason=f"{'flagged' if flagged else 'unflagged'}: {reason}", flagged=flagged,
                    flag_reason=reason if flagged else "")


def submission_set_baseline(*, submission: Submission, by: AbstractBaseUser | None, reason: str,
                            is_baseline: bool) -> Submission:
    """Mark a submission as a baseline entry (badged on the boards, no rank), or unmark it."""
    reason = given_reason(reason)
    check_moderates(by=by, challenge_id=_challenge_of(submission))
    return set_flag(submission, by=by, reason=f"{'marked' if is_baseline else 'unmarked'} baseline: {reason}",
                    is_baseline=is_baseline)


def team_disqualify(*, phase: Phase, team: Team, by: AbstractBaseUser | None, reason: str) -> Disqualification:
    """Disqualify a team from a phase: its rows leave the phase's boards and it may not submit there (told
    `reason`) until team_reinstate."""
    reason = given_reason(reason)
    check_moderates(by=by, challenge_id=phase.challenge_id)
    if team.challenge_id != phase.challenge_id:
        raise ApplicationError(f"The team {team.name!r} is not in the challenge of {phase}.",
                               detail={"field": "team"})
    standing = Disqualification(phase=phase, team=team, reason=reason, by=by)
    standing._history_user, standing._change_reason = by, f"disqualified: {reason}"  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            standing.save()
            board_changed(phase_id=phase.pk)
    except IntegrityError:  # one_standing_disqualification
        raise Conflict(f"The team {team.name!r} is already disqualified from {phase}.") from None
    return standing


def team_reinstate(*, disqualification: Disqualification, by: AbstractBaseUser | None,
                   reason: str) -> Disqualification:
    """Lift a disqualification: the team's rows return to the boards and it may submit again. The
    disqualification is kept, with who lifted it, when and why."""
    reason = given_reason(reason)
    check_moderates(by=by, challenge_id=Phase.objects.values_list("challenge_id", flat=True).get(
        pk=disqualification.phase_id))
    with transaction.atomic():
        locked = Disqualification.objects.select_for_update().get(pk=disqualification.pk)
        if locked.lifted_at is not None:
            raise Conflict("This disqualification was already lifted.")
        locked.lifted_at, locked.lifted_by, locked.lift_reason = timezone.now(), by, reason
        locked._history_user, locked._change_reason = by, f"reinstated: {reason}"  # type: ignore[attr-defined]
        locked.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        board_changed(phase_id=locked.phase_id)
    return locked

