"""A fake Sa2VA with the real model's `predict_forward` signature (test stand-in; see ../README.md)."""

import json
import os
import sys

import numpy as np
import torch
from transformers import PreTrainedModel

from .configuration_fake_sa2va import FakeSa2VAConfig

KEY_FRAMES = 5  # the real remote code gives its MLLM the first 5 frames of the video


def grey(image):
    """Mean pixel value of a frame (the tests paint frame t with grey level 10 t)."""
    return float(np.asarray(image, dtype=np.float64).mean())


def frame_mask(image):
    """What the fake 'segments': the pixels at least as bright (channel sum) as the frame's mean."""
    total = np.asarray(image, dtype=np.int64).sum(axis=2)
    return total >= total.mean()


class FakeSa2VAModel(PreTrainedModel):
    config_class = FakeSa2VAConfig

    def __init__(self, config):
        super().__init__(config)
        self.probe = torch.nn.Linear(1, 1)
        self.post_init()

    def _init_weights(self, module):
        pass

    def predict_forward(self, image=None, video=None, text=None, past_text="", mask_prompts=None, tokenizer=None):
        assert tokenizer is not None and video, "Sa2VA needs the tokenizer and the frames"
        sizes = {frame.size for frame in video}
        assert len(sizes) == 1, "Sa2VA asserts that every frame has the size of the first"
        config = self.config
        if config.call_log:
            with open(config.call_log, "a", encoding="utf-8") as log:
                log.write(json.dumps({"text": text, "pid": os.getpid(), "greys": [grey(f) for f in video],
                                      "keys": [grey(f) for f in video[:KEY_FRAMES]],
                                      "size": list(video[0].size)}) + "\n")
        if config.crash_on and config.crash_on in text:
            raise RuntimeError("fake Sa2VA fails on purpose")
        if config.die_on and config.die_on in text:
            print("fake Sa2VA dies on purpose", file=sys.stderr, flush=True)
            os._exit(3)
        if config.no_seg_on and config.no_seg_on in text:
            return {"prediction": "There is no such object.", "prediction_masks": []}
        masks = np.stack([frame_mask(f) for f in video])
        if config.mask_scale != 1.0:
            width, height = video[0].size
            rows = np.linspace(0, height - 1, max(1, int(height * config.mask_scale))).astype(int)
            cols = np.linspace(0, width - 1, max(1, int(width * config.mask_scale))).astype(int)
            masks = masks[:, rows][:, :, cols]
        return {"prediction": "Sure, [SEG].", "prediction_masks": [masks]}
