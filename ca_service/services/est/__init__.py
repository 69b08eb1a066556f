"""EST (RFC 7030, DESIGN §4c): the issuance app's front door. Enrolment with a one-time code
and re-enrolment with the current certificate, through the same issuance and renewal services
as the REST API. Above `certificates` (it issues) and `enrolment` (it uses the codes)."""
