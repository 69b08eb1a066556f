"""Issuance and renewal, revocation and its brake, reading certificates."""
