"""Can the tiny Qwen2.5-VL learn the base model's perception Q&A at all? (issue 6 diagnosis)

Trains the untrained tiny model with HF transformers (the reference implementation r1lab's model is proven equal to)
on `base/train_perception.json` ("How many red circles are there?" -> "2", lib/data/perception.rs) with the same
recipe as experiments/embedded/base.toml: batch 16, AdamW, linear warm-up over 5 % of the steps then cosine, grad clip
1.0, loss on the assistant turns only. It prints the loss every 20 steps next to the floor a model reaches by
answering from the question alone, H(answer | question) per target token (3 per turn: the answer, <|im_end|>, \\n),
so a loss at that floor means the pictures are not used. Independent of r1lab's Rust trainer: when both plateau at the
floor, the plateau is the task and model size, not a bug in the trainer.

Usage: .venv-fixtures/bin/python scripts/diagnostics/perception_learnability_hf.py MODEL_DIR DATA_DIR STEPS LR
(MODEL_DIR: the tiny model's snapshot in the Hub cache; DATA_DIR: artifacts/data/embedded/base, written by
`r1lab demo --chain experiments/embedded/base.chain.toml --prepare-only`).
"""
import collections
import json
import math
import random
import sys
import time

import torch
from PIL import Image
from tokenizers import Tokenizer
from transformers import AutoImageProcessor, Qwen2_5_VLForConditionalGeneration

BATCH = 16


def question_floor(records):
    """H(answer | question) over all turns, in nats per turn."""
    by = collections.defaultdict(collections.Counter)
    for r in records:
        m = r["messages"]
        for i in range(0, len(m), 2):
            by[m[i]["content"].replace("<image>", "")][m[i + 1]["content"]] += 1
    total = sum(sum(c.values()) for c in by.values())
    h = 0.0
    for c in by.values():
        n = sum(c.values())
        h += sum(-v / total * math.log(v / n) for v in c.values())
    return h


def encode(tok, record, image_tokens):
    ids, labels = [], []

    def add(text, train):
        e = tok.encode(text).ids
        ids.extend(e)
        labels.extend(e if train else [-100] * len(e))

    add("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n", False)
    m = record["messages"]
    for i in range(0, len(m), 2):
        image = "<|vision_start|>" + "<|image_pad|>" * image_tokens + "<|vision_end|>"
        add(f"<|im_start|>user\n{m[i]['content'].replace('<image>', image)}<|im_end|>\n<|im_start|>assistant\n", False)
        add(m[i + 1]["content"] + "<|im_end|>\n", True)
    return ids, labels


def main():
    model_dir, data_dir, steps, lr = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    torch.manual_seed(0)
    random.seed(0)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.float32)
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    proc = AutoImageProcessor.from_pretrained(model_dir)
    records = json.load(open(f"{data_dir}/train_perception.json"))
    print(f"floor: {question_floor(records) / 3:.4f} per target token", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    t0 = time.time()
    for step in range(steps):
        cur = lr * min(1.0, (step + 1) / (0.05 * steps)) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = cur
        batch = random.sample(records, BATCH)
        images = [Image.open(f"{data_dir}/{r['images'][0]}").convert("RGB") for r in batch]
        px = proc(images=images, return_tensors="pt")
        merge = proc.merge_size**2
        rows = [encode(tok, r, int(g.prod()) // merge) for r, g in zip(batch, px["image_grid_thw"])]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.zeros((BATCH, width), dtype=torch.long)
        labels = torch.full((BATCH, width), -100)
        mask = torch.zeros((BATCH, width), dtype=torch.long)
        for i, (a, b) in enumerate(rows):
            ids[i, : len(a)] = torch.tensor(a)
            labels[i, : len(b)] = torch.tensor(b)
            mask[i, : len(a)] = 1
        out = model(input_ids=ids, attention_mask=mask, pixel_values=px["pixel_values"],
                    image_grid_thw=px["image_grid_thw"])
        logits = out.logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 20 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
