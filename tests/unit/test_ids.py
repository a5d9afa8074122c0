from __future__ import annotations

import base64
import hashlib
import importlib
import struct

import pytest

from wayline.engine.ids import hash_step_id, next_ulid, seeded_event_id, ulid, ulid_time_ms

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def reference_ulid(ms: int, entropy: bytes) -> str:
    """An independent encoder: 130-bit string (2 zero bits + 128) cut into 5-bit digits."""
    bits = "00" + format(ms, "048b") + "".join(format(byte, "08b") for byte in entropy)
    return "".join(CROCKFORD[int(bits[i : i + 5], 2)] for i in range(0, 130, 5))


@pytest.mark.parametrize(
    ("ms", "entropy", "expected"),
    [
        (0, bytes(10), "00000000000000000000000000"),
        (2**48 - 1, b"\xff" * 10, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
        (1, bytes(10), "00000000010000000000000000"),
        (0, bytes(9) + b"\x01", "00000000000000000000000001"),
        (32, bytes(10), "00000000100000000000000000"),
        (1_469_922_850_259, bytes(10), "01ARZ3NDEK0000000000000000"),
        (0, b"\xff" * 10, "0000000000ZZZZZZZZZZZZZZZZ"),
    ],
)
def test_ulid_known_vectors(ms: int, entropy: bytes, expected: str) -> None:
    assert ulid(ms, entropy) == expected
    assert reference_ulid(ms, entropy) == expected


@pytest.mark.parametrize(
    ("ms", "entropy"),
    [
        (1_767_225_600_000, bytes(range(10))),
        (1_743_130_137_367, b"\x7a\x28\xb6\x60\xa5\xd1\x55\x32\x4f\xb8"),
        (123, b"\x80" + bytes(9)),
        (2**47, b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23"),
    ],
)
def test_ulid_matches_reference_and_round_trips(ms: int, entropy: bytes) -> None:
    value = ulid(ms, entropy)
    assert value == reference_ulid(ms, entropy)
    assert len(value) == 26
    assert set(value) <= set(CROCKFORD)
    assert ulid_time_ms(value) == ms
    assert ulid_time_ms(value.lower()) == ms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", 1_469_922_850_259),  # the ULID spec's example
        ("00000000000000000000000000", 0),
        ("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", 2**48 - 1),
    ],
)
def test_ulid_time_ms_vectors(text: str, expected: int) -> None:
    assert ulid_time_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",  # 25 chars
        "01ARZ3NDEKTSV4RRFFQ69G5FAVX",  # 27 chars
        "01ARZ3NDEKTSV4RRFFQ69G5FAU",  # U is not Crockford
        "01ARZ3NDEKTSV4RRFFQ69G5FAI",
        "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",  # overflows 128 bits
        "01ARZ3NDEK-SV4RRFFQ69G5FAV",
    ],
)
def test_ulid_time_ms_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        ulid_time_ms(text)


@pytest.mark.parametrize(
    ("ms", "entropy", "fragment"),
    [
        (0, bytes(9), "10 bytes"),
        (0, bytes(11), "10 bytes"),
        (0, b"", "10 bytes"),
        (-1, bytes(10), "2^48"),
        (2**48, bytes(10), "2^48"),
    ],
)
def test_ulid_rejects(ms: int, entropy: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=r"2\^48|10 bytes") as info:
        ulid(ms, entropy)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ((1000, b"\xff" * 10), (1001, bytes(10))),
        ((1_767_225_600_000, bytes(10)), (1_767_225_600_000, bytes(9) + b"\x01")),
        ((31, b"\xff" * 10), (32, bytes(10))),
        ((2**40, bytes(10)), (2**41, bytes(10))),
    ],
)
def test_ulids_sort_by_time_then_entropy(
    earlier: tuple[int, bytes], later: tuple[int, bytes]
) -> None:
    assert ulid(*earlier) < ulid(*later)


def seed(ms: int, entropy: bytes) -> str:
    return f"{ms},{base64.b64encode(entropy).decode()}"


def expected_seeded(ms: int, entropy: bytes, index: int) -> str:
    (tail,) = struct.unpack(">I", entropy[6:10])
    return reference_ulid(ms, entropy[:6] + struct.pack(">I", (tail + index) & 0xFFFFFFFF))


@pytest.mark.parametrize(
    ("ms", "entropy", "index"),
    [
        (1_743_130_137_367, base64.b64decode("eii2YKXRVTJPuA=="), 1),  # Inngest's doc example
        (1_743_130_137_367, base64.b64decode("eii2YKXRVTJPuA=="), 2),
        (1_743_130_137_367, base64.b64decode("eii2YKXRVTJPuA=="), 0),
        (1_767_225_600_000, bytes(10), 1),
        (1_767_225_600_000, bytes(6) + b"\xff\xff\xff\xff", 1),  # wraps, no carry into byte 5
        (1_767_225_600_000, bytes(6) + b"\xff\xff\xff\xfe", 3),
        (1_767_225_600_000, bytes(10), -1),  # Go's uint32(index) wraps negatives too
        (1, b"\x01" * 10, 2**32 + 5),
    ],
)
def test_seeded_event_id_matches_go(ms: int, entropy: bytes, index: int) -> None:
    value = seeded_event_id(seed(ms, entropy), index)
    assert value == expected_seeded(ms, entropy, index)
    assert value is not None
    assert ulid_time_ms(value) == ms


def test_seeded_event_id_vector() -> None:
    assert seeded_event_id("1743130137367,eii2YKXRVTJPuA==", 1) == "01JQDAE4RQF8MBCR55T5AK4KXS"


def test_seeded_wrap_keeps_the_head_bytes() -> None:
    value = seeded_event_id(seed(5, bytes(5) + b"\x07" + b"\xff" * 4), 1)
    assert value == reference_ulid(5, bytes(5) + b"\x07" + bytes(4))


def test_seeded_event_ids_are_deterministic_and_distinct_per_index() -> None:
    header = seed(1_767_225_600_000, bytes(range(10)))
    ids = [seeded_event_id(header, index) or "" for index in range(1, 6)]
    assert ids == [seeded_event_id(header, index) for index in range(1, 6)]
    assert all(ids)
    assert len(set(ids)) == 5
    assert ids == sorted(ids)  # same ms, ascending entropy


@pytest.mark.parametrize(
    "header",
    [
        "",
        "1743130137367",
        "1743130137367,",
        ",eii2YKXRVTJPuA==",
        "1743130137367,eii2YKXRVTJPuA==,x",
        "abc,eii2YKXRVTJPuA==",
        "1.5,eii2YKXRVTJPuA==",
        " 1743130137367,eii2YKXRVTJPuA==",  # Go's ParseInt rejects spaces
        "1_743_130_137_367,eii2YKXRVTJPuA==",  # and underscores
        "0,eii2YKXRVTJPuA==",  # millis must be > 0
        "-5,eii2YKXRVTJPuA==",
        f"{2**48},eii2YKXRVTJPuA==",  # beyond the ULID time range
        "1743130137367,eii2YKXRVTJPuA",  # StdEncoding requires padding
        "1743130137367,eii2YKXR!TJPuA==",
        "1743130137367,AAAAAAAAAAAA",  # 9 bytes
        "1743130137367,AAAAAAAAAAAAAAAA",  # 12 bytes
    ],
)
def test_seeded_event_id_malformed(header: str) -> None:
    assert seeded_event_id(header, 1) is None


def test_seeded_event_id_accepts_plus_sign_like_go() -> None:
    assert seeded_event_id("+1743130137367,eii2YKXRVTJPuA==", 1) == seeded_event_id(
        "1743130137367,eii2YKXRVTJPuA==", 1
    )


def test_seeded_event_id_reads_python_sdk_seed() -> None:
    client = importlib.import_module("inngest._internal.client_lib.client")
    header = client._seed()
    millis_text, entropy_text = header.split(",")
    entropy = base64.b64decode(entropy_text)
    for index in (1, 2, 3):
        value = seeded_event_id(header, index)
        assert value == expected_seeded(int(millis_text), entropy, index)
        assert value is not None
        assert ulid_time_ms(value) == int(millis_text)


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("my-step-id", "e7d8a2f140845095749d60246ff1110c9d01d76a"),
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("step:1", hashlib.sha1(b"step:1", usedforsecurity=False).hexdigest()),
        ("ünïcode", hashlib.sha1("ünïcode".encode(), usedforsecurity=False).hexdigest()),
    ],
)
def test_hash_step_id(user_id: str, expected: str) -> None:
    assert hash_step_id(user_id) == expected


@pytest.mark.parametrize("user_id", ["my-step-id", "fetch-user", "a:b:c", "ünïcode"])
def test_hash_step_id_matches_python_sdk(user_id: str) -> None:
    transforms = importlib.import_module("inngest._internal.transforms")
    assert hash_step_id(user_id) == transforms.hash_step_id(user_id)


def test_next_ulid_in_the_same_ms_sorts_after_the_previous_one() -> None:
    first = next_ulid(None, 1_000, b"\x80" * 10)
    second = next_ulid(first, 1_000, bytes(10))  # fresh entropy would sort first
    third = next_ulid(second, 999, b"\x90" * 10)  # the clock went back
    assert first < second < third
    assert ulid_time_ms(third) == 1_000


def test_next_ulid_in_a_new_ms_is_a_fresh_ulid() -> None:
    first = next_ulid(None, 1_000, b"\xff" * 10)
    assert next_ulid(first, 1_001, bytes(10)) == ulid(1_001, bytes(10))


def test_next_ulid_from_one_previous_differs_by_entropy() -> None:
    # Two threads reading the same ``previous`` must still get different ids.
    previous = ulid(1_000, bytes(10))
    assert next_ulid(previous, 1_000, b"\x01" * 10) != next_ulid(previous, 1_000, b"\x02" * 10)
