"""Reader-study models (owned by the reader-study work; see docs/architecture.md)."""
