"""Framework-free helpers of the server (no Django, no Celery): tested without a database."""
