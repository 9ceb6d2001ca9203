"""Part sizes of large uploads (no network imports: the CLI parser uses them)."""

MiB = 2**20
MIN_PART = 5 * MiB  # S3's smallest part (every part but the last)
DEFAULT_PART = 16 * MiB
MAX_PART = 1024 * MiB  # each part is held in memory while it is sent
