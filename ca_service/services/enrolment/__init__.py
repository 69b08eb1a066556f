"""Enrolment codes (DESIGN §4c): the one-time codes the front end or the help desk mints, that
EST's simpleenroll (services/est/) takes as its credential. Below `certificates` and `registry`,
which void a user's codes on a help-desk revocation, a role change or a switch away from
certificates."""
