"""``OsEntropy`` reads the kernel's randomness a page at a time: every byte handed out once,
and a forked child never hands out the bytes its parent will."""

from __future__ import annotations

import os

from wayline.clock import ENTROPY_BUFFER_BYTES, OsEntropy


def test_sizes_are_as_asked_and_bytes_are_not_handed_out_twice() -> None:
    source = OsEntropy()
    taken = [source.entropy(10) for _ in range(3 * ENTROPY_BUFFER_BYTES // 10)]
    assert {len(chunk) for chunk in taken} == {10}
    assert len(set(taken)) == len(taken)  # 80-bit values: a repeat means a reused byte
    assert len(source.entropy(2 * ENTROPY_BUFFER_BYTES)) == 2 * ENTROPY_BUFFER_BYTES
    assert source.entropy(0) == b""


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    source = OsEntropy()
    source.entropy(2)  # the buffer is filled before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next 16 bytes, to the parent
        os.close(read_end)
        os.write(write_end, source.entropy(16))
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != source.entropy(16)
