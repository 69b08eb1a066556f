"""The `pkcs11` key backend (DESIGN §3 "Key custody"): CA keys live in an HSM token and never
leave it. A key is handed out as a subclass of cryptography's `EllipticCurvePrivateKey` /
`RSAPrivateKey` whose `sign()` hashes on the host and sends the digest to the token, so
cryptography's certificate, CRL and OCSP builders (and `KeySigner`) use it unchanged.

What the PKCS#11 library demands, and how this module meets it:
- One `C_Initialize` and one login per process and token: `_Library` and `_Token` are
  process-wide, shared by every backend object. A session is never `close()`d (python-pkcs11
  would `C_Logout` the whole process).
- python-pkcs11 initialises the library without locking flags: every call into the token runs
  under one lock per process (scale with processes, not threads).
- Fork: nothing touches the library until the first key is needed (never in a gunicorn master);
  a PID change re-initialises the library in the child.
- A wrong PIN is never retried (a token locks the user PIN after a few): the process remembers
  the refused PIN and refuses to log in with it again until the PIN file changes.
- After an HSM or library restart the session fails (`SessionHandleInvalid`, `DeviceRemoved`,
  a generic error): re-initialise, log in, find the key again and retry once; while the token
  cannot be reached every call raises `KeyUnavailable` (the API answers 503 `ca-key-unavailable`)
  and the next call tries again, so the service recovers by itself.
- Keys are found by class + key type + label + id (label = CA key reference).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from ca_service.pki import pkcs11_token
from ca_service.pki.keys import KeyUnavailable
from ca_service.pki.pkcs11_token import KeyMissing, Pkcs11Token, find_object, key_id
from ca_service.pki.signer import KeySigner, Signer
from ca_service.pki.signing import CAPrivateKey

__all__ = ["Pkcs11ECKey", "Pkcs11KeyBackend", "Pkcs11RSAKey", "Pkcs11Token", "key_id"]
log = logging.getLogger("ca_service.keys.pkcs11")


_CURVES: dict[str, tuple[str, ec.EllipticCurve]] = {
    "ec-p256": ("secp256r1", ec.SECP256R1()),
    "ec-p384": ("secp384r1", ec.SECP384R1()),
}
_CURVE_BY_SIZE: dict[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1()}
# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): RSA PKCS#1 v1.5 over a host-computed digest.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
# Failures that mean "the session or the library is gone", not "this request is wrong".


def _public_key(public_object: Any) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if public_object.key_type == KeyType.RSA:
        n = int.from_bytes(public_object[Attribute.MODULUS], "big")
        e = int.from_bytes(public_object[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    point = bytes(public_object[Attribute.EC_POINT])
    # EC_POINT is a DER OCTET STRING around the uncompressed point (0x04 || X || Y)
    if point[0] == 0x04 and point[1] < 0x80:
        point = point[2:]
    elif point[0] == 0x04 and point[1] == 0x81:
        point = point[3:]
    curve = _CURVE_BY_SIZE.get((len(point) - 1) * 4)
    if curve is None:
        raise KeyUnavailable("the HSM key is on an unsupported curve")
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def _digest(data: bytes, algorithm: Any) -> tuple[bytes, hashes.HashAlgorithm]:
    if isinstance(algorithm, utils.Prehashed):
        return bytes(data), algorithm._algorithm
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize(), algorithm


class _TokenKeyMixin:
    """What both token-backed key types share: a reference, a token, a public key."""

    _token: Pkcs11Token
    _key_ref: str

    def _sign_raw(self, mechanism: Mechanism, payload: bytes) -> bytes:
        def operation(session: Any) -> bytes:
            try:
                obj = self._token.private_object(session, self._key_ref)
            except KeyMissing:
                raise KeyUnavailable(f"CA key {self._key_ref!r} is not on HSM token {self._token.token_label!r}") from None
            return bytes(obj.sign(payload, mechanism=mechanism))

        return self._token.run(operation)

    def private_bytes(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("an HSM key never leaves the token")

    def private_numbers(self) -> NoReturn:
        raise TypeError("an HSM key never leaves the token")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._key_ref!r} on token {self._token.token_label!r}>"


class Pkcs11ECKey(_TokenKeyMixin, ec.EllipticCurvePrivateKey):
    def __init__(self, token: Pkcs11Token, key_ref: str, public_key: ec.EllipticCurvePublicKey) -> None:
        self._token, self._key_ref, self._public = token, key_ref, public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise TypeError("CA keys only sign")

    def sign(self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TypeError("only ECDSA")
        digest, _ = _digest(bytes(data), signature_algorithm.algorithm)
        raw = self._sign_raw(Mechanism.ECDSA, digest)  # CKM_ECDSA over the host's hash: r || s
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


class Pkcs11RSAKey(_TokenKeyMixin, rsa.RSAPrivateKey):
    def __init__(self, token: Pkcs11Token, key_ref: str, public_key: rsa.RSAPublicKey) -> None:
        self._token, self._key_ref, self._public = token, key_ref, public_key

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise TypeError("CA keys only sign")

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        padding_: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15):
            raise TypeError("HSM RSA keys sign with PKCS#1 v1.5 only")
        if isinstance(algorithm, utils.NoDigestInfo):
            raise TypeError("HSM RSA keys sign a DigestInfo")
        digest, hash_algorithm = _digest(bytes(data), algorithm)
        prefix = _DIGEST_INFO.get(hash_algorithm.name)
        if prefix is None:
            raise TypeError(f"unsupported hash {hash_algorithm.name}")
        return self._sign_raw(Mechanism.RSA_PKCS, prefix + digest)  # CKM_RSA_PKCS over DigestInfo


class Pkcs11KeyBackend:
    """KeyBackend over one HSM token (CA_PKCS11_MODULE, CA_PKCS11_TOKEN_LABEL, CA_PKCS11_PIN_FILE)."""

    def __init__(self, module: str, token_label: str, pin_file: Path) -> None:
        self.token = Pkcs11Token(module, token_label, pin_file)
        self._cache: dict[str, CAPrivateKey] = {}

    def _check_ref(self, key_ref: str) -> None:
        if not key_ref or len(key_ref) > 64:
            raise KeyUnavailable(f"invalid key reference {key_ref!r}")

    def exists(self, key_ref: str) -> bool:
        self._check_ref(key_ref)
        return self.token.run(lambda s: find_object(s, ObjectClass.PRIVATE_KEY, key_ref) is not None)

    def generate(self, key_ref: str, algorithm: str) -> CAPrivateKey:
        """Generate `key_ref` inside the token: sensitive, never extractable."""
        self._check_ref(key_ref)

        def operation(session: Any) -> None:
            if find_object(session, ObjectClass.PRIVATE_KEY, key_ref) is not None:
                raise KeyUnavailable(f"key {key_ref!r} already exists on the HSM token; refusing to overwrite it")
            common = {Attribute.TOKEN: True, Attribute.LABEL: key_ref, Attribute.ID: key_id(key_ref)}
            private = {
                **common,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DECRYPT: False,
                Attribute.UNWRAP: False,
                Attribute.DERIVE: False,
            }
            public = {**common, Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}
            if algorithm in _CURVES:
                params = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[algorithm][0])}, local=True
                )
                params.generate_keypair(store=True, public_template=public, private_template=private)
            elif algorithm.startswith("rsa-") and algorithm[4:] in {"2048", "3072", "4096"}:
                public[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
                session.generate_keypair(
                    KeyType.RSA, int(algorithm[4:]), store=True, public_template=public, private_template=private
                )
            else:
                raise KeyUnavailable(f"unsupported key algorithm {algorithm!r}")

        self.token.run(operation)
        log.info("generated key %s (%s) on HSM token %s", key_ref, algorithm, self.token.token_label)
        return self.load(key_ref)

    def load(self, key_ref: str) -> CAPrivateKey:
        """The token-backed key `key_ref` (signing goes to the token; nothing is extracted)."""
        cached = self._cache.get(key_ref)
        if cached is not None:
            return cached
        self._check_ref(key_ref)

        def operation(session: Any) -> CAPrivateKey:
            if find_object(session, ObjectClass.PRIVATE_KEY, key_ref) is None:
                raise KeyUnavailable(f"CA key {key_ref!r} is not on HSM token {self.token.token_label!r}")
            public = find_object(session, ObjectClass.PUBLIC_KEY, key_ref)
            if public is None:
                raise KeyUnavailable(f"CA key {key_ref!r} has no public key object on HSM token {self.token.token_label!r}")
            public_key = _public_key(public)
            if isinstance(public_key, rsa.RSAPublicKey):
                return Pkcs11RSAKey(self.token, key_ref, public_key)
            return Pkcs11ECKey(self.token, key_ref, public_key)

        key = self.token.run(operation)
        self._cache[key_ref] = key
        return key

    def signer(self, key_ref: str) -> Signer:
        return KeySigner(key_ref, self.load(key_ref))

    def check(self, key_ref: str) -> None:
        if not self.exists(key_ref):
            raise KeyUnavailable(f"CA key {key_ref!r} is not on HSM token {self.token.token_label!r}")

    def check_all(self) -> None:
        """The token answers (a search on it, not just a cached session) and the PIN is accepted."""
        self.token.run(lambda s: find_object(s, ObjectClass.PRIVATE_KEY, "readiness-probe"))

    def delete(self, key_ref: str) -> bool:
        """Destroy the private key object `key_ref` (tests: the offline root); True if it existed."""

        def operation(session: Any) -> bool:
            obj = find_object(session, ObjectClass.PRIVATE_KEY, key_ref)
            if obj is None:
                return False
            obj.destroy()
            pkcs11_token._LIBRARIES[self.token.module].handles.pop((self.token.token_label, key_ref), None)
            return True

        self._cache.pop(key_ref, None)
        return self.token.run(operation)
