"""pki.sealing: a sealed value opens only with the same secret and purpose, and any change to it is
refused (Fernet's HMAC), not decrypted into something else."""

from __future__ import annotations

import pytest

from ca_service.pki.sealing import Unsealable, seal, unseal


def test_a_sealed_value_opens_only_with_its_secret_and_purpose():
    sealed = seal(b"s" * 32, b"purpose-a", "JBSWY3DPEHPK3PXP")
    assert sealed.startswith("f1:") and "JBSWY3DPEHPK3PXP" not in sealed
    assert seal(b"s" * 32, b"purpose-a", "JBSWY3DPEHPK3PXP") != sealed  # a fresh IV each time
    assert unseal(b"s" * 32, b"purpose-a", sealed) == "JBSWY3DPEHPK3PXP"
    for secret, purpose in ((b"t" * 32, b"purpose-a"), (b"s" * 32, b"purpose-b")):
        with pytest.raises(Unsealable):
            unseal(secret, purpose, sealed)


def test_an_altered_or_clear_value_is_refused():
    sealed = seal(b"s" * 32, b"p", "JBSWY3DPEHPK3PXP")
    flipped = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    for bad in (flipped, "JBSWY3DPEHPK3PXP", "f1:not-a-token"):
        with pytest.raises(Unsealable):
            unseal(b"s" * 32, b"p", bad)
