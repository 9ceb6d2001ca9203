"""Challenge as code: `challenge_apply FILE [--dry-run] [--as U]` checks a YAML file (every problem, with its
path and line), prints the diff against the database and applies it in one transaction, idempotently;
`challenge_export` writes it back. Real PostgreSQL, real ground-truth bundles (the synthetic benchmark)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from leaderboard.baselines.models import ReportedResult
from leaderboard.challenges.challengefile.apply import challenge_apply
from leaderboard.challenges.challengefile.export import challenge_export
from leaderboard.challenges.challengefile.schema import parse_text
from leaderboard.challenges.challengefile.yamlfile import SpecErrors
from leaderboard.challenges.models import Challenge, GroundTruthBundle, Host, Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import NotAllowed
from leaderboard.submissions.models import Board

from .conftest import make_user

DOCS = Path(__file__).resolve().parents[2] / "docs"
AOE = dt.timezone(dt.timedelta(hours=-12))

BASE = """\
format: 1
challenge:
  slug: coded
  title: Coded challenge
  description: |
    A challenge written as *code*.
  time_zone: Etc/GMT+12
hosts:
  - username: hanna
    role: owner
phases:
  - slug: dev
    name: Development
    opens: 2025-09-01T00:00:00-12:00
    closes: 2026-02-28T23:59:59-12:00
    quota: {per_day: 5, total: 100}
    splits: [short, medium, long, overall]
    ground_truth: {file: gt.zip, name: tiny v1}
    reported:
      - method: Paper method
        source: https://arxiv.org/abs/2508.00518
        citation: Someone, 2025
        values: {short: {IoU_gold_pred: 49.95}, long: {IoU_gold_pred: 24.8}}
  - slug: test
    name: Test
    visibility: private
    reveal_at: 2026-03-22T12:00:00-12:00
    ranking_rule: latest
"""


@pytest.fixture
def hanna(db):
    return make_user("hanna")


@pytest.fixture
def folder(tmp_path, synthetic, settings):
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"
    (tmp_path / "gt.zip").write_bytes(synthetic["gt_zip"])
    return tmp_path


def write(folder: Path, text: str, name: str = "challenge.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def apply(folder: Path, text: str, *args: str) -> str:
    out = io.StringIO()
    call_command("challenge_apply", str(write(folder, text)), *args, stdout=out)
    return out.getvalue()


def errors_of(text: str) -> list[str]:
    with pytest.raises(SpecErrors) as caught:
        parse_text(text)
    return [str(error) for error in caught.value.errors]


# --- validation ---------------------------------------------------------------------------------


def test_it_reports_every_problem_with_its_path_and_line(db):
    text = textwrap.dedent("""\
        format: 1
        challenge:
          slug: has space
          title: X
          time_zone: Mars/Olympus
        phases:
          - slug: dev
            name: Dev
            visibility: secret
            quota: {per_day: -1}
          - slug: test
            name: Test
            opens: 2026-03-01T00:00:00-12:00
            closes: 2026-02-01T00:00:00-12:00
            primary_metric: accuracy
        """)
    errors = errors_of(text)
    assert errors == [
        "line 3: challenge.slug: 'has space' is not a slug (letters, digits, - and _)",
        "line 5: challenge.time_zone: 'Mars/Olympus' is not a time zone name (examples: UTC, Europe/Paris, "
        "Etc/GMT+12).",
        "line 9: phases[0].visibility: must be 'public' or 'private'",
        "line 10: phases[0].quota.per_day: must be greater than or equal to 0",
        "line 14: phases[1].closes: must come after opens",
        "line 15: phases[1].primary_metric: must be 'T_recall', 'IoU_all', 'IoU_gold' or 'IoU_gold_pred'",
    ]


def test_it_refuses_a_date_without_a_time_zone(db):
    errors = errors_of(BASE.replace("opens: 2025-09-01T00:00:00-12:00", "opens: 2025-09-01"))
    assert errors == ["line 14: phases[0].opens: '2025-09-01' has no time zone: write its offset or zone, e.g. "
                      "2025-09-01T00:00:00-12:00 (AoE) or 2025-09-01T00:00:00[Europe/Paris]"]
    assert errors_of(BASE.replace("2025-09-01T00:00:00-12:00", "2025-09-01T00:00:00"))[0].startswith(
        "line 14: phases[0].opens: '2025-09-01T00:00:00' has no time zone")
    # A zone name in brackets is explicit too.
    spec, _ = parse_text(BASE.replace("2025-09-01T00:00:00-12:00", "2025-09-01T12:00:00[Europe/Paris]"))
    assert spec.phases[0].opens == dt.datetime(2025, 9, 1, 10, 0, tzinfo=dt.UTC)


def test_it_refuses_unknown_keys_and_repeated_keys(db):
    errors = errors_of(BASE.replace("    ranking_rule: latest", "    ranking_rul: latest\n    colour: red"))
    assert errors == ["line 28: phases[1].ranking_rul: unknown key (a typo? see docs/challenge-yaml.md for the keys)",
                      "line 29: phases[1].colour: unknown key (a typo? see docs/challenge-yaml.md for the keys)"]
    assert errors_of(BASE.replace("    name: Test\n", "    name: Test\n    name: Again\n")) == [
        "line 26: phases[1].name: 'name' is given twice (line 25 and here)"]
    assert errors_of("format: 1\nchallenge: [unclosed\n")[0].startswith("line 3: (the file): this is not valid YAML")


def test_it_names_unknown_users_and_missing_files_with_their_lines(folder, organizer):
    text = BASE.replace("hanna", "nobody").replace("file: gt.zip", "file: missing.zip")
    with pytest.raises(SpecErrors) as caught:
        challenge_apply(text=text, base_dir=folder, by=organizer)
    assert [str(e) for e in caught.value.errors] == [
        "line 9: hosts[0].username: there is no active user 'nobody'",
        f"line 18: phases[0].ground_truth.file: there is no file {folder / 'missing.zip'}"]
    make_user("hanna")
    with pytest.raises(SpecErrors) as caught:
        challenge_apply(text=BASE.replace("file: gt.zip", "version: 0123456789abcdef"), base_dir=folder, by=organizer)
    assert [str(e) for e in caught.value.errors] == [
        "line 18: phases[0].ground_truth: the challenge is new, so it has no bundles yet: give a file"]
    assert not Challenge.objects.filter(slug="coded").exists()


def test_the_command_lists_the_problems_without_a_traceback(folder, organizer):
    with pytest.raises(CommandError) as caught:
        apply(folder, BASE.replace("opens: 2025-09-01T00:00:00-12:00", "opens: 2025-09-01").replace(
            "role: owner", "role: boss"))
    message = str(caught.value)
    assert message.startswith(f"{folder / 'challenge.yaml'} has 2 problem(s); nothing was written.")
    assert "line 10: hosts[0].role: must be 'owner', 'organizer' or 'viewer'" in message
    assert "line 14: phases[0].opens: '2025-09-01' has no time zone" in message


# --- dry run, apply, idempotency, diff ----------------------------------------------------------


def test_a_dry_run_prints_the_diff_and_writes_nothing(folder, organizer, hanna):
    out = apply(folder, BASE, "--dry-run")
    assert out.splitlines()[:4] == ["challenge coded: created", "host hanna: created (owner)",
                                    "phase dev: created", f"    ground_truth: (none) → 'tiny v1' "
                                    f"{_version(folder)[:12]} (uploaded from gt.zip)"]
    assert "reported dev / Paper method: created" in out
    assert out.rstrip().endswith("Dry run: nothing was written.")
    assert not Challenge.objects.filter(slug="coded").exists()
    assert not GroundTruthBundle.objects.exists()


def _version(folder: Path) -> str:
    from scoring import load_ground_truth

    return load_ground_truth(folder / "gt.zip").version


def test_it_creates_everything_then_says_no_changes(folder, organizer, hanna):
    out = apply(folder, BASE)
    assert out.rstrip().endswith("Applied.")
    challenge = Challenge.objects.get(slug="coded")
    assert (challenge.title, challenge.time_zone, challenge.description) == (
        "Coded challenge", "Etc/GMT+12", "A challenge written as *code*.\n")
    dev, test = Phase.objects.filter(challenge=challenge).order_by("order")
    assert (dev.slug, dev.order, dev.max_per_day, dev.max_total) == ("dev", 0, 5, 100)
    assert dev.starts_at == dt.datetime(2025, 9, 1, tzinfo=AOE)
    assert dev.ends_at == dt.datetime(2026, 2, 28, 23, 59, 59, tzinfo=AOE)
    assert (test.order, test.visibility, test.ranking_rule) == (1, "private", "latest")
    assert test.reveal_at == dt.datetime(2026, 3, 22, 12, tzinfo=AOE)
    assert [s.code for s in dev.splits.all()] == ["short", "medium", "long", "overall"]
    assert dev.ground_truth.status == GroundTruthBundle.Status.READY and dev.ground_truth.name == "tiny v1"
    assert test.ground_truth is None
    assert list(ReportedResult.objects.filter(phase=dev).values_list("method", "values")) == [
        ("Paper method", {"short": {"IoU_gold_pred": 49.95}, "long": {"IoU_gold_pred": 24.8}})]
    assert Host.objects.get(challenge=challenge).role == "owner"
    assert Board.objects.filter(phase=dev).exists()  # the boards were built with the phase

    again = apply(folder, BASE)
    assert again.strip() == "coded: no changes."
    assert GroundTruthBundle.objects.count() == 1  # the same zip is not uploaded twice


def test_an_edit_shows_old_and_new_values_and_is_applied(folder, organizer, hanna):
    apply(folder, BASE)
    edited = (BASE.replace("closes: 2026-02-28T23:59:59-12:00", "closes: 2026-03-07T23:59:59-12:00")
              .replace("quota: {per_day: 5, total: 100}", "quota: {per_day: 3}")
              .replace("title: Coded challenge", "title: Coded challenge 2026")
              .replace("ranking_rule: latest", "ranking_rule: best")
              .replace("splits: [short, medium, long, overall]", "splits: [short, long, overall]")
              .replace("{IoU_gold_pred: 24.8}", "{IoU_gold_pred: 25.1}"))
    dry = apply(folder, edited, "--dry-run")
    assert dry.splitlines() == [
        "challenge coded: changed",
        "    title: 'Coded challenge' → 'Coded challenge 2026'",
        "phase dev: changed",
        "    closes: 2026-02-28T23:59:59-12:00 → 2026-03-07T23:59:59-12:00",
        "    quota.per_day: 5 → 3",
        "    quota.total: 100 → (none)",
        "    splits: short, medium, long, overall → short, long, overall",
        "reported dev / Paper method: changed",
        "    values: {'short': {'IoU_gold_pred': 49.95}, 'long': {'IoU_gold_pred': 24.8}} → "
        "{'short': {'IoU_gold_pred': 49.95}, 'long': {'IoU_gold_pred': 25.1}}",
        "phase test: changed",
        "    ranking_rule: 'latest' → 'best'",
        "Dry run: nothing was written.",
    ]
    assert Phase.objects.get(slug="dev", challenge__slug="coded").max_per_day == 5
    assert apply(folder, edited).splitlines()[:-1] == dry.splitlines()[:-1]
    dev = Phase.objects.get(slug="dev", challenge__slug="coded")
    assert (dev.max_per_day, dev.max_total, dev.ends_at) == (3, None, dt.datetime(2026, 3, 7, 23, 59, 59,
                                                                                    tzinfo=AOE))
    assert [s.code for s in dev.splits.all()] == ["short", "long", "overall"]
    assert Phase.objects.get(slug="test", challenge__slug="coded").ranking_rule == "best"
    assert apply(folder, edited).strip() == "coded: no changes."


def test_it_keeps_phases_the_file_does_not_list_and_removes_reported_rows_it_does_not(folder, organizer, hanna):
    apply(folder, BASE)
    without_test = BASE[:BASE.index("  - slug: test")]
    out = apply(folder, without_test.replace("    reported:\n      - method: Paper method\n"
                                             "        source: https://arxiv.org/abs/2508.00518\n"
                                             "        citation: Someone, 2025\n"
                                             "        values: {short: {IoU_gold_pred: 49.95}, long: "
                                             "{IoU_gold_pred: 24.8}}\n", "    reported: []\n"))
    assert "phase test: not in the file, kept" in out
    assert "reported dev / Paper method: removed" in out
    assert Phase.objects.filter(challenge__slug="coded", slug="test").exists()
    assert not ReportedResult.objects.filter(phase__challenge__slug="coded").exists()


# --- who may apply; hosts -----------------------------------------------------------------------


def test_hosts_from_the_file_get_their_rights(folder, organizer, hanna):
    make_user("oscar")
    make_user("vera")
    apply(folder, BASE.replace("    role: owner\n", "    role: owner\n  - username: oscar\n    role: organizer\n"
                                                    "  - username: vera\n    role: viewer\n"))
    challenge = Challenge.objects.get(slug="coded")
    oscar, vera = (Host.objects.get(challenge=challenge, user__username=n).user for n in ("oscar", "vera"))
    assert organizer_can(oscar, challenge, Can.CONFIGURE) and not organizer_can(oscar, challenge, Can.MANAGE_HOSTS)
    assert organizer_can(vera, challenge, Can.VIEW) and not organizer_can(vera, challenge, Can.CONFIGURE)
    # The owner applies a file that drops oscar and makes vera an organizer.
    out = apply(folder, BASE.replace("    role: owner\n", "    role: owner\n  - username: vera\n"
                                                        "    role: organizer\n"), "--as", "hanna")
    assert "host oscar: removed (organizer)" in out
    assert "host vera: changed\n    role: viewer → organizer" in out
    oscar, vera = (get_user_model().objects.get(username=n) for n in ("oscar", "vera"))  # roles read afresh
    assert not organizer_can(oscar, challenge, Can.VIEW)
    assert organizer_can(vera, challenge, Can.CONFIGURE)


def test_a_host_without_configure_is_refused(folder, organizer, hanna):
    make_user("vera")
    apply(folder, BASE.replace("    role: owner\n", "    role: owner\n  - username: vera\n    role: viewer\n"))
    with pytest.raises(CommandError, match="You may not configure the challenge 'coded'. Nothing was written."):
        apply(folder, BASE.replace("title: Coded challenge", "title: Changed"), "--as", "vera")
    assert Challenge.objects.get(slug="coded").title == "Coded challenge"


def test_an_organizer_may_configure_but_not_change_the_hosts(folder, organizer, hanna):
    make_user("oscar")
    with_oscar = BASE.replace("    role: owner\n", "    role: owner\n  - username: oscar\n    role: organizer\n")
    apply(folder, with_oscar)
    assert "title: 'Coded challenge' → 'Renamed'" in apply(folder, with_oscar.replace(
        "title: Coded challenge", "title: Renamed"), "--as", "oscar")
    with pytest.raises(CommandError, match="Only the owners of coded choose its hosts"):
        apply(folder, with_oscar.replace("role: organizer", "role: owner"), "--as", "oscar")
    assert Host.objects.get(user__username="oscar").role == "organizer"


def test_only_staff_create_a_challenge(folder, hanna):
    with pytest.raises(NotAllowed, match="only staff create one"):
        challenge_apply(text=BASE, base_dir=folder, by=hanna)
    assert not Challenge.objects.exists()


# --- export -------------------------------------------------------------------------------------


def test_export_round_trips(folder, organizer, hanna):
    apply(folder, BASE)
    challenge = Challenge.objects.get(slug="coded")
    exported = challenge_export(challenge=challenge)
    assert "opens: 2025-09-01T00:00:00-12:00" in exported and "reveal_at: 2026-03-22T12:00:00-12:00" in exported
    assert apply(folder, exported).strip() == "coded: no changes."
    # The export says what the file said (the ground truth by the version of the zip it named; a phase
    # without reported rows as an empty list).
    ours, _ = parse_text(BASE)
    theirs, _ = parse_text(exported)
    assert normal(theirs) == normal(ours)
    assert theirs.phases[0].ground_truth.version == Phase.objects.get(slug="dev").ground_truth.version
    out = io.StringIO()
    call_command("challenge_export", "coded", "--out", str(folder / "out.yaml"), stdout=out)
    assert (folder / "out.yaml").read_text() == exported


def normal(spec) -> dict:
    data = spec.model_dump()
    for phase in data["phases"]:
        phase.pop("ground_truth")
        phase["reported"] = phase["reported"] or []
    return data


def test_the_sample_file_applies_to_an_empty_database(tmp_path, synthetic, organizer, settings):
    """docs/egomask-challenge.yaml, its ground truth replaced by the synthetic benchmark and its host
    placeholders by real users: a dry run, then an apply, then no changes."""
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"
    shutil.copy(DOCS / "egomask-challenge.yaml", tmp_path / "egomask-challenge.yaml")
    (tmp_path / "ground-truth").mkdir()
    (tmp_path / "ground-truth" / "egomask-v1.zip").write_bytes(synthetic["gt_zip"])
    make_user("egomask-owner")
    make_user("egomask-organizer")
    text = (tmp_path / "egomask-challenge.yaml").read_text()
    dry = challenge_apply(text=text, base_dir=tmp_path, by=organizer, dry_run=True)
    assert [c.what for c in dry.changes if c.verb == "created"][:5] == [
        "challenge egomask", "host egomask-owner", "host egomask-organizer", "phase dev",
        "reported dev / Grounded-SAM2"]
    assert not Challenge.objects.exists()
    plan = challenge_apply(text=text, base_dir=tmp_path, by=organizer)
    assert plan.changed
    dev, test = Phase.objects.filter(challenge__slug="egomask").order_by("order")
    assert dev.ground_truth == test.ground_truth and dev.ground_truth.status == "ready"
    assert ReportedResult.objects.filter(phase=test).count() == 6
    assert not test.is_revealed(dt.datetime(2026, 3, 20, tzinfo=dt.UTC))
    assert challenge_apply(text=text, base_dir=tmp_path, by=organizer).text() == "egomask: no changes."


def test_an_invalid_zip_is_refused_with_the_scorers_message_and_leaves_nothing_behind(folder, organizer, hanna):
    import zipfile

    from leaderboard.storage import private_storage

    apply(folder, BASE)
    challenge = Challenge.objects.get(slug="coded")
    with zipfile.ZipFile(folder / "broken.zip", "w") as archive:
        archive.writestr("readme.txt", "no annotations here")
    text = BASE.replace("    ranking_rule: latest\n", "    ranking_rule: latest\n"
                                                          "    ground_truth: {file: broken.zip, name: broken}\n")
    with pytest.raises(CommandError) as caught:
        apply(folder, text.replace("title: Coded challenge", "title: Not written"))
    assert "line 29: phases[1].ground_truth.file: the ground truth is invalid:" in str(caught.value)
    assert Challenge.objects.get(slug="coded").title == "Coded challenge"
    assert list(GroundTruthBundle.objects.values_list("name", flat=True)) == ["tiny v1"]
    _, files = private_storage().listdir(f"ground-truth/{challenge.pk}")
    assert len(files) == 1  # the first file's zip; the broken one was removed again
    with pytest.raises(SpecErrors) as caught:  # a dry run checks the zip where it is
        challenge_apply(text=text, base_dir=folder, by=organizer, dry_run=True)
    assert caught.value.errors[0].path == "phases[1].ground_truth.file"


# --- the statistics, the Ladder and quotas that count failures ------------------------------------------------


PROBING = BASE.replace("""    ranking_rule: latest
""", """    ranking_rule: latest
    quota: {per_day: 3, counts_failed: true}
    statistics: {bootstrap_samples: 2000, tie_level: 0.01, min_bucket_size: 20}
    ladder: true
    ladder_step: 0.5
""")


def test_the_ladder_statistics_and_failure_quota_apply_and_round_trip(folder, organizer, hanna):
    apply(folder, PROBING)
    test = Phase.objects.get(slug="test")
    assert (test.max_per_day, test.quota_counts_failed, test.bootstrap_samples, test.tie_level, test.min_bucket_size,
            test.ladder, test.ladder_step) == (3, True, 2000, 0.01, 20, True, 0.5)
    dev = Phase.objects.get(slug="dev")  # what the file does not say: the defaults
    assert (dev.quota_counts_failed, dev.bootstrap_samples, dev.tie_level, dev.min_bucket_size, dev.ladder,
            dev.ladder_step) == (False, 1000, 0.05, 10, False, 1.0)
    exported = challenge_export(challenge=Challenge.objects.get(slug="coded"))
    assert "ladder: true" in exported and "counts_failed: true" in exported
    assert apply(folder, exported).strip() == "coded: no changes."
    assert normal(parse_text(exported)[0]) == normal(parse_text(PROBING)[0])


def test_an_edit_of_the_ladder_is_shown_by_its_key_and_applied(folder, organizer, hanna):
    apply(folder, PROBING)
    edited = PROBING.replace("ladder_step: 0.5", "ladder_step: 2.0").replace("tie_level: 0.01", "tie_level: 0.05")
    shown = apply(folder, edited, "--dry-run")
    assert "ladder_step: 0.5 → 2.0" in shown and "statistics.tie_level: 0.01 → 0.05" in shown
    apply(folder, edited)
    assert (Phase.objects.get(slug="test").ladder_step, Phase.objects.get(slug="test").tie_level) == (2.0, 0.05)


@pytest.mark.parametrize(("line", "problem"), [
    ("ladder_step: 0", "phases[1].ladder_step"),
    ("ladder_step: 80", "phases[1].ladder_step"),
    ("statistics: {bootstrap_samples: 10}", "phases[1].statistics.bootstrap_samples"),
    ("statistics: {tie_level: 0.9}", "phases[1].statistics.tie_level"),
    ("statistics: {min_bucket_size: 0}", "phases[1].statistics.min_bucket_size"),
    ("quota: {counts_failed: maybe}", "phases[1].quota.counts_failed"),
])
def test_it_refuses_out_of_range_values_by_their_path(db, line, problem):
    problems = errors_of(BASE + f"    {line}\n")
    assert any(problem in text for text in problems), problems
