"""Request/response models for the signed audit checkpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ca_service.api.schemas import Strict


class CheckpointQuery(Strict):
    limit: int = Field(100, ge=1, le=1000)
    before_seq: int | None = Field(None, ge=1, le=2**62, description="page: only checkpoints older than this seq")


class AuditCheckpoint(BaseModel):
    seq: int
    event_count: int = Field(description="sealed events in the chain when signed (its head's chain_index)")
    head_hash: str = Field(description="hash of the event at chain_index event_count (64 zeros for an empty chain)")
    signed_at: datetime
    key_id: str = Field(description="the audit key in `keys` that signed it")
    signature: str = Field(
        description="base64 signature (ECDSA P-256 SHA-256, DER) over the UTF-8 JSON "
        '{"event_count":N,"head_hash":"...","seq":N,"signed_at":"...Z"}: keys sorted, no spaces'
    )


class AuditKey(BaseModel):
    key_id: str
    algorithm: str
    public_key_pem: str


class AuditCheckpointPage(BaseModel):
    items: list[AuditCheckpoint] = Field(description="newest first")
    next_before_seq: int | None
    keys: list[AuditKey]
