from leaderboard.submissions.models import Submission


def test_it_scores_a_submission_end_to_end_through_the_services(alice, submit, score):
    submission = score(submit(alice, quality="perfect"))
    assert submission.status == Submission.Status.FINISHED, submission.failure_message
    scores = {s.split: s.IoU_gold_pred for s in submission.scores.all()}
    assert scores == {"short": 100.0, "medium": 100.0, "long": 100.0, "overall": 100.0}
