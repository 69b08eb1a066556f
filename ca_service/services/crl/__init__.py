"""CRL publication, the public CRL files, and the offline root's ceremony CRL."""
