"""The Trainer's progress bar without its per-step log dictionaries.

``transformers.Trainer`` prints every logged step (``{'loss': ..., 'grad_norm': ...}``) through its
progress or printer callback. xdet keeps the loss curve in the adapter manifest instead, so the
terminal gets a bar (when asked for) and nothing else.
"""

from __future__ import annotations

from typing import Any


def quiet(trainer: Any, progress: bool) -> Any:
    """Swap the Trainer's printing callbacks for a bar that does not print logs; returns ``trainer``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class BarOnly(ProgressCallback):
        """Labelled bars: the optimizer steps, and the loss measured on training examples before/after."""

        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            if getattr(self, "training_bar", None) is not None:
                self.training_bar.set_description("training steps")

        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)
            if getattr(self, "prediction_bar", None) is not None:
                self.prediction_bar.set_description("loss on training examples")

        def on_log(self, args, state, control, logs=None, **kwargs):  # the manifest keeps the logs
            return None

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress:
        trainer.add_callback(BarOnly())
    return trainer
