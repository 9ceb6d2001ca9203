"""EgoMask scoring: ground truth, predictions, the four metrics. Framework-free by design.

    from scoring import load_ground_truth, evaluate
    result = evaluate(load_ground_truth("gt/"), "predictions.zip")
    result.as_dict()["overall"]["IoU_gold_pred"]
"""

from .archive import Limits
from .errors import InvalidGroundTruth, InvalidSubmission, Location, ScoringError, ScoringWarning
from .evaluation import SCORER_VERSION, Evaluation, ExpressionResult, ValidationReport, evaluate, validate_submission
from .groundtruth import SPLITS, GroundTruth, load_ground_truth
from .metrics import METRICS, PRIMARY_METRIC

__all__ = [
    "METRICS",
    "PRIMARY_METRIC",
    "SCORER_VERSION",
    "SPLITS",
    "Evaluation",
    "ExpressionResult",
    "GroundTruth",
    "InvalidGroundTruth",
    "InvalidSubmission",
    "Limits",
    "Location",
    "ScoringError",
    "ScoringWarning",
    "ValidationReport",
    "evaluate",
    "load_ground_truth",
    "validate_submission",
]
