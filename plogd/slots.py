"""Batch bytes from the reader to the parsers through shared memory (--multi).

Pickled through a pipe, a 1 MiB batch costs more than splitting it: pickling, the writes and
reads of 64 KiB pipe buffers, unpickling. Instead the reader copies each batch's bytes into
a free slot of an anonymous shared mapping (made before the stages are forked, so every
stage has it) and sends the slot's number; the parser copies the bytes out and frees the
slot. The reader waits for a free slot like it waits for room in the queue (backpressure).
A batch larger than a slot, or an empty one, travels in its message as before. When the
reader has nothing to read, the free slots' memory goes back to the system: a backlog does
not leave every slot resident.
"""
from __future__ import annotations

import mmap
from dataclasses import replace

from .messages import LineBatch


class BatchSlots:
    def __init__(self, count: int, size: int, context):
        self.count = count
        self.size = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE     # whole pages (madvise)
        self.memory = mmap.mmap(-1, count * self.size)
        self.free = context.SimpleQueue()      # numbers of the free slots (no feeder thread)
        for slot in range(count):
            self.free.put(slot)
        self._spare: list[int] = []            # reader: free slots taken from the queue
        self._released: set[int] = set()       # reader: free slots whose memory went back

    def pack(self, batch: LineBatch) -> LineBatch:
        """reader: the batch with its bytes in a slot (blocks until one is free)."""
        length = len(batch.data)
        if not length or length > self.size:
            return batch
        slot = self._spare.pop() if self._spare else self.free.get()
        self._released.discard(slot)
        at = slot * self.size
        self.memory[at:at + length] = batch.data
        return replace(batch, data=b"", slot=(slot, length))

    def unpack(self, batch: LineBatch) -> LineBatch:
        """parser: the batch with its bytes again; its slot is free."""
        if batch.slot is None:
            return batch
        slot, length = batch.slot
        at = slot * self.size
        data = self.memory[at:at + length]
        self.free.put(slot)
        return replace(batch, data=data, slot=None)

    def release_idle(self) -> None:
        """reader, with nothing to read: the memory of every free slot back to the system
        (the next batch in a slot gets fresh pages)."""
        if len(self._released) == self.count:   # all home and released: nothing to ask
            return
        while not self.free.empty():           # the reader is the only one taking
            self._spare.append(self.free.get())
        for slot in self._spare:
            if slot not in self._released:
                self.memory.madvise(mmap.MADV_REMOVE, slot * self.size, self.size)
                self._released.add(slot)
