"""Enrolment from the user's PC (issue 23, DESIGN §4c): one-time codes (codes.py) and the EST
workflows (est.py) that call the one issuance and renewal service (services/certificates/issuance.py)."""
