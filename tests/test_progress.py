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


def test_training_progress_is_an_upper_bound_ends_with_the_epochs_scores_and_says_where_early_stopping_ended(caplog):
    clock = Clock()
    log = logging.getLogger("fashion.models.training")
    progress = Progress(log, "train_cnn", total=1000, unit="training images", every=10, clock=clock,
                        may_end_early=True)
    with caplog.at_level("INFO", logger="fashion"):
        clock.now = 10
        progress.update(100, note="epoch 1/10: loss 1.000")  # 10 images/s, 900 left: at most 90 s
        clock.now = 12
        progress.update(100, note="epoch 2/10: loss 0.900")  # quiet: under `every`
        progress.finish("early stopping ended it here")  # the last epoch's line is still due
        progress.finish("early stopping ended it here")  # said once
    assert [r.getMessage() for r in caplog.records] == [
        "train_cnn: 100 / 1,000 training images, 10.0 training images/s, at most 1 min 30 s left; epoch 1/10: loss 1.000",
        "train_cnn: 200 / 1,000 training images, 16.7 training images/s, 12 s; epoch 2/10: loss 0.900; "
        "early stopping ended it here",
    ]


def test_finish_says_nothing_when_the_last_line_is_out():
    records = []

    class Log:
        def info(self, fmt, *args):
            records.append(fmt % args)

    clock = Clock()
    progress = Progress(Log(), "finetune", total=20, unit="training images", every=0, clock=clock, may_end_early=True)
    clock.now = 1
    progress.update(10, note="epoch 1/2: loss 1.000")
    progress.finish("early stopping ended it here")
    assert records == ["finetune: 10 / 20 training images, 10.0 training images/s, at most 1 s left; "
                       "epoch 1/2: loss 1.000"]
