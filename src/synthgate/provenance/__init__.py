"""provenance domain."""
