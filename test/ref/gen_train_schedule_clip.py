"""Writes test/train/fixtures/lr_schedule_clip.json: learning rates of transformers' get_scheduler (linear, cosine,
constant, constant_with_warmup; warmup given as steps or as a ratio through TrainingArguments.get_warmup_steps) at
every step, and torch.nn.utils.clip_grad_norm_ on a few gradients (clipped and not). Dev-time only."""
import json
import math
import os

import torch
import transformers
from transformers import get_scheduler

cases = []
for name in ["linear", "cosine", "constant", "constant_with_warmup"]:
    for total, warmup_steps, warmup_ratio in [(10, 0, 0.0), (37, 5, 0.0), (50, 0, 0.1), (7, 0, 0.33), (3, 8, 0.0)]:
        warmup = warmup_steps if warmup_steps > 0 else math.ceil(total * warmup_ratio)
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=4e-5)
        sched = get_scheduler(name, opt, num_warmup_steps=warmup, num_training_steps=total)
        lrs = []
        for _ in range(total + 2):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        cases.append({"kind": name, "base_lr": 4e-5, "total": total, "warmup_steps": warmup_steps,
                      "warmup_ratio": warmup_ratio, "warmup": warmup, "lrs": lrs})

torch.manual_seed(5)
clips = []
for max_norm, scale in [(1.0, 1.0), (1.0, 0.01), (0.5, 3.0), (100.0, 1.0)]:
    shapes = [(7, 5), (5,), (300,), (3, 4)]
    grads = [torch.randn(s) * scale for s in shapes]
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    clips.append({"max_norm": max_norm, "shapes": [list(s) for s in shapes],
                  "grads": [g.flatten().tolist() for g in grads],
                  "clipped": [p.grad.flatten().tolist() for p in params], "total_norm": float(total)})

out = os.path.join(os.path.dirname(__file__), "..", "train", "fixtures", "lr_schedule_clip.json")
with open(out, "w") as f:
    json.dump({"generator": "test/ref/gen_train_schedule_clip.py", "torch": torch.__version__,
               "transformers": transformers.__version__, "schedules": cases, "clips": clips}, f)
