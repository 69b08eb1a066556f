"""The domain's names are defined once (ca_service/constants.py); the places that must spell them
out (the API schemas' Literals, for the OpenAPI document) are checked against them here."""

from __future__ import annotations

from typing import get_args

from ca_service.api import schemas
from ca_service.constants import CLIENT_ROLES, LoginMethod, QueueName, RevocationReason, UserRole
from ca_service.pki.reasons import CALLER_REASONS, REASONS, to_reason_flag
from ca_service.services.access import clients
from ca_service.services.background import failed_jobs
from ca_service.services.registry import organisations as registry
from ca_service.store.validity import STATUSES
from workers.queues import QUEUES


def test_api_literals_are_the_domain_enums():
    assert get_args(schemas.ReasonName) == tuple(RevocationReason)
    assert get_args(schemas.CallerReason) == CALLER_REASONS == tuple(r for r in RevocationReason if r != "superseded")
    assert get_args(schemas.LoginMethod) == tuple(LoginMethod)
    assert get_args(schemas.UserPut.model_fields["role"].annotation) == tuple(UserRole)
    assert get_args(schemas.User.model_fields["role"].annotation) == tuple(UserRole)
    assert set(get_args(schemas.Certificate.model_fields["status"].annotation)) == set(STATUSES)


def test_every_list_of_names_is_the_enum():
    assert REASONS == tuple(RevocationReason)
    assert all(to_reason_flag(r).name == r for r in RevocationReason)
    assert registry.LOGIN_METHODS == tuple(LoginMethod) and registry.USER_ROLES == tuple(UserRole)
    assert clients.ROLES == CLIENT_ROLES
    assert failed_jobs.QUEUES == QUEUES == tuple(QueueName)
