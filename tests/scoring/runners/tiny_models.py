"""Tiny randomly-initialised Grounding DINO and SAM 2.1 video models, saved with `save_pretrained`
in the weights layout the Grounded-SAM2 runner reads (`<weights>/grounding-dino/`, `<weights>/sam2/`).

Nothing is downloaded: the configs are written here, the tokenizer's `vocab.txt` is hand-written
from the synthetic benchmark's words. The models are random, so their detections and masks are
noise; they exercise the real code paths (loading, preprocessing, batching, propagation, writing)
at a size a 2-core CPU runs in seconds. The benchmark (benchmarks/bench_runners.py) imports
`build_tiny_weights` from here too.
"""

from __future__ import annotations

import json
from pathlib import Path

from scoring.synth import _COLORS, _NOUNS, _PLACES

# Grounding DINO's inputs for the tiny model: small enough that a CPU step takes milliseconds; the
# runner reads these from the saved preprocessor config, exactly as it reads the real model's 800/1333.
DINO_SHORTEST_EDGE = 64
DINO_LONGEST_EDGE = 128
SAM2_IMAGE_SIZE = 64  # SAM2's square input (1024 for the real models)
QUERY_SCALE = 0.1
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary() -> list[str]:
    """The tokenizer's words: the special tokens, punctuation the captions use, and every word of
    the synthetic expressions (colours, nouns, places), so no caption token is [UNK]."""
    words: list[str] = []
    for phrase in [*_COLORS, *_NOUNS, *_PLACES, "the", "a", "object"]:
        for word in phrase.split():
            if word not in words:
                words.append(word)
    return [*SPECIAL_TOKENS, ".", ";", ",", *sorted(words)]


def _save_grounding_dino(folder: Path, seed: int) -> None:
    import torch
    from transformers import BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    # Read back through from_pretrained: the one constructor that takes a vocab.txt in both
    # transformers 4.x and 5.x (5.x's BertTokenizer(...) ignores vocab_file).
    tokenizer = BertTokenizer.from_pretrained(str(folder), local_files_only=True)
    backbone = SwinConfig(image_size=DINO_LONGEST_EDGE, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                          num_heads=[1, 1, 1, 1], window_size=4, out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=16, max_position_embeddings=64)
    # decoder_layers=2: with one layer, the tied box heads have nothing to tie to.
    config = GroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
                                 decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                 encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20,
                                 encoder_n_points=2, decoder_n_points=2, max_text_len=32)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(config).eval()
    with torch.no_grad():
        # Random query features are large enough that every box scores 1.0; scaled down, the scores
        # spread below 1, so thresholds separate frames as they do for real.
        model.model.decoder.layer_norm.weight.mul_(QUERY_SCALE)
        model.model.decoder.layer_norm.bias.mul_(QUERY_SCALE)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # What the hub's grounding-dino repos hold, with the tiny model's sizes.
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "GroundingDinoImageProcessor", "do_resize": True, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225], "do_pad": True, "resample": 2,
        "size": {"shortest_edge": DINO_SHORTEST_EDGE, "longest_edge": DINO_LONGEST_EDGE},
    }, indent=1), encoding="utf-8")


def _save_sam2(folder: Path, seed: int) -> None:
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    size = SAM2_IMAGE_SIZE
    # The constraints found by building it: the memory features have 64 channels (hard-wired in the
    # memory attention), the hidden size must be a larger multiple of 64 (object pointers are split
    # into hidden/64 tokens), and a global-attention block must not be a pooling block.
    hiera = {"model_type": "sam2_hiera_det_model", "hidden_size": 8, "image_size": [size, size],
             "blocks_per_stage": [1, 1, 2, 1], "embed_dim_per_stage": [8, 16, 32, 64],
             "num_attention_heads_per_stage": [1, 1, 1, 1], "window_size_per_stage": [2, 2, 2, 2],
             "global_attention_blocks": [3], "window_positional_embedding_background_size": [2, 2]}
    vision = {"model_type": "sam2_vision_model", "backbone_config": hiera, "backbone_channel_list": [64, 32, 16, 8],
              "backbone_feature_sizes": [[size // 4] * 2, [size // 8] * 2, [size // 16] * 2], "fpn_hidden_size": 128}
    config = Sam2VideoConfig(
        vision_config=vision, image_size=size,
        prompt_encoder_config={"hidden_size": 128, "image_size": size, "patch_size": 16},
        mask_decoder_config={"hidden_size": 128, "mlp_dim": 32, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
        memory_attention_hidden_size=128, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=128,
        memory_attention_rope_feat_sizes=[size // 16, size // 16], memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=32)
    torch.manual_seed(seed)
    Sam2VideoModel(config).eval().save_pretrained(folder)


def build_tiny_weights(out: str | Path, *, seed: int = 0) -> Path:
    """Write a weights folder with a tiny random Grounding DINO and SAM 2.1 video model; returns it."""
    root = Path(out)
    _save_grounding_dino(root / "grounding-dino", seed)
    _save_sam2(root / "sam2", seed)
    return root
