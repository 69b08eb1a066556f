"""The CA hierarchy and the delegated OCSP responder certificates it issues."""
