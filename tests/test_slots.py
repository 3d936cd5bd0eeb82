"""The shared-memory slots that carry batch bytes from the reader to the parsers (--multi)."""
import multiprocessing

from plogd.files import FileId
from plogd.messages import LineBatch
from plogd.slots import BatchSlots

_fork = multiprocessing.get_context("fork")


def _batch(data: bytes) -> LineBatch:
    return LineBatch("web", 1, "/var/log/a.log", FileId(1, 2, 0, ""), data, 0, len(data))


def test_bytes_travel_in_a_slot_and_come_back():
    slots = BatchSlots(2, 64, _fork)
    packed = slots.pack(_batch(b"a line\nanother\n"))
    assert packed.data == b"" and packed.slot is not None
    batch = slots.unpack(packed)
    assert batch.data == b"a line\nanother\n" and batch.slot is None
    assert batch == _batch(b"a line\nanother\n")


def test_a_batch_larger_than_a_slot_travels_in_its_message():
    slots = BatchSlots(2, 8, _fork)            # a slot is a page at least
    big = _batch(b"x" * slots.size + b"\n")
    assert slots.pack(big) is big and slots.unpack(big) is big


def test_slots_are_reused_and_bytes_cross_a_fork():
    slots = BatchSlots(2, 64, _fork)
    results = _fork.Queue()

    def parser(messages):
        for packed in messages:
            results.put(slots.unpack(packed).data)

    packed = [slots.pack(_batch(b"%d\n" % i)) for i in range(2)]   # both slots taken
    child = _fork.Process(target=parser, args=(packed,))
    child.start()
    child.join()
    assert [results.get(timeout=5) for _ in range(2)] == [b"0\n", b"1\n"]
    again = slots.pack(_batch(b"third\n"))      # a slot the child freed
    assert slots.unpack(again).data == b"third\n"


def test_an_idle_reader_gives_the_free_slots_memory_back():
    slots = BatchSlots(3, 64, _fork)
    assert slots.size % 4096 == 0
    in_use = slots.pack(_batch(b"kept\n"))
    freed = slots.pack(_batch(b"freed\n"))
    slots.unpack(freed)
    slots.release_idle()
    slot = freed.slot[0]
    assert slots.memory[slot * slots.size:(slot + 1) * slots.size] == bytes(slots.size)  # gone
    assert slots.unpack(in_use).data == b"kept\n"       # a slot in use keeps its bytes
    again = [slots.pack(_batch(b"%d\n" % i)) for i in range(3)]   # every slot usable again
    assert [slots.unpack(b).data for b in again] == [b"0\n", b"1\n", b"2\n"]


def test_an_empty_batch_takes_no_slot():
    slots = BatchSlots(1, 64, _fork)
    empty = _batch(b"")
    assert slots.pack(empty) is empty
