"""operators domain."""
