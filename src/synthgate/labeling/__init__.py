"""labeling domain."""
