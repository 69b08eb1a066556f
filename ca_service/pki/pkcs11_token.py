"""One PKCS#11 token per process, for the `pkcs11` key backend (ca_service.pki.keys_pkcs11):
library initialisation, login, the process lock, fork and reconnection (see that module's
docstring for why each rule exists)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11e

from ca_service.pki.keys import KeyUnavailable

log = logging.getLogger("ca_service.keys.pkcs11")
T = TypeVar("T")

# Failures that mean "the session or the library is gone", not "this request is wrong".
_RECONNECT = (
    p11e.SessionHandleInvalid,
    p11e.SessionClosed,
    p11e.DeviceRemoved,
    p11e.DeviceError,
    p11e.TokenNotPresent,
    p11e.TokenNotRecognised,
    p11e.UserNotLoggedIn,
    p11e.GeneralError,
    p11e.ObjectHandleInvalid,
    p11e.KeyHandleInvalid,
    p11e.FunctionFailed,
    p11e.NoSuchToken,
    p11e.NoSuchKey,
)
_PIN_REFUSED = (p11e.PinIncorrect, p11e.PinLocked, p11e.PinInvalid, p11e.PinLenRange, p11e.PinExpired)


def key_id(key_ref: str) -> bytes:
    """CKA_ID of a CA key: the same on its private and public object."""
    return hashlib.sha256(key_ref.encode("utf-8")).digest()[:16]


@dataclass
class _Library:
    """One loaded PKCS#11 module in this process; `pid` is the process that initialised it."""

    path: str
    lib: Any = None
    pid: int = 0
    sessions: dict[str, Any] = field(default_factory=dict)  # token label -> logged-in session
    handles: dict[tuple[str, str], Any] = field(default_factory=dict)  # (token, key_ref) -> private key object


_LOCK = threading.RLock()  # every call into any token of this process
_LIBRARIES: dict[str, _Library] = {}
_REFUSED_PINS: set[tuple[str, str, bytes]] = set()  # (module, token, sha256(pin)): never tried twice


def _fresh(library: _Library) -> None:
    """Forget sessions and key handles; (re)initialise the library in this process."""
    library.sessions.clear()
    library.handles.clear()
    if library.lib is None:
        library.lib = pkcs11.lib(library.path)
    else:
        try:
            library.lib.reinitialize()
        except p11e.PKCS11Error:
            library.lib.initialize()
    library.pid = os.getpid()


def _library(path: str) -> _Library:
    library = _LIBRARIES.get(path)
    if library is None:
        library = _LIBRARIES[path] = _Library(path)
    if library.lib is None or library.pid != os.getpid():  # first use, or a forked child
        try:
            _fresh(library)
        except (p11e.PKCS11Error, OSError) as exc:
            raise KeyUnavailable(
                f"the PKCS#11 module {path} cannot be loaded or initialised (HSM unreachable?): {type(exc).__name__} {exc}"
            ) from None
    return library


class Pkcs11Token:
    """A token of a PKCS#11 module, logged in with the PIN from a file. Thread- and fork-safe."""

    RETRY_PAUSES = (0.0, 0.2, 0.5)  # seconds before the 2nd, 3rd and 4th attempt

    def __init__(self, module: str, token_label: str, pin_file: Path) -> None:
        self.module = module
        self.token_label = token_label
        self.pin_file = pin_file

    def _pin(self) -> str:
        try:
            pin = self.pin_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KeyUnavailable(f"CA_PKCS11_PIN_FILE={self.pin_file}: {exc.strerror}") from None
        if not pin:
            raise KeyUnavailable(f"CA_PKCS11_PIN_FILE={self.pin_file} is empty")
        return pin

    def _session(self, library: _Library) -> Any:
        session = library.sessions.get(self.token_label)
        if session is not None:
            return session
        pin = self._pin()
        refused = (self.module, self.token_label, hashlib.sha256(pin.encode()).digest())
        if refused in _REFUSED_PINS:
            raise KeyUnavailable(
                f"the PIN in {self.pin_file} was refused by token {self.token_label!r}; not retried (lockout): fix the PIN file"
            )
        try:
            token = library.lib.get_token(token_label=self.token_label)
        except p11e.NoSuchToken:
            _fresh(library)  # a token created after the library was initialised
            token = library.lib.get_token(token_label=self.token_label)
        try:
            session = token.open(rw=True, user_pin=pin)
        except p11e.UserAlreadyLoggedIn:  # another session of this process is logged in
            session = token.open(rw=True)
        except _PIN_REFUSED as exc:
            _REFUSED_PINS.add(refused)
            raise KeyUnavailable(
                f"token {self.token_label!r} refused the PIN in {self.pin_file} ({type(exc).__name__})"
            ) from None
        library.sessions[self.token_label] = session
        return session

    def run(self, operation: Callable[[Any], T]) -> T:
        """`operation(session)` under the process lock; after a lost session or library,
        re-initialise, log in and retry (after RETRY_PAUSES); KeyUnavailable if the token stays
        unreachable. The pauses matter with SoftHSM: while another process writes the token (a
        responder key generated at first use), a reader can briefly see no token at all."""
        with _LOCK:
            library = _library(self.module)
            last = len(self.RETRY_PAUSES) + 1
            for attempt in range(1, last + 1):
                if attempt > 1:
                    time.sleep(self.RETRY_PAUSES[attempt - 2])
                try:
                    return operation(self._session(library))
                except KeyUnavailable:
                    raise
                except _PIN_REFUSED as exc:
                    raise KeyUnavailable(f"token {self.token_label!r} refused the PIN ({type(exc).__name__})") from None
                except (p11e.PKCS11Error, OSError) as exc:
                    reconnect = isinstance(exc, _RECONNECT) or type(exc) is p11e.PKCS11Error
                    if not reconnect:
                        raise KeyUnavailable(f"the HSM refused the operation: {type(exc).__name__} {exc}") from None
                    log.warning(
                        "HSM call failed (%s, attempt %s): re-initialising the PKCS#11 library", type(exc).__name__, attempt
                    )
                    try:
                        _fresh(library)
                    except (p11e.PKCS11Error, OSError) as again:
                        exc = again
                    if attempt == last:
                        raise KeyUnavailable(
                            f"the HSM token {self.token_label!r} is unavailable ({type(exc).__name__} {exc})".rstrip()
                        ) from None
            raise AssertionError("unreachable")

    def private_object(self, session: Any, key_ref: str) -> Any:
        library = _LIBRARIES[self.module]
        cached = library.handles.get((self.token_label, key_ref))
        if cached is not None:
            return cached
        found = find_object(session, ObjectClass.PRIVATE_KEY, key_ref)
        if found is None:
            raise KeyMissing(key_ref)
        library.handles[(self.token_label, key_ref)] = found
        return found


class KeyMissing(Exception):
    """No such key on the token (not an outage: no retry)."""


def find_object(session: Any, object_class: ObjectClass, key_ref: str) -> Any:
    for key_type in (KeyType.EC, KeyType.RSA):
        objects = list(
            session.get_objects(
                {
                    Attribute.CLASS: object_class,
                    Attribute.KEY_TYPE: key_type,
                    Attribute.LABEL: key_ref,
                    Attribute.ID: key_id(key_ref),
                }
            )
        )
        if len(objects) > 1:
            raise KeyUnavailable(f"the HSM token holds {len(objects)} keys labelled {key_ref!r}: remove the duplicates")
        if objects:
            return objects[0]
    return None
