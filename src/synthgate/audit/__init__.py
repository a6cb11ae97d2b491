"""Tamper-evident audit log: RFC 9162 Merkle tree primitives and C2SP signed checkpoints."""
