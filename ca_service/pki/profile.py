"""The client-certificate profile (DESIGN §3): subject and extensions built by the CA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca_service.pki.csr import ClientPublicKey
from ca_service.pki.signer import Signer


@dataclass(frozen=True, slots=True)
class ClientCertRequest:
    login_id: str
    org_id: str
    organization_name: str  # the bank's configured name
    public_key: ClientPublicKey
    serial: int
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True, slots=True)
class IssuerContext:
    """What signing needs of an issuing CA, prepared once per process."""

    certificate: x509.Certificate
    signer: Signer  # the issuing CA's key, by reference
    aki: x509.AuthorityKeyIdentifier
    crl_url: str
    ocsp_url: str
    ca_cert_url: str


def make_issuer_context(
    certificate: x509.Certificate, signer: Signer, *, crl_url: str, ocsp_url: str, ca_cert_url: str
) -> IssuerContext:
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return IssuerContext(
        certificate=certificate,
        signer=signer,
        aki=x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
        crl_url=crl_url,
        ocsp_url=ocsp_url,
        ca_cert_url=ca_cert_url,
    )


def client_subject(login_id: str, org_id: str, organization_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, org_id),
            x509.NameAttribute(NameOID.COMMON_NAME, login_id),
        ]
    )


# KeyUsage digitalSignature only: client certificates and the delegated OCSP responder.
DIGITAL_SIGNATURE_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def build_client_certificate(req: ClientCertRequest, issuer: IssuerContext) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(client_subject(req.login_id, req.org_id, req.organization_name))
        .issuer_name(issuer.certificate.subject)
        .public_key(req.public_key)
        .serial_number(req.serial)
        .not_valid_before(req.not_before)
        .not_valid_after(req.not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(DIGITAL_SIGNATURE_ONLY, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(req.public_key), critical=False)
        .add_extension(issuer.aki, critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(issuer.crl_url)], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(issuer.ocsp_url)),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(issuer.ca_cert_url)
                    ),
                ]
            ),
            critical=False,
        )
    )
    return issuer.signer.sign_certificate(builder)
