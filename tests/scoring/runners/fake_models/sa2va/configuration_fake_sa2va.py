"""Configuration of the fake Sa2VA (test stand-in; see ../README.md)."""

from transformers import PretrainedConfig


class FakeSa2VAConfig(PretrainedConfig):
    model_type = "fake_sa2va"

    def __init__(self, call_log=None, crash_on=None, die_on=None, no_seg_on=None, mask_scale=1.0, **kwargs):
        self.call_log = call_log
        self.crash_on = crash_on
        self.die_on = die_on
        self.no_seg_on = no_seg_on
        self.mask_scale = mask_scale
        super().__init__(**kwargs)
