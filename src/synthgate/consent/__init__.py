"""consent domain."""
