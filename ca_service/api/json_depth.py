"""A request body's JSON nesting depth, measured before any parser recurses into it.

Python's json module recurses once per level: `[` x 30,000 raises RecursionError (a 500, and the
after-request hook that re-reads the body crashed too). No request model nests deeper than a few
levels, so anything past MAX_DEPTH is refused as a 400 before json.loads sees it."""

from __future__ import annotations

import re

MAX_DEPTH = 32
# a string (skipped whole, escapes included) or one bracket; everything else cannot nest
_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')


def nesting_depth(data: bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting in `data`, counting stops once it passes `limit` (cost: one pass)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest
