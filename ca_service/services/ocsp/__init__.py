"""Answering OCSP (RFC 6960) and keeping each process's pre-signed answers fresh."""
