"""Progress lines for the long steps: done / total, rate and time left, at most every few seconds.

The one progress reporter: decoding (prepare), extraction, tagging, and the epochs of every trainer (through
fashion.models.training.epoch_progress, a Keras callback that feeds a Progress).
"""

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
    always at the end (done == total). A note given with an update (a training epoch's scores) ends its
    line. With may_end_early (training with early stopping) the time left is an upper bound, and
    finish(reason) logs the last update when its line is still due. The clock is injectable so the
    arithmetic can be tested.
    """

    def __init__(self, log, what, total, unit="images", every=10.0, clock=time.perf_counter, may_end_early=False):
        self.log, self.what, self.total, self.unit, self.every, self.clock = log, what, total, unit, every, clock
        self.may_end_early = may_end_early
        self.done, self.note, self.due = 0, None, False
        self.started = self.last = clock()

    def update(self, count, note=None):
        self.done += count
        self.note, self.due = note, True
        now = self.clock()
        if self.done >= self.total or now - self.last >= self.every:
            self._log(now)

    def finish(self, reason):
        """The work ended before the total (early stopping): log the last update's line, if not yet logged."""
        if self.due:
            self._log(self.clock(), reason)

    def _log(self, now, ended=None):
        self.last, self.due = now, False
        self.log.info("%s", self.line(now, ended))

    def line(self, now=None, ended=None):
        elapsed = (self.clock() if now is None else now) - self.started
        rate = self.done / elapsed if elapsed > 0 else float("inf")
        text = f"{self.what}: {self.done:,} / {self.total:,} {self.unit}"
        if elapsed > 0:
            text += f", {rate:,.1f} {self.unit}/s"
        if self.done < self.total and self.done and elapsed > 0 and ended is None:
            text += f", {'at most' if self.may_end_early else 'about'} {duration((self.total - self.done) / rate)} left"
        elif self.done >= self.total or ended is not None:
            text += f", {duration(elapsed)}"
        if self.note:
            text += f"; {self.note}"
        if ended is not None:
            text += f"; {ended}"
        return text
