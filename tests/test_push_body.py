"""Push bodies: Content-Encoding decoding, the decompressed size limit, and the item shapes accepted."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
import zlib
from collections.abc import Callable

import brotli
import pytest

from storage_emulator.errors import InvalidInput, RequestTooLarge, UnsupportedContentEncoding
from storage_emulator.push_body import MAX_PAYLOAD_BYTES, parse_items, read_body

BOMB_SIZE = 1 << 30  # 1 GiB of zeros once inflated


def gzip_bytes(data: bytes) -> bytes:
    """Compress with gzip, as the Python client does."""
    return gzip.compress(data)


def zlib_bytes(data: bytes) -> bytes:
    """Compress as zlib-wrapped deflate (what ``deflate`` officially means)."""
    return zlib.compress(data)


def raw_deflate_bytes(data: bytes) -> bytes:
    """Compress as raw deflate, without the zlib wrapper."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def brotli_bytes(data: bytes) -> bytes:
    """Compress with brotli, as the JS client does."""
    return brotli.compress(data)


ENCODERS = {
    "gzip": gzip_bytes,
    "x-gzip": gzip_bytes,
    "deflate": zlib_bytes,
    "br": brotli_bytes,
}


class TrickleStream(io.RawIOBase):
    """A readable stream that returns at most ``step`` bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step
        self._position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._position : self._position + size])
        self._position += len(chunk)
        return chunk


def sample_payload(count: int = 2000) -> bytes:
    """Return a JSON array of varied items, large enough to span several read chunks."""
    items = [{"id": index, "name": f"item-{index}", "tags": ["a", "b", str(index % 7)]} for index in range(count)]
    return json.dumps(items).encode()


def zeros_bomb(process: Callable[[bytes], bytes], finish: Callable[[], bytes]) -> bytes:
    """Compress BOMB_SIZE zeros in a streaming loop, never holding them in memory at once."""
    block = bytes(1 << 20)
    return b"".join([process(block) for _ in range(BOMB_SIZE // len(block))] + [finish()])


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """Return ~1 MB of gzip that inflates to 1 GiB of zeros."""
    # Z_RLE finds the runs of zeros about twice as fast as the default strategy, with the same ratio.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9, zlib.Z_RLE)
    return zeros_bomb(compressor.compress, compressor.flush)


@pytest.fixture(scope="module")
def brotli_bomb() -> bytes:
    """Return a few KB of brotli that inflates to 1 GiB of zeros."""
    compressor = brotli.Compressor(quality=5)
    return zeros_bomb(compressor.process, compressor.finish)


# --- read_body: encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "identity", " Identity "])
def test_identity_bodies_are_returned_as_sent(header: str | None) -> None:
    payload = sample_payload()
    assert read_body(io.BytesIO(payload), header) == payload


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_each_encoding_round_trips(encoding: str) -> None:
    payload = sample_payload()
    body = ENCODERS[encoding](payload)
    assert len(body) < len(payload)
    assert read_body(io.BytesIO(body), encoding) == payload


@pytest.mark.parametrize("encoding", ["GZIP", "Br", "DEFLATE"])
def test_encoding_names_are_case_insensitive(encoding: str) -> None:
    payload = sample_payload(50)
    assert read_body(io.BytesIO(ENCODERS[encoding.lower()](payload)), encoding) == payload


def test_raw_deflate_is_accepted_as_deflate() -> None:
    payload = sample_payload()
    assert read_body(io.BytesIO(raw_deflate_bytes(payload)), "deflate") == payload


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("gzip", gzip_bytes), ("deflate", zlib_bytes), ("deflate", raw_deflate_bytes), ("br", brotli_bytes)],
    ids=["gzip", "zlib", "raw-deflate", "br"],
)
def test_compressed_bodies_arriving_a_byte_at_a_time_decode(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    payload = sample_payload(30)
    assert read_body(TrickleStream(encode(payload), 1), encoding) == payload


def test_listed_encodings_are_undone_last_first() -> None:
    payload = sample_payload()
    body = brotli_bytes(zlib_bytes(gzip_bytes(payload)))  # applied: gzip, then deflate, then br
    assert read_body(io.BytesIO(body), "gzip, deflate,br") == payload


def test_concatenated_gzip_members_decode_as_one_body() -> None:
    assert read_body(io.BytesIO(gzip_bytes(b'[{"a":') + gzip_bytes(b"1}]")), "gzip") == b'[{"a":1}]'


@pytest.mark.parametrize("header", ["compress", "zstd", "gzip, snappy"])
def test_unsupported_encoding_is_refused_before_reading(header: str) -> None:
    stream = io.BytesIO(b"{}")
    with pytest.raises(UnsupportedContentEncoding) as caught:
        read_body(stream, header)
    bad = header.split(",")[-1].strip()
    assert f'"{bad}"' in caught.value.message
    for supported in ("gzip", "deflate", "br", "identity"):
        assert supported in caught.value.message
    assert caught.value.status == 415
    assert stream.tell() == 0


# --- read_body: the size limit -----------------------------------------------------------------------


def test_plain_body_of_exactly_the_limit_is_accepted() -> None:
    payload = b"x" * MAX_PAYLOAD_BYTES
    assert read_body(io.BytesIO(payload), None) == payload


def test_plain_body_one_byte_over_the_limit_is_refused_with_its_length() -> None:
    with pytest.raises(RequestTooLarge) as caught:
        read_body(io.BytesIO(b"x" * (MAX_PAYLOAD_BYTES + 1)), None)
    assert caught.value.status == 413
    assert caught.value.data == {"limit": MAX_PAYLOAD_BYTES, "length": MAX_PAYLOAD_BYTES + 1}
    assert caught.value.message == (
        f"Payload too large: the limit is {MAX_PAYLOAD_BYTES} bytes, the request has {MAX_PAYLOAD_BYTES + 1} bytes"
    )


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_compressed_body_inflating_to_exactly_the_limit_is_accepted(encoding: str) -> None:
    payload = b"y" * MAX_PAYLOAD_BYTES
    assert read_body(io.BytesIO(ENCODERS[encoding](payload)), encoding) == payload


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_compressed_body_inflating_one_byte_over_the_limit_is_refused(encoding: str) -> None:
    body = ENCODERS[encoding](b"y" * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(RequestTooLarge) as caught:
        read_body(io.BytesIO(body), encoding)
    data = caught.value.data
    assert data is not None and data["limit"] == MAX_PAYLOAD_BYTES
    assert data["length"] == MAX_PAYLOAD_BYTES + 1  # the whole body fits in the last decoding step
    assert f"the limit is {MAX_PAYLOAD_BYTES} bytes" in caught.value.message
    assert "at least" in caught.value.message  # for compressed bodies only a lower bound is known


@pytest.mark.parametrize("limit", [1, 100, 65_537])
def test_a_smaller_limit_is_enforced_at_its_boundary(limit: int) -> None:
    assert read_body(io.BytesIO(gzip_bytes(b"z" * limit)), "gzip", limit=limit) == b"z" * limit
    with pytest.raises(RequestTooLarge):
        read_body(io.BytesIO(gzip_bytes(b"z" * (limit + 1))), "gzip", limit=limit)
    with pytest.raises(RequestTooLarge):
        read_body(io.BytesIO(b"z" * (limit + 1)), None, limit=limit)


@pytest.mark.parametrize(("encoding", "bomb_fixture"), [("gzip", "gzip_bomb"), ("br", "brotli_bomb")])
def test_decompression_bomb_is_refused_quickly_in_little_memory(
    encoding: str, bomb_fixture: str, request: pytest.FixtureRequest
) -> None:
    bomb: bytes = request.getfixturevalue(bomb_fixture)
    assert len(bomb) < 2_000_000
    tracemalloc.start()
    try:
        with pytest.raises(RequestTooLarge) as caught:
            read_body(io.BytesIO(bomb), encoding)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000, f"peak {peak} bytes: the bomb was inflated too far"
    data = caught.value.data
    assert data is not None
    # It stopped just past the limit instead of inflating all 1 GiB.
    assert MAX_PAYLOAD_BYTES < data["length"] < MAX_PAYLOAD_BYTES + 1_000_000
    assert f"at least {data['length']} bytes" in caught.value.message


# --- read_body: corrupt data -------------------------------------------------------------------------


def flip_middle_byte(data: bytes) -> bytes:
    """Return ``data`` with one byte in the middle inverted."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"this is not gzip at all"),
        ("gzip", flip_middle_byte(gzip_bytes(sample_payload()))),
        ("gzip", gzip_bytes(sample_payload())[:-10]),
        ("gzip", gzip_bytes(b"{}") + b"trailing junk"),
        ("x-gzip", gzip_bytes(sample_payload())[:100]),
        ("deflate", flip_middle_byte(zlib_bytes(sample_payload()))),
        ("deflate", zlib_bytes(b"{}") + b"trailing junk"),
        ("br", flip_middle_byte(brotli_bytes(sample_payload()))),
        ("br", brotli_bytes(sample_payload())[:-5]),
        ("br", brotli_bytes(b"{}") + b"trailing junk"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_corrupt_compressed_body_is_invalid_input_naming_the_encoding(encoding: str, body: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_body(io.BytesIO(body), encoding)
    assert f'"{encoding}"' in caught.value.message
    assert caught.value.status == 400


# --- parse_items -------------------------------------------------------------------------------------


def test_one_object_is_one_item() -> None:
    assert parse_items(b'{"a": 1, "b": {"c": [1, 2]}}') == [{"a": 1, "b": {"c": [1, 2]}}]


def test_array_of_objects_keeps_its_order() -> None:
    assert parse_items(b'[{"n": 3}, {"n": 1}, {}, {"n": 2}]') == [{"n": 3}, {"n": 1}, {}, {"n": 2}]


def test_empty_array_is_no_items() -> None:
    assert parse_items(b" [ ] ") == []


def test_byte_order_mark_is_tolerated() -> None:
    assert parse_items(b'\xef\xbb\xbf{"a": "\xc3\xa9"}') == [{"a": "\u00e9"}]


@pytest.mark.parametrize("inner", ['{"a": 1}', '[{"a": 1}, {"b": 2}]'])
def test_json_string_holding_json_is_unwrapped(inner: str) -> None:
    assert parse_items(json.dumps(inner).encode()) == parse_items(inner.encode())


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "empty"),
        (b"  \n ", "empty"),
        (b'{"a": 1', "not valid JSON"),
        (b"[{'a': 1}]", "not valid JSON"),
        (b'{"a": 1} {"b": 2}', "not valid JSON"),
        (b"42", "a JSON number"),
        (b"null", "a JSON null"),
        (b"true", "a JSON boolean"),
        (json.dumps("plain text").encode(), "JSON string sent as the request body is not valid JSON"),
        (json.dumps(json.dumps(json.dumps({"a": 1}))).encode(), "a JSON string"),
        (b'[{"a": 1}, 2, "x"]', "index 1 of the array is a JSON number"),
        (b'[{"a": 1}, {"b": 2}, null]', "index 2 of the array is a JSON null"),
        (b'[{"a": 1}, [{"b": 2}]]', "index 1 of the array is a JSON array"),
        (b'[[{"a": 1}]]', "index 0 of the array is a JSON array"),
        (b'[{"a": NaN}]', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_bodies_are_invalid_input_saying_what_is_wrong(body: bytes, expected: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_items(body)
    assert expected in caught.value.message
    assert caught.value.status == 400


def test_read_then_parse_a_gzipped_push() -> None:
    items = [{"url": f"https://example.com/{index}", "ok": index % 2 == 0} for index in range(500)]
    body = gzip_bytes(json.dumps(items).encode())
    assert parse_items(read_body(io.BytesIO(body), "gzip")) == items
