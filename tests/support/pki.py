"""Keys, CSRs and openssl helpers for tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID


def new_key(kind: str = "ec256"):
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ec521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    raise ValueError(kind)


def make_csr(key=None, *, cn: str = "someone-else", extensions: bool = False) -> tuple[object, str]:
    """A PEM CSR; its subject and (optional) extensions are things the CA must ignore."""
    key = key or new_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil Corp")])
    )
    if extensions:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            x509.SubjectAlternativeName([x509.DNSName("bank.example")]), critical=False
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm)
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def tamper_csr_signature(pem: str) -> str:
    """Flip a bit in the CSR's signature so proof of possession fails."""
    csr = x509.load_pem_x509_csr(pem.encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    sig = csr.signature
    pos = bytes(der).rfind(sig)
    der[pos + len(sig) // 2] ^= 0x01
    import base64

    b64 = base64.encodebytes(bytes(der)).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE REQUEST-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE REQUEST-----\n"


def openssl(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc


def pkilint(path: Path, tool: str = "lint_pkix_cert") -> subprocess.CompletedProcess[str]:
    """Run DigiCert's pkilint (RFC 5280 linter) from this virtualenv; findings of WARNING or worse."""
    import sys

    binary = Path(sys.executable).parent / tool
    return subprocess.run([str(binary), "lint", "-s", "WARNING", str(path)], capture_output=True, text=True, check=False)
