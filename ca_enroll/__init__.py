"""ca-enroll: the bank's reference certificate issuance app (証明書発行アプリ), DESIGN §4c.

A pure client of the CA's EST endpoints (RFC 7030): it makes a P-256 key on the user's PC,
enrols with a one-time enrolment code, checks what it receives and installs the certificate
into the NSS database that Chrome/Chromium use on Linux, or writes a PKCS#12 for Windows. It
imports nothing of the ca_service server: only requests, cryptography, click and the NSS tools.
"""
