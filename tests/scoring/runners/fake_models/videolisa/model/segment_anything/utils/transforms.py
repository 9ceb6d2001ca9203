"""ResizeLongestSide.apply_image as SAM defines it (test stand-in, with PIL)."""

import numpy as np
from PIL import Image


class ResizeLongestSide:
    def __init__(self, target_length):
        self.target_length = target_length

    def apply_image(self, image):
        height, width = image.shape[:2]
        scale = self.target_length / max(height, width)
        size = (int(width * scale + 0.5), int(height * scale + 0.5))
        return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
