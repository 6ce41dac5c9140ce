"""Progress lines: counts, rate and time left, not more often than asked."""

import logging

from fashion.progress import Progress, duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_durations_read_like_a_person_would_say_them():
    assert duration(12.4) == "12 s"
    assert duration(185) == "3 min 05 s"
    assert duration(3720) == "1 h 02 min"


def test_progress_logs_rate_and_time_left_then_the_total(caplog):
    clock = Clock()
    progress = Progress(logging.getLogger("fashion.features.extraction"), "extract", total=1000, every=10, clock=clock)
    with caplog.at_level("INFO", logger="fashion"):
        clock.now = 5
        progress.update(100)  # 5 s in: under `every`, nothing yet
        clock.now = 10
        progress.update(100)  # 200 done in 10 s: 20 images/s, 800 left = 40 s
        clock.now = 12
        progress.update(100)  # 2 s after the last line: quiet
        clock.now = 50
        progress.update(700)  # the end always logs
    assert [r.getMessage() for r in caplog.records] == [
        "extract: 200 / 1,000 images, 20.0 images/s, about 40 s left",
        "extract: 1,000 / 1,000 images, 20.0 images/s, 50 s",
    ]
