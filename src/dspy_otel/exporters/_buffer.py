"""A bounded FIFO of span batches between ``export()`` and the writer thread, counted in spans.

Spans taken by the writer stay counted until it reports them :meth:`SpanBuffer.done`, so the
bound covers what is being retried too, and :meth:`SpanBuffer.wait_empty` means "delivered or
given up", which is what ``force_flush`` waits for.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan


@dataclass(frozen=True)
class Batch:
    spans: Sequence[ReadableSpan]
    run_id: str | None


class SpanBuffer:
    def __init__(self, max_spans: int) -> None:
        if max_spans < 1:
            raise ValueError("max_spans must be at least 1")
        self.max_spans = max_spans
        self._batches: deque[Batch] = deque()
        self._size = 0  # queued + taken but not done
        self._closed = False
        self._cond = threading.Condition()

    @property
    def size(self) -> int:
        return self._size

    def put(self, spans: Sequence[ReadableSpan], run_id: str | None) -> int:
        """Queue as many of ``spans`` as fit; returns how many did not (they are not kept)."""
        with self._cond:
            if self._closed:
                return len(spans)
            room = self.max_spans - self._size
            accepted = spans if len(spans) <= room else spans[:max(room, 0)]
            if accepted:
                self._batches.append(Batch(accepted, run_id))
                self._size += len(accepted)
                self._cond.notify_all()
            return len(spans) - len(accepted)

    def take(self, max_spans: int) -> list[Batch] | None:
        """Wait for batches and take whole ones up to ``max_spans`` spans (at least one); ``None`` once closed."""
        with self._cond:
            while not self._batches and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            taken = [self._batches.popleft()]
            total = len(taken[0].spans)
            while self._batches and total + len(self._batches[0].spans) <= max_spans:
                batch = self._batches.popleft()
                taken.append(batch)
                total += len(batch.spans)
            return taken

    def done(self, count: int) -> None:
        """The writer has finished with ``count`` taken spans (delivered or given up)."""
        with self._cond:
            self._size -= count
            self._cond.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._size > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> int:
        """Stop accepting and taking; returns how many queued (never taken) spans are discarded."""
        with self._cond:
            self._closed = True
            discarded = sum(len(batch.spans) for batch in self._batches)
            self._batches.clear()
            self._size -= discarded
            self._cond.notify_all()
            return discarded
