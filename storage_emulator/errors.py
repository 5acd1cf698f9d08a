"""The emulator's error tree: HTTP-free, each class knows its status and its Apify error type.

The web layer turns these into each dialect's JSON envelope in one place (``web/envelopes.py``).
"""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """Base class: a problem the caller can act on, with a status and a kebab-case type."""

    status: int = 500
    error_type: str = "internal-error"

    headers: dict[str, str] | None = None
    """Extra response headers (``Retry-After`` of a retryable error)."""

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class InvalidInput(EmulatorError):
    """A request body or value is malformed or breaks a rule."""

    status = 400
    error_type = "invalid-input"


class InvalidParameter(InvalidInput):
    """A named parameter breaks a rule; the org dialect answers these with 422 and ``errors[]``."""

    def __init__(self, parameter: str, rule: str, *, location: str = "query") -> None:
        super().__init__(f"Invalid value for parameter '{parameter}': {rule}")
        self.parameter = parameter
        self.rule = rule
        self.location = location


class SchemaValidationFailed(EmulatorError):
    """Pushed items do not match the dataset schema's ``fields``."""

    status = 400
    error_type = "schema-validation-error"


class TokenNotProvided(EmulatorError):
    """The operation needs a token and none was sent."""

    status = 401
    error_type = "token-not-provided"


class InvalidToken(EmulatorError):
    """The token sent belongs to no account."""

    status = 401
    error_type = "invalid-token"


class InsufficientPermissions(EmulatorError):
    """The token is valid, but its account may not do this."""

    status = 403
    error_type = "insufficient-permissions"


class RecordNotFound(EmulatorError):
    """A resource or route does not exist."""

    status = 404
    error_type = "record-not-found"


class StorageNotFound(RecordNotFound):
    """No storage of a kind answers to this reference (id, ``~name`` or ``username~name``)."""

    label = "Storage"
    """How the message names the kind: ``<label> was not found``."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"{self.label} was not found")
        self.ref = ref


class DatasetNotFound(StorageNotFound):
    """No dataset answers to this reference (id, ``~name`` or ``username~name``)."""

    label = "Dataset"


class KeyValueStoreNotFound(StorageNotFound):
    """No key-value store answers to this reference."""

    label = "Key-value store"


class RecordNotFoundInStore(RecordNotFound):
    """The store has no record of this key."""

    def __init__(self, key: str) -> None:
        super().__init__("Record was not found")
        self.key = key


class InvalidRecordKey(EmulatorError):
    """A record key breaks the platform's rule (1 to 256 of ``a-zA-Z0-9!-_.'()``)."""

    status = 400
    error_type = "invalid-record-key"


class NameNotUnique(EmulatorError):
    """The owner already has a dataset with this name."""

    status = 409
    error_type = "name-not-unique"


class StorageCorrupted(EmulatorError):
    """A storage's files on disk cannot be read; `storage-emulator fsck --repair` rebuilds them.

    409, not 5xx: the problem is permanent until someone repairs it, and clients retry 5xx.
    """

    status = 409
    error_type = "storage-corrupted"


class DatasetCorrupted(StorageCorrupted):
    """A dataset's metadata or item files cannot be read."""

    error_type = "dataset-corrupted"


class KeyValueStoreCorrupted(StorageCorrupted):
    """A key-value store's metadata or a record's files cannot be read."""

    error_type = "key-value-store-corrupted"


class StorageBusy(EmulatorError):
    """A storage's lock was not free within the bounded wait: retry shortly.

    The one 5xx the emulator sends on purpose: the condition is temporary, and clients retry 503s.
    """

    status = 503
    error_type = "storage-busy"

    def __init__(self, message: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_seconds)}


class RequestTooLarge(EmulatorError):
    """The (decompressed) request body is over the limit."""

    status = 413
    error_type = "request-too-large"


class UnsupportedContentEncoding(EmulatorError):
    """The body's ``Content-Encoding`` is not gzip, deflate, br or identity."""

    status = 415
    error_type = "unsupported-content-encoding"


class InjectedFault(EmulatorError):
    """A fault rule (``serve --faults``, ``POST /_emulator/faults``) made this request fail on purpose."""

    TYPES = {429: "rate-limit-exceeded", 500: "internal-error", 502: "bad-gateway", 503: "service-unavailable"}

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = self.TYPES.get(status, "internal-error")


# ----- request queues -------------------------------------------------------------------------------


class RequestQueueNotFound(StorageNotFound):
    """No request queue answers to this reference (id, ``~name`` or ``username~name``)."""

    label = "Request queue"


class RequestQueueCorrupted(StorageCorrupted):
    """A request queue's metadata, request files or index cannot be read."""

    error_type = "request-queue-corrupted"


class RequestNotFound(RecordNotFound):
    """The queue holds no request with this id."""

    def __init__(self, request_id: str) -> None:
        super().__init__("Request was not found")
        self.request_id = request_id


class RequestLockConflict(EmulatorError):
    """A lock call on a request that is handled, not locked, or locked by another client.

    409: the request's state forbids it; retrying the same call does not help, so it is not a 5xx.
    """

    status = 409
    error_type = "request-handled-or-locked"


class RequestIdInvalid(InvalidInput):
    """A request's ``id`` does not match its ``uniqueKey`` (or the id in the path)."""

    error_type = "request-id-invalid"


class InvalidClientKey(InvalidInput):
    """A ``clientKey`` that is not 1 to 32 characters."""

    error_type = "invalid-client-key"


# ----- runs -----------------------------------------------------------------------------------------


class RunNotFound(RecordNotFound):
    """No run has this id (both SDKs abort ``Actor.init`` on it: "Actor run not found")."""

    def __init__(self, run_id: str) -> None:
        super().__init__("Actor run was not found")
        self.run_id = run_id


class RunCorrupted(EmulatorError):
    """A run's file cannot be read (409 like a corrupted storage: permanent, so not a retried 5xx)."""

    status = 409
    error_type = "run-corrupted"


class CannotChargeNonPayPerEventActor(EmulatorError):
    """A charge on a run whose pricing model is not ``PAY_PER_EVENT`` (the official client's test takes 400)."""

    status = 400
    error_type = "cannot-charge-non-pay-per-event-actor"


class CannotChargeApifyEvent(EmulatorError):
    """A charge of a platform event (``apify-…``): only the platform charges those."""

    status = 400
    error_type = "cannot-charge-apify-event"


class InvalidIdempotencyKey(EmulatorError):
    """An ``idempotency-key`` that is too long, or already used for another charge."""

    status = 400
    error_type = "invalid-idempotency-key"
