"""The audit trail, its signed checkpoints, and what every change does after it commits."""
