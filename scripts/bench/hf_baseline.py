"""HF transformers / plain PyTorch baseline for `r1lab bench rollout|update`.

`r1lab bench` runs this script as a subprocess on the same machine and the same workload, reads the JSON it writes
(`--out`) and prints r1lab's ratios against it. It measures, on `Qwen2_5_VLForConditionalGeneration` built from a
config file:

- rollout: `model.generate` with sampling (temperature 1, no top-k/top-p) of exactly `--new-tokens` tokens per
  sequence with a KV cache; separately, the prefill alone (one forward of the prompt batch with `use_cache=True` and
  `logits_to_keep=1`, as `generate`'s own prefill and r1lab's prefill keep only the last position's logits);
- update: one optimizer step of a GRPO update on `--batch` sequences of `--prompt-len + --response-len` tokens,
  gradient accumulation over micro-batches of `--micro-batch`, then `clip_grad_norm_(1.0)` and `AdamW.step`. The loss,
  per micro-batch of M sequences (k micro-batches), with `logp` the response tokens' log-probs (M x R: f32
  log-softmax of the logits at positions P-1 .. P+R-2; the model computes logits at every position),
  `old_logp = logp.detach()` and fixed per-sequence advantages A ~ N(0, 1):

      ratio = exp(logp - old_logp)
      loss  = mean_tokens(max(-A * ratio, -A * clamp(ratio, 0.8, 1.2))) / k   (EasyR1: clip 0.2 both sides)

Deliberate choices: random weights (the transformers default init, seeded), text-only inputs (uniform ids below
every special/vision token id), no padding, EOS disabled so every rollout has the same length, AdamW states in the
parameter dtype (what plain PyTorch does; the vision tower gets no gradients, so AdamW skips it). Memory, all from
the end of the model build on (warmup included, so the lazily allocated optimizer states count): on CUDA the
allocator peaks plus NVML's used memory of the whole device, polled every ~5 ms; on CPU the peak RSS (VmHWM).

Only torch, transformers and the standard library are imported (the GPU machine has no network).
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", required=True, choices=["rollout", "update"])
    p.add_argument("--config", required=True, type=Path, help="a Qwen2.5-VL config.json")
    p.add_argument("--device", required=True, choices=["cpu", "cuda"])
    p.add_argument("--dtype", required=True, choices=list(DTYPES))
    p.add_argument("--batch", required=True, type=int)
    p.add_argument("--prompt-len", required=True, type=int)
    p.add_argument("--new-tokens", type=int, default=64, help="rollout: tokens generated per sequence")
    p.add_argument("--response-len", type=int, default=64, help="update: response tokens per sequence")
    p.add_argument("--micro-batch", type=int, default=None, help="update: sequences per forward/backward")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, type=Path)
    a = p.parse_args(argv)
    a.micro_batch = a.batch if a.micro_batch is None else a.micro_batch
    positive = {"--batch": a.batch, "--prompt-len": a.prompt_len, "--new-tokens": a.new_tokens,
                "--response-len": a.response_len, "--micro-batch": a.micro_batch, "--iters": a.iters}
    for flag, v in positive.items():
        if v < 1:
            p.error(f"{flag} must be at least 1, got {v}")
    if a.warmup < 0:
        p.error(f"--warmup must be at least 0, got {a.warmup}")
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads must be at least 1, got {a.threads}")
    if a.batch % a.micro_batch:
        p.error(f"--batch {a.batch} is not divisible by --micro-batch {a.micro_batch}")
    if not a.config.is_file():
        p.error(f"--config {a.config}: no such file")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    return a


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


class NvmlPeak:
    """Polls NVML's `used` memory of one device every ~5 ms in a background thread; `peak` is the maximum seen."""

    class _Memory(ctypes.Structure):
        _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]

    def __init__(self, device: torch.device, notes: list[str]) -> None:
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            nvml = ctypes.CDLL("libnvidia-ml.so.1")
            if nvml.nvmlInit_v2() != 0:
                raise OSError("nvmlInit_v2 failed")
            try:  # NVML counts devices physically; map through CUDA_VISIBLE_DEVICES when torch can
                index = torch.cuda._get_nvml_device_index(device)
            except Exception:
                index = torch.cuda.current_device()
                notes.append(f"NVML device index = torch's current device {index} (CUDA_VISIBLE_DEVICES ignored)")
            self._handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(self._handle)) != 0:
                raise OSError(f"nvmlDeviceGetHandleByIndex_v2({index}) failed")
            self._nvml = nvml
            self._read()
        except (OSError, AttributeError) as e:
            self._nvml = None
            notes.append(f"NVML unavailable, device_used_peak_bytes is null: {e}")

    def _read(self) -> int:
        mem = self._Memory()
        if self._nvml.nvmlDeviceGetMemoryInfo(self._handle, ctypes.byref(mem)) != 0:
            raise OSError("nvmlDeviceGetMemoryInfo failed")
        self.peak = max(self.peak or 0, mem.used)
        return mem.used

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            with contextlib.suppress(OSError):
                self._read()

    def __enter__(self) -> NvmlPeak:
        if self._nvml is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            with contextlib.suppress(OSError):
                self._read()


def build_model(args: argparse.Namespace, device: torch.device):
    """The model with random weights, built directly on `device` in the requested dtype, and its config."""
    config = AutoConfig.from_pretrained(args.config)
    torch.manual_seed(args.seed)
    with device:  # parameters are created (and initialised) on the device, in `dtype`: no full f32 CPU copy
        model = Qwen2_5_VLForConditionalGeneration._from_config(
            config, dtype=DTYPES[args.dtype], attn_implementation=args.attn)
    # EOS disabled in the model's own generation config too: `generate` fills unset options from it.
    model.generation_config.eos_token_id = None
    return model, config


def token_bound(config) -> int:
    """Exclusive upper bound of the prompt ids: below the vocabulary size and every special or vision token id."""
    text = config.text_config
    ids = [text.vocab_size] + [getattr(c, k, None) for c in (config, text) for k in
                                ("image_token_id", "video_token_id", "vision_start_token_id",
                                 "bos_token_id", "eos_token_id")]
    return min(i for i in ids if isinstance(i, int) and i > 0)


def rollout(args, model, ids, mask, device) -> dict:
    B, P, N = args.batch, args.prompt_len, args.new_tokens
    model.eval()
    torch.manual_seed(args.seed)  # the sampling stream
    gen_s, prefill_s = [], []
    for it in range(args.warmup + args.iters):
        with torch.inference_mode():
            sync(device)
            t0 = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
            sync(device)
            t1 = time.perf_counter()
            del out
            t2 = time.perf_counter()
            seqs = model.generate(ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                  max_new_tokens=N, min_new_tokens=N, eos_token_id=None, pad_token_id=0,
                                  use_cache=True)
            sync(device)
            t3 = time.perf_counter()
        if tuple(seqs.shape) != (B, P + N):
            raise SystemExit(f"hf_baseline: generate returned {tuple(seqs.shape)}, expected {(B, P + N)}")
        if it >= args.warmup:
            prefill_s.append(t1 - t0)
            gen_s.append(t3 - t2)
    step = statistics.median(gen_s)
    prefill = statistics.median(prefill_s)
    decode = B * (N - 1) / (step - prefill) if step > prefill and N > 1 else None
    return {"iter_times_s": gen_s, "step_time_s": step, "tokens_per_s": B * N / step, "prefill_s": prefill,
            "prefill_times_s": prefill_s, "decode_tokens_per_s": decode}


def update(args, model, ids, mask, device) -> dict:
    B, P, R, M = args.batch, args.prompt_len, args.response_len, args.micro_batch
    k = B // M
    model.train()
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6, betas=(0.9, 0.999), weight_decay=1e-2)
    gen = torch.Generator().manual_seed(args.seed + 1)
    adv = torch.randn(B, generator=gen).to(device)
    step_s, fb_s, opt_s, loss = [], [], [], float("nan")
    for it in range(args.warmup + args.iters):
        sync(device)
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        for j in range(k):
            x, m, a = ids[j * M:(j + 1) * M], mask[j * M:(j + 1) * M], adv[j * M:(j + 1) * M, None]
            logits = model(input_ids=x, attention_mask=m, use_cache=False).logits
            logp = torch.log_softmax(logits[:, P - 1:-1].float(), -1).gather(-1, x[:, P:, None]).squeeze(-1)
            ratio = torch.exp(logp - logp.detach())
            pg = torch.maximum(-a * ratio, -a * ratio.clamp(0.8, 1.2))
            micro_loss = pg.mean() / k
            micro_loss.backward()
            total += micro_loss.detach()
            del logits, logp, ratio, pg, micro_loss
        sync(device)
        t1 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        t2 = time.perf_counter()
        loss = total.item()
        if it >= args.warmup:
            step_s.append(t2 - t0)
            fb_s.append(t1 - t0)
            opt_s.append(t2 - t1)
    if not math.isfinite(loss):
        raise SystemExit(f"hf_baseline: the loss of the last iteration is not finite ({loss})")
    step = statistics.median(step_s)
    state_dtypes = sorted({str(v.dtype).removeprefix("torch.") for s in opt.state.values() for n, v in s.items()
                           if n != "step" and torch.is_tensor(v)})
    return {"iter_times_s": step_s, "step_time_s": step, "tokens_per_s": B * (P + R) / step,
            "phases": {"forward_backward_s": statistics.median(fb_s), "optimizer_s": statistics.median(opt_s)},
            "loss": loss, "optimizer_state_dtype": ",".join(state_dtypes) or None}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda", torch.cuda.current_device()) if args.device == "cuda" else torch.device("cpu")
    notes: list[str] = []
    model, config = build_model(args, device)
    num_parameters = sum(p.numel() for p in model.parameters())

    length = args.prompt_len + (args.new_tokens if args.workload == "rollout" else args.response_len)
    if length > config.text_config.max_position_embeddings:
        notes.append(f"sequence length {length} exceeds max_position_embeddings")
    gen = torch.Generator().manual_seed(args.seed)
    seq_len = args.prompt_len if args.workload == "rollout" else length
    ids = torch.randint(0, token_bound(config), (args.batch, seq_len), generator=gen).to(device)
    mask = torch.ones_like(ids)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError as e:
            notes.append(f"could not reset VmHWM ({e}): the CPU peak includes the model build")

    run = rollout if args.workload == "rollout" else update
    with NvmlPeak(device, notes) if device.type == "cuda" else contextlib.nullcontext() as nvml:
        result = run(args, model, ids, mask, device)

    if device.type == "cuda":
        memory = {"peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
                  "peak_reserved_bytes": torch.cuda.max_memory_reserved(device),
                  "device_used_peak_bytes": nvml.peak, "source": "nvml"}
        if nvml.peak is not None:
            notes.append("device_used_peak_bytes: NVML's used memory of the whole device (all processes)")
    else:
        hwm = next((int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmHWM:")), None)
        memory = {"peak_allocated_bytes": None, "peak_reserved_bytes": None, "device_used_peak_bytes": hwm,
                  "source": "vmhwm"}

    shape = {"batch": args.batch, "prompt_len": args.prompt_len}
    if args.workload == "rollout":
        shape["new_tokens"] = args.new_tokens
    else:
        shape.update(response_len=args.response_len, micro_batch=args.micro_batch,
                     gradient_checkpointing=args.gradient_checkpointing)
    out = {
        "implementation": "transformers", "workload": args.workload,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "cuda": torch.version.cuda},
        "device": {"type": device.type,
                   "name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
                   "threads": torch.get_num_threads()},
        "dtype": args.dtype, "attn": args.attn, "config": str(args.config), "num_parameters": num_parameters,
        "shape": shape, "warmup": args.warmup, "iters": args.iters,
        **result, "memory": memory, "notes": notes,
    }
    write_json(args.out, out)

    if args.workload == "rollout":
        extra = f"prefill {result['prefill_s'] * 1e3:.1f} ms"
    else:
        ph = result["phases"]
        extra = f"fwd+bwd {ph['forward_backward_s']:.3f} s, opt {ph['optimizer_s']:.3f} s, loss {result['loss']:.4g}"
    peak = memory["device_used_peak_bytes"]
    print(f"hf_baseline {args.workload} {device.type} {args.dtype}: step {result['step_time_s']:.3f} s, "
          f"{result['tokens_per_s']:.1f} tok/s, {extra}, peak {'n/a' if peak is None else f'{peak / 2**30:.2f} GiB'}"
          f" -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
