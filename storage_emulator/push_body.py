"""Decode and parse the body of ``POST /v2/datasets/{id}/items``.

Two steps, both HTTP-free: `read_body` turns the raw request stream into the decompressed bytes
(enforcing the size limit without ever inflating past it), and `parse_items` turns those bytes into
the list of items to store, all or nothing.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

import brotli

from storage_emulator.errors import InvalidInput, RequestTooLarge, UnsupportedContentEncoding

MAX_PAYLOAD_BYTES = 9_437_184
"""The Apify API's limit on a push body, counted after decompression (9 MiB)."""

MAX_RAW_BODY_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024
"""The server's cap on any request body as sent, before decompression (Flask's ``MAX_CONTENT_LENGTH``)."""
# Why the decoded limit plus 64 KiB: an uncompressed body is the same size raw and decoded, so the limit
# itself would do. A compressed one can be larger than what it decodes to, but only by its codec's
# framing: deflate's stored blocks add 5 bytes per 65,535 (about 740 bytes at 9 MiB), gzip 18 more per
# member, brotli a few bytes per uncompressed meta-block; stacked codings add theirs each. 64 KiB covers
# that many times over, so every body whose content is within the limit gets through and the decoded
# check answers for it; only bodies padded on purpose (empty gzip members, say) are refused raw.
# Past the cap nothing is read: a Content-Length over it is refused before the body, and a chunked body
# is cut off once past it, so an oversized body costs at most the cap in reading.

_READ_CHUNK = 64 * 1024
# Upper bound on one decoder output step: memory in flight stays within the limit plus this.
_OUTPUT_CHUNK = 64 * 1024


def read_body(stream: IO[bytes], content_encoding: str | None, *, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """Read a request body and undo its ``Content-Encoding``, refusing more than ``limit`` decoded bytes."""
    encodings = _parse_content_encoding(content_encoding)
    chunks = decoded_chunks(stream, content_encoding)
    if not encodings:
        return _collect_plain(chunks, limit)
    return _collect_decoded(chunks, limit)


def parse_items(body: bytes) -> list[dict[str, Any]]:
    """Parse a push body into its items: one JSON object, or an array of objects kept in order."""
    value = _load_json(_decode_utf8(body), what="The request body")
    if isinstance(value, str):
        # A JSON string literal whose content is itself the JSON (an item serialized twice) is accepted;
        # one level only, so a string inside the string is still an error.
        value = _load_json(value.removeprefix("\ufeff"), what="The JSON string sent as the request body")
    return _as_items(value)


# --- Content-Encoding --------------------------------------------------------------------------------


def _parse_content_encoding(header: str | None) -> list[str]:
    """Return the header's codings in applied order, without ``identity``; raise on an unknown one."""
    encodings = [token.strip().lower() for token in (header or "").split(",")]
    encodings = [encoding for encoding in encodings if encoding and encoding != "identity"]
    for encoding in encodings:
        if encoding not in _DECODERS:
            supported = ", ".join(sorted([*_DECODERS, "identity"]))
            raise UnsupportedContentEncoding(
                f'Content-Encoding "{encoding}" is not supported; supported encodings are: {supported}'
            )
    return encodings


def _read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Yield the stream's bytes in bounded chunks until end of file."""
    while chunk := stream.read(_READ_CHUNK):
        yield chunk


def _inflate(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """Undo gzip or deflate (zlib-wrapped or raw), yielding output in bounded steps."""
    decompressor: Any = None
    ended = False
    for data in _coalesced(chunks, head=2):
        while data:
            if ended:
                raise _corrupt(encoding, "unexpected data after the end of the compressed stream")
            if decompressor is None:
                decompressor = zlib.decompressobj(_zlib_wbits(encoding, data))
            try:
                yield from _inflate_input(decompressor, data)
            except zlib.error as exc:
                raise _corrupt(encoding, str(exc)) from exc
            if not decompressor.eof:
                break
            data = decompressor.unused_data
            decompressor = None
            # After a gzip member another one may follow (RFC 1952 2.2); a deflate stream stands alone.
            ended = encoding == "deflate"
    if decompressor is not None:
        raise _corrupt(encoding, "the compressed stream is truncated")


def _inflate_input(decompressor: Any, data: bytes) -> Iterator[bytes]:
    """Feed ``data`` to a zlib decompressor, yielding bounded output until it is used or the stream ends."""
    while True:
        # max_length bounds each step; the input not yet used waits in unconsumed_tail.
        output = decompressor.decompress(data, _OUTPUT_CHUNK)
        if output:
            yield output
        data = decompressor.unconsumed_tail
        # A full step may leave output pending inside zlib even once all input is used: ask again.
        if decompressor.eof or (not data and len(output) < _OUTPUT_CHUNK):
            return


def _coalesced(chunks: Iterator[bytes], *, head: int) -> Iterator[bytes]:
    """Yield the non-empty chunks, the first holding at least ``head`` bytes unless the input is shorter."""
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= head:
            break
    if first:
        yield first
    for chunk in chunks:
        if chunk:
            yield chunk


def _zlib_wbits(encoding: str, head: bytes) -> int:
    """Choose zlib's ``wbits`` for a gzip member, a zlib stream or a raw deflate stream."""
    if encoding != "deflate":
        return 16 + zlib.MAX_WBITS
    # "deflate" means zlib-wrapped (RFC 9110 8.4.1.2), but some clients send raw deflate: accept both.
    # A zlib header (RFC 1950) has method 8, a window of at most 2**15 and a pair divisible by 31.
    if len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] << 8 | head[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS


def _unbrotli(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """Undo brotli, yielding output in bounded steps."""
    decompressor = brotli.Decompressor()
    received = False
    try:
        for data in chunks:
            if not data:
                continue
            received = True
            if decompressor.is_finished():
                raise _corrupt(encoding, "unexpected data after the end of the compressed stream")
            output = decompressor.process(data, output_buffer_limit=_OUTPUT_CHUNK)
            yield output
            # A step that filled the buffer may have left output inside the decoder, and input it
            # could not take yet (can_accept_more_data() is False): both are drained with empty input.
            while len(output) >= _OUTPUT_CHUNK or not decompressor.can_accept_more_data():
                output = decompressor.process(b"", output_buffer_limit=_OUTPUT_CHUNK)
                yield output
    except brotli.error as exc:
        raise _corrupt(encoding, str(exc) or "invalid data") from exc
    if received and not decompressor.is_finished():
        raise _corrupt(encoding, "the compressed stream is truncated")


_DECODERS: dict[str, Callable[[Iterator[bytes], str], Iterator[bytes]]] = {
    "gzip": _inflate,
    "x-gzip": _inflate,
    "deflate": _inflate,
    "br": _unbrotli,
}


def _corrupt(encoding: str, detail: str) -> InvalidInput:
    """Build the error for a body that does not decode as its declared encoding."""
    return InvalidInput(f'The request body is not valid "{encoding}" data (Content-Encoding): {detail}')


# --- size limit --------------------------------------------------------------------------------------


def _collect_plain(chunks: Iterator[bytes], limit: int) -> bytes:
    """Join an uncompressed body, or raise with its exact length if it is over the limit."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            # Counting the rest (without keeping it) gives the caller the real length. The server's raw
            # cap (MAX_RAW_BODY_BYTES) bounds this count to 64 KiB past the limit.
            length = len(body) + sum(len(rest) for rest in chunks)
            raise _too_large(limit, length, exact=True)
    return bytes(body)


def _collect_decoded(chunks: Iterator[bytes], limit: int) -> bytes:
    """Join decompressed output, stopping at the first step past the limit."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            # Inflating on to learn the real size is what a decompression bomb wants: report a lower bound.
            raise _too_large(limit, len(body), exact=False)
    return bytes(body)


def raw_body_too_large(limit: int, length: int | None) -> RequestTooLarge:
    """Build the 413 error for a raw body over ``limit``: ``length`` from Content-Length, None if chunked."""
    if length is None:
        return RequestTooLarge(
            f"Payload too large: the limit is {limit} bytes as sent, and the request's body (chunked) "
            "went past it; the rest was not read",
            data={"limit": limit},
        )
    return RequestTooLarge(
        f"Payload too large: the limit is {limit} bytes as sent, the request has {length} bytes (Content-Length)",
        data={"limit": limit, "length": length},
    )


def _too_large(limit: int, length: int, *, exact: bool) -> RequestTooLarge:
    """Build the 413 error for a body of ``length`` bytes (a lower bound unless ``exact``)."""
    size = f"{length} bytes" if exact else f"at least {length} bytes once decompressed"
    return RequestTooLarge(
        f"Payload too large: the limit is {limit} bytes, the request has {size}",
        data={"limit": limit, "length": length},
    )


# --- JSON --------------------------------------------------------------------------------------------


def _decode_utf8(body: bytes) -> str:
    """Decode the body as UTF-8, dropping a byte-order mark."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"The request body is not valid UTF-8 (invalid byte at offset {exc.start})") from exc


def _load_json(text: str, *, what: str) -> Any:
    """Parse strict JSON, naming ``what`` was being parsed in the error."""
    if not text.strip():
        raise InvalidInput(f"{what} is empty: send a JSON object or an array of objects")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise InvalidInput(f"{what} is nested too deeply to parse") from exc


def _reject_constant(name: str) -> Any:
    """Refuse ``NaN`` and ``Infinity``, which Python accepts but JSON (and every client) does not."""
    raise InvalidInput(f"The request body is not valid JSON: {name} is not a JSON value")


def _as_items(value: Any) -> list[dict[str, Any]]:
    """Check that a parsed body is an object or an array of objects, and return it as a list."""
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise InvalidInput(f"The request body is a JSON {_json_type(value)}: send a JSON object or an array of objects")
    for index, element in enumerate(value):
        if not isinstance(element, dict):
            raise InvalidInput(
                f"Item at index {index} of the array is a JSON {_json_type(element)}, not an object: "
                "the request body must be a JSON object or an array of objects"
            )
    return value


def _json_type(value: Any) -> str:
    """Name the JSON type of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def decoded_chunks(stream: IO[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """Return a body's bytes with its ``Content-Encoding`` undone, as bounded chunks read as they are pulled.

    An unknown encoding is refused now, before anything is read; corrupt data fails while reading. The
    consumer counts the size (a record store writes the chunks to a file), so nothing is held whole.
    """
    encodings = _parse_content_encoding(content_encoding)
    chunks: Iterator[bytes] = _read_chunks(stream)
    # Encodings are listed in the order they were applied, so they are undone last first (RFC 9110 8.4).
    for encoding in reversed(encodings):
        chunks = _DECODERS[encoding](chunks, encoding)
    return chunks
