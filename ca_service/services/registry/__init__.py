"""Organisations and users, their login method, and the login checks."""
