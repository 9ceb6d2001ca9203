import pytest
from django.core.management import call_command


def test_it_has_a_migration_for_every_model_change(db):
    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    except SystemExit as exc:  # makemigrations --check exits 1 when a migration is missing
        pytest.fail(f"a model change has no migration (makemigrations --check exited {exc.code})")
