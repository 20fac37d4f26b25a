"""Shared by the HF-transformers diagnostics of the tiny model (issue 6): loading a checkpoint folder, the chat prompt
of one perception question, the question/answer pairs of a perception set, and the 112-px pictures they ask about.

The prompt is the tiny model's chat template rendered for one user turn (system prompt, the picture as 16
`<|image_pad|>` tokens between the vision markers, then the question), as r1lab's processor writes it for a 112-px
picture (8 x 8 patches, merged 2 x 2).
"""
import torch
from PIL import Image
from tokenizers import Tokenizer
from transformers import AutoImageProcessor, Qwen2_5_VLForConditionalGeneration

IMAGE_TOKENS = 16
GRID = [1, 8, 8]


def load(model_dir):
    """(model in f32, tokenizer, image processor) from a checkpoint's `model/` folder or a Hub snapshot."""
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    return model, Tokenizer.from_file(f"{model_dir}/tokenizer.json"), AutoImageProcessor.from_pretrained(model_dir)


def prompt(question, picture=True):
    """The rendered chat prompt asking `question` (about one picture, unless `picture` is false: then the question
    carries the scene in words), up to the assistant's turn."""
    image = "<|vision_start|>" + "<|image_pad|>" * IMAGE_TOKENS + "<|vision_end|>" if picture else ""
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            + f"{image}{question}<|im_end|>\n<|im_start|>assistant\n")


def pairs(records):
    """(record index, question, answer) for every turn of a perception set (sharegpt messages, lib/data/perception.rs).
    In a text set (no images: the first turn is the scene in words, a newline, then the question) every question is
    asked after the scene, as the first one is, and the question key stays the bare question."""
    for i, r in enumerate(records):
        m = r["messages"]
        scene = "" if r["images"] else m[0]["content"].rsplit("\n", 1)[0] + "\n"
        for j in range(0, len(m), 2):
            q = m[j]["content"].replace("<image>", "")
            bare = q[len(scene):] if j == 0 else q
            yield i, bare, m[j + 1]["content"], scene + bare


class Pictures:
    """`pixel_values` of each record's picture, processed on first use (a run may touch only some of them)."""

    def __init__(self, proc, data_dir, records):
        self.proc, self.data_dir, self.records, self.cache = proc, data_dir, records, {}

    def __getitem__(self, i):
        if i not in self.cache:
            path = f"{self.data_dir}/{self.records[i]['images'][0]}"
            out = self.proc(images=[Image.open(path).convert("RGB")], return_tensors="pt")
            if out["image_grid_thw"].tolist() != [GRID]:
                raise SystemExit(f"{path}: expected a 112-px picture (grid {GRID}), got {out['image_grid_thw'].tolist()}")
            self.cache[i] = out["pixel_values"]
        return self.cache[i]

    def batch(self, indices):
        """(pixel_values, image_grid_thw) for one picture per row."""
        return torch.cat([self[i] for i in indices]), torch.tensor([GRID] * len(indices))
