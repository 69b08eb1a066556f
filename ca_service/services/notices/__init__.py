"""The 40-day expiry notices: the daily scan, their texts, the mailer."""
