"""tokenizer_image_token as VideoLISA's runners call it (test stand-in)."""

import torch

from utils.utils import DEFAULT_IMAGE_TOKEN, IMAGE_TOKEN_INDEX


def tokenizer_image_token(prompt, tokenizer, return_tensors=None):
    ids = []
    for k, piece in enumerate(prompt.split(DEFAULT_IMAGE_TOKEN)):
        if k:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(tokenizer(piece, add_special_tokens=False).input_ids)
    return torch.tensor(ids, dtype=torch.long) if return_tensors == "pt" else ids
