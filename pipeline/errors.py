"""The one exception stages raise for a post that cannot become an article."""

from __future__ import annotations


class Reject(Exception):
    """A post is rejected with a stable `reason` code (see schema.REJECT_REASONS)."""

    def __init__(self, reason: str, detail: str, source: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.source = source  # the feed, when known before the post failed


class BuildError(Exception):
    """The build as a whole cannot run (missing input, unwritable output)."""
