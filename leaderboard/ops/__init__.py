"""Operations: worker heartbeats, health checks, the public queue status, metrics and error reporting."""
