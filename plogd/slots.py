"""Batch bytes from the reader to the parsers through shared memory (--multi).

Pickled through a pipe, a 1 MiB batch costs more than splitting it: pickling, the writes and
reads of 64 KiB pipe buffers, unpickling. Instead the reader copies each batch's bytes into
a free slot of an anonymous shared mapping (made before the stages are forked, so every
stage has it) and sends the slot's number; the parser copies the bytes out and frees the
slot. The reader waits for a free slot like it waits for room in the queue (backpressure).
A batch larger than a slot travels in its message, as before.
"""
from __future__ import annotations

import mmap
from dataclasses import replace

from .messages import LineBatch


class BatchSlots:
    def __init__(self, count: int, size: int, context):
        self.size = size
        self.memory = mmap.mmap(-1, count * size)
        self.free = context.Queue()            # numbers of the free slots
        for slot in range(count):
            self.free.put(slot)

    def pack(self, batch: LineBatch) -> LineBatch:
        """reader: the batch with its bytes in a slot (blocks until one is free)."""
        length = len(batch.data)
        if length > self.size:
            return batch
        slot = self.free.get()
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
