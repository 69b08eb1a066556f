"""The help desk's look-ups, the console's pages, and dual control (approvals)."""
