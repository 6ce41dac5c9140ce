"""Fine-tuning: one Keras model from uint8 pixels to class probabilities, with the top of the backbone trainable.

The model is, in order: the augmentation layers (active in `fit` only), the backbone's own
`preprocess_input` (a layer, so the saved file carries it), the pretrained backbone with its top
`unfreeze` blocks trainable, and the trained head's layers with their weights as the starting point.
Every batch-normalisation layer stays frozen and in inference mode: its moving statistics are the
ImageNet ones (or, in ../shared's MobileNet 1.0 file, identity statistics folded into the
convolutions), and a few hundred photos in small batches would only wreck them. This is the recipe
of Keras's guide "Transfer learning & fine-tuning": first the head on the frozen backbone (stage
train_head), then the top blocks at a low learning rate.

The same code runs on the CPU and on GPUs: `strategy()` picks MirroredStrategy over every visible GPU
(with mixed precision) or the default CPU strategy. The saved model is always float32, so it runs anywhere.
"""

import logging
import re
import time
from contextlib import nullcontext

import keras
from keras import layers

from fashion.data.pixel_batches import ImageBatches, augmentation_layers, balanced_class_weights
from fashion.errors import PipelineError
from fashion.features.backbones import application
from fashion.features.frozen_backbone import MIN_INPUT, _weights_argument
from fashion.models.training import epoch_progress, training_callbacks

log = logging.getLogger(__name__)

# The head's layers, in the order they run on the pooled backbone features (fashion/models/head.py).
HEAD_LAYERS = ("standardize", "input_dropout", "dense", "dropout", "logits")

# How each backbone's layer names say which block they belong to: the key orders the blocks bottom to
# top; a layer without a key (input, stem, pooling) is never trainable.
_BLOCK_PATTERNS = {
    # 13 depthwise-separable blocks: conv_dw_N, conv_pw_N (+ _bn, _relu), conv_pad_N.
    "mobilenet": lambda name: _number(r"conv_(?:dw|pw|pad)_(\d+)", name),
    # expanded_conv (0), block_1 .. block_16, then the last 1x1 convolution Conv_1 + out_relu (17).
    "mobilenet_v2": lambda name: (0 if name.startswith("expanded_conv") else
                                  17 if name.startswith("Conv_1") or name == "out_relu" else
                                  _number(r"block_(\d+)_", name)),
    # 16 residual blocks: conv2_block1 .. conv5_block3.
    "resnet50": lambda name: (lambda m: m and (int(m.group(1)), int(m.group(2))))(
        re.match(r"conv(\d)_block(\d+)_", name)),
    # 5 blocks of 3x3 convolutions and a pooling.
    "vgg16": lambda name: _number(r"block(\d)_", name),
}


def _number(pattern, name):
    match = re.match(pattern, name)
    return int(match.group(1)) if match else None


def backbone_blocks(backbone, name):
    """The backbone's layers grouped by block, bottom to top: a list of lists of layers."""
    key_of = _BLOCK_PATTERNS[name]
    blocks = {}
    for layer in backbone.layers:
        key = key_of(layer.name)
        if key is not None:
            blocks.setdefault(key, []).append(layer)
    return [blocks[key] for key in sorted(blocks)]


def set_trainable(backbone, name, unfreeze):
    """Make the top `unfreeze` blocks trainable, every other layer and every batch-norm layer frozen.

    Returns how many weights train. A frozen BatchNormalization layer runs in inference mode in Keras 3,
    and the backbone is also called with training=False: its statistics never move.
    """
    blocks = backbone_blocks(backbone, name)
    if not 0 <= unfreeze <= len(blocks):
        raise PipelineError(f"finetune.unfreeze: {name} has {len(blocks)} blocks; use 0 (all frozen) .. "
                            f"{len(blocks)} (all), got {unfreeze}")
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = False
    opened = [layer for block in blocks[len(blocks) - unfreeze:] for layer in block] if unfreeze else []
    for layer in opened:
        if not isinstance(layer, layers.BatchNormalization):
            layer.trainable = True
    return sum(int(w.numpy().size) for w in backbone.trainable_weights)


@keras.saving.register_keras_serializable(package="fashion")
class BackbonePreprocess(layers.Layer):
    """A backbone's keras.applications `preprocess_input` on 0..255 pixels, as a layer the saved model carries.

    The same function the extract stage applies (fashion/features/frozen_backbone.py), so the head's features and the
    fine-tuned model's inputs are made alike.
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self._preprocess = application(backbone)[1]

    def call(self, inputs):
        return self._preprocess(inputs)

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}


def build_backbone(recipe, image_size):
    """The pretrained backbone the head's features came from (its recorded recipe), pooled, not yet frozen."""
    if "+" in recipe.model:
        raise PipelineError(f"finetune: model is {recipe.model}, several backbones side by side; fine-tuning "
                            "takes one: set model to one of them (dvc exp run -S model=mobilenet)")
    constructor, _, takes_alpha = application(recipe.model)
    kwargs = {"alpha": recipe.alpha} if takes_alpha else {}
    size = max(image_size, MIN_INPUT)
    try:
        return constructor(include_top=False, weights=_weights_argument(recipe.model, recipe.weights),
                           input_shape=(size, size, 3), pooling="avg", **kwargs)
    except PipelineError:
        raise
    except Exception as err:  # a weights file that does not fit this backbone or width
        raise PipelineError(f"finetune: could not load weights {recipe.weights} into {recipe.model}: "
                            f"{type(err).__name__}: {err}") from None


def build_model(head, recipe, image_size, finetune, seed, steps_per_epoch):
    """The compiled fine-tuning model: pixels -> augmentation -> preprocess_input -> backbone -> head.

    `head` is the trained head as loaded from models/head.keras: its layers become this model's top, weights
    and all (load a fresh copy for each model built).
    """
    backbone = build_backbone(recipe, image_size)
    set_trainable(backbone, recipe.model, finetune.unfreeze)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    for augment in augmentation_layers(finetune.augment, seed):
        x = augment(x)
    if image_size < MIN_INPUT:
        x = layers.Resizing(MIN_INPUT, MIN_INPUT, interpolation="bilinear", name="enlarge")(x)
    x = BackbonePreprocess(recipe.model, name="preprocess_input")(x)
    # training=False: batch normalisation in inference mode even while the blocks above it train.
    x = backbone(x, training=False)
    for name in HEAD_LAYERS:  # the trained head's own layers: its weights are the starting point
        x = head.get_layer(name)(x)
    # float32 probabilities under mixed precision too.
    outputs = layers.Softmax(name="probabilities", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="finetuned")
    model.compile(optimizer=optimizer(finetune, steps_per_epoch),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=finetune.label_smoothing),
                  metrics=["accuracy"])
    return model


def optimizer(finetune, steps_per_epoch):
    """AdamW (Adam when finetune.weight_decay is 0), a linear warm-up to finetune.learning_rate, then a cosine to 0."""
    steps = max(1, finetune.epochs * steps_per_epoch)
    warmup = min(steps - 1, finetune.warmup_epochs * steps_per_epoch)
    rate = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else finetune.learning_rate, decay_steps=steps - warmup,
        warmup_target=finetune.learning_rate if warmup else None, warmup_steps=warmup)
    if finetune.weight_decay:
        return keras.optimizers.AdamW(rate, weight_decay=finetune.weight_decay)
    return keras.optimizers.Adam(rate)


def fine_tune(head_path, recipe, store, train, validation, num_classes, finetune, seed, logger=log):
    """Train the fine-tuning model on the image store's `train` (rows, labels), early stopping on `validation`.

    Under strategy(): every visible GPU with mixed precision, or the CPU. Returns (model in float32 with the
    best epoch's weights, history, seconds, devices in words). The same function trains the stage's model and
    every fold of benchmarks/finetune_cv.py.
    """
    distribution, devices, policy = strategy()
    replicas = distribution.num_replicas_in_sync
    logger.info("fine-tuning %s (weights %s) on %s%s", recipe.model, recipe.weights, devices,
                f", {replicas} replicas, {policy}" if replicas > 1 or policy != "float32" else "")
    batch_size = finetune.batch_size * replicas  # finetune.batch_size per device
    batches = ImageBatches(store, *train, num_classes, batch_size, seed=seed)
    checks = ImageBatches(store, *validation, num_classes, batch_size)
    model = _build(head_path, recipe, store.size, finetune, seed, len(batches), distribution, policy)
    logger.info("training on %d images, validating on %d; unfreeze %d block(s): %s of %s weights train",
                len(train[0]), len(validation[0]), finetune.unfreeze,
                f"{sum(int(w.numpy().size) for w in model.trainable_weights):,}", f"{model.count_params():,}")
    class_weight = balanced_class_weights(train[1], num_classes) if finetune.class_weight else None
    started = time.perf_counter()
    history = model.fit(
        batches.dataset(), steps_per_epoch=len(batches), validation_data=checks.dataset(), epochs=finetune.epochs,
        class_weight=class_weight, shuffle=False, verbose=0,
        callbacks=training_callbacks(finetune.patience, verbose=0,
                                     progress=epoch_progress(logger, "finetune", len(train[0]), finetune.epochs)))
    seconds = time.perf_counter() - started
    if policy != "float32":
        # Saved in float32, so the file runs on any machine: the same weights in a float32 twin.
        weights = model.get_weights()
        model = _build(head_path, recipe, store.size, finetune, seed, len(batches), None, "float32")
        model.set_weights(weights)
    return model, history, seconds, devices


def _build(head_path, recipe, image_size, finetune, seed, steps_per_epoch, distribution, policy):
    """build_model under the distribution strategy and precision policy, from a fresh copy of the head."""
    keras.config.set_dtype_policy(policy)
    try:
        with distribution.scope() if distribution is not None else nullcontext():
            try:
                head = keras.saving.load_model(head_path, compile=False)
            except Exception as err:  # a truncated or foreign file: Keras raises several kinds
                raise PipelineError(f"{head_path} could not be loaded ({type(err).__name__}: {err}); "
                                    "run `dvc repro train_head`") from None
            return build_model(head, recipe, image_size, finetune, seed, steps_per_epoch)
    finally:
        keras.config.set_dtype_policy("float32")


def strategy():
    """(distribution strategy, devices in words, mixed-precision policy): every visible GPU, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy(), f"{len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}", \
            "mixed_float16"
    return tf.distribute.get_strategy(), "CPU", "float32"
