"""moderation domain."""
