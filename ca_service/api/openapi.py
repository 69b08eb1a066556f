"""The OpenAPI application: document generated from the pydantic models, errors as problem+json."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import Info, OpenAPI
from pydantic import BaseModel

from ca_service.api.problem_codes import codes_for, statuses_of
from ca_service.api.schemas import Problem
from ca_service.api.schemas_lifecycle import LoginCheckBody

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ERROR_STATUSES = {
    "400": "Invalid request (code validation-error, invalid-csr, ...)",
    "401": "Missing or unknown bearer token (code unauthenticated)",
    "403": "Role not allowed (forbidden) or business rule (not-permitted)",
    "404": "Not found",
    "409": "Conflict with the current state",
    "413": "Request body too large",
    "415": "Request body is not JSON",
    "429": "Too many requests, see Retry-After (see the operation's codes)",
    "503": "A dependency (CA key, database) is unavailable",
}


class CAOpenAPI(OpenAPI):
    def generate_spec_json(self) -> None:
        super().generate_spec_json()
        spec: dict[str, Any] = self.spec_json
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema()
        schemas.pop("ValidationErrorModel", None)
        for model in _CONDITIONAL:  # flask-openapi3's Schema object drops if/then: put them back
            full = model.model_json_schema()
            schemas.setdefault(model.__name__, {}).update({k: full[k] for k in ("if", "then", "else") if k in full})
        for path, path_item in spec.get("paths", {}).items():
            for method, operation in path_item.items():
                responses = operation.setdefault("responses", {})
                for status in list(responses):
                    if int(status) >= 400:
                        responses.pop(status)
                for status, description in {**_ERROR_STATUSES, **_extra_statuses(method, path)}.items():
                    if status in ("401", "403", "429") and "security" not in operation:
                        continue
                    codes = codes_for(method, path, status)
                    responses[status] = {
                        "description": f"{description}. Problem codes: {', '.join(codes)}" if codes else description,
                        "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
                    }


_CONDITIONAL: tuple[type[BaseModel], ...] = (LoginCheckBody,)


def _extra_statuses(method: str, path: str) -> dict[str, str]:
    return {"429": "Too many requests"} if "429" in statuses_of(method, path) else {}


def make_openapi_app(import_name: str) -> CAOpenAPI:
    return CAOpenAPI(
        import_name,
        info=Info(title="ca-service", version="1.0.0", description="The bank's internal certificate authority (DESIGN §4)."),
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer"},
            # EST: simpleenroll's login_id:code; simplereenroll's client certificate at nginx
            "estBasic": {"type": "http", "scheme": "basic"},
            "estClientCertificate": {"type": "mutualTLS"},
        },
        validation_error_status=400,
        doc_ui=False,
        doc_url="/openapi.json",
    )
