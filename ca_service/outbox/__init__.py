"""The outbox: side effects that need Redis (publish a CRL, send an email) are recorded here in
the same database transaction as the change that causes them, and relayed to RQ after commit."""
