"""A fake VideoLISAForCausalLM with the real `evaluate(...)` signature (test stand-in; see ../../README.md)."""

import json

import torch
from transformers import PretrainedConfig, PreTrainedModel

from utils.utils import IMAGE_TOKEN_INDEX

SAM_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
SAM_STD = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)


class FakeVideoLISAConfig(PretrainedConfig):
    model_type = "fake_videolisa"

    def __init__(self, call_log=None, **kwargs):
        self.call_log = call_log
        super().__init__(**kwargs)


class VideoLISAForCausalLM(PreTrainedModel):
    config_class = FakeVideoLISAConfig

    def __init__(self, config, **kwargs):
        self.seg_token_idx = kwargs.pop("seg_token_idx")
        self.vision_tower_path = kwargs.pop("vision_tower")
        super().__init__(config)
        self.probe = torch.nn.Linear(1, 1)
        self.tower = None
        self.post_init()

    def _init_weights(self, module):
        pass

    def get_model(self):
        return self

    def initialize_vision_modules(self, config):
        self.tower = torch.nn.Identity()

    def get_vision_tower(self):
        assert self.tower is not None, "initialize_vision_modules comes first"
        return self.tower

    def evaluate(self, images_clip, images, input_ids, resize_list, original_size_list, dense_indices,
                 num_frames_sparse=32, num_frames_dense=4):
        assert images_clip.shape[1] == num_frames_sparse and images.shape[2:] == (3, 1024, 1024)
        assert (input_ids == IMAGE_TOKEN_INDEX).sum() == 1 and (input_ids == self.seg_token_idx).sum() == 1
        height, width = original_size_list[0]
        rh, rw = resize_list[0]
        # The grey level of each SAM frame, from the normalised, padded input.
        sam = images[0].float()[:, :, :rh, :rw] * SAM_STD + SAM_MEAN
        sam_greys = [float(f.mean()) for f in sam]
        clip_greys = [float(f.float().mean()) for f in images_clip[0]]
        config = self.config
        if config.call_log:
            with open(config.call_log, "a", encoding="utf-8") as log:
                log.write(json.dumps({"sam": sam_greys, "clip": clip_greys, "dense": [list(d) for d in dense_indices],
                                      "input_ids": input_ids[0].tolist(), "resize": list(resize_list[0]),
                                      "original": list(original_size_list[0])}) + "\n")
        logits = torch.full((len(sam_greys), height, width), -4.0)
        for t, level in enumerate(sam_greys):
            logits[t, : round(level / 10) + 1] = 4.0
        return None, [logits]
