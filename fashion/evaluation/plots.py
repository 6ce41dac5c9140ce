"""The evaluate stage's pictures: confusion matrix, training curves, the worst mistakes; and the pictures
of a model that was turned off. PNGs are written atomically, without timestamps.
"""

import csv
from pathlib import Path

import numpy as np

from fashion.atomic import atomic_file
from fashion.errors import missing


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path):
    plt = _pyplot()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def plot_confusion(path, labels, probabilities, classes, title):
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    matrix = confusion_matrix(labels, probabilities.argmax(axis=1), labels=list(range(len(classes))))
    side = max(4.0, 0.7 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, square=True,
                xticklabels=classes, yticklabels=classes, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    _save_figure(fig, path)


def plot_curves(path, history_path, title):
    """Accuracy and loss per epoch, training and validation, with the epoch whose weights were kept."""
    import pandas as pd

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    if not Path(history_path).is_file():
        raise missing(history_path)
    history = pd.read_csv(history_path)
    best = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.plot(history["epoch"], history[metric], label=f"training {metric}")
        ax.plot(history["epoch"], history[f"val_{metric}"], label=f"validation {metric}")
        ax.axvline(best, color="grey", linestyle=":", label=f"kept: epoch {best}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save_figure(fig, path)


def plot_mistakes(path, store, rows, labels, probabilities, classes, count, title):
    """The test images the model got wrong with the highest confidence: the ones to look at first."""
    plt = _pyplot()
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    # Most confident first; ties in manifest order, so the gallery is the same every run.
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    if len(worst) == 0:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes on the test split" if count else "mistakes gallery turned off",
                ha="center", va="center", fontsize=14)
        fig.suptitle(title)
        _save_figure(fig, path)
        return
    columns = min(4, len(worst))
    lines = -(-len(worst) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(3 * columns, 3.4 * lines), squeeze=False)
    images = store.read(rows[worst])
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, i in zip(axes.flat, images, worst):
        ax.imshow(image)
        ax.set_title(f"true: {classes[labels[i]]}\npredicted: {classes[predicted[i]]} ({confidence[i]:.2f})",
                     fontsize=9)
    fig.suptitle(f"{title}: the {len(worst)} most confident mistakes")
    _save_figure(fig, path)


def write_turned_off(folder, classes, text):
    """The plots of a model that was not trained: predictions without rows, and pictures that say so."""
    plt = _pyplot()
    with atomic_file(Path(folder) / "predictions.csv", "w") as handle:
        csv.writer(handle).writerow(["path", "actual", "predicted", "confidence"] + [f"p_{name}" for name in classes])
    for name in ("confusion.png", "curves.png", "mistakes.png"):
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)
        _save_figure(fig, Path(folder) / name)


def plot_risk_coverage(path, curves, chosen, target):
    """Accuracy of the answered test photos against the share answered, one line per model ({title: curve}),
    each model's chosen threshold marked ({title: (coverage, accuracy)}), the target accuracy dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for number, (title, curve) in enumerate(curves.items()):
        if not len(curve["coverage"]):
            continue
        line, = ax.plot(curve["coverage"], curve["accuracy"], label=title)
        if title in chosen and chosen[title][1] is not None:
            coverage, accuracy = chosen[title]
            ax.plot([coverage], [accuracy], "o", color=line.get_color(), markersize=8)
            ax.annotate(f"{coverage:.0%} at {accuracy:.3f}", (coverage, accuracy), textcoords="offset points",
                        xytext=(-10, 10 + 12 * number), ha="right", fontsize=8, color=line.get_color(),
                        arrowprops={"arrowstyle": "-", "color": line.get_color(), "lw": 0.5})
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", label=f"target accuracy {target:g}")
    ax.set_xlabel("share of test photos answered automatically (coverage)")
    ax.set_ylabel("accuracy of the answered photos")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Risk-coverage on the test split (dots: each model's chosen threshold)")
    _save_figure(fig, path)
