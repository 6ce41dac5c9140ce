"""Progress lines for the long steps: done / total, rate and time left, at most every few seconds."""

import time


def duration(seconds):
    """12 s, 3 min 05 s, 1 h 02 min: how long, for a person."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Logs "<what>: 640 / 12,443 images, 31.2 images/s, about 6 min 18 s left" as work is done.

    update(n) adds n done; a line is logged when `every` seconds have passed since the last one, and
    always at the end (done == total). The clock is injectable so the arithmetic can be tested.
    """

    def __init__(self, log, what, total, unit="images", every=10.0, clock=time.perf_counter):
        self.log, self.what, self.total, self.unit, self.every, self.clock = log, what, total, unit, every, clock
        self.done = 0
        self.started = self.last = clock()

    def update(self, count):
        self.done += count
        now = self.clock()
        if self.done >= self.total or now - self.last >= self.every:
            self.last = now
            self.log.info("%s", self.line(now))

    def line(self, now=None):
        elapsed = (self.clock() if now is None else now) - self.started
        rate = self.done / elapsed if elapsed > 0 else float("inf")
        text = f"{self.what}: {self.done:,} / {self.total:,} {self.unit}"
        if elapsed > 0:
            text += f", {rate:.1f} {self.unit}/s"
        if self.done < self.total and self.done and elapsed > 0:
            text += f", about {duration((self.total - self.done) / rate)} left"
        elif self.done >= self.total:
            text += f", {duration(elapsed)}"
        return text
