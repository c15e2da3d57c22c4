"""Writes test/train/fixtures/distill_torch.json: the QA distillation loss of src/train/qa_distill.h computed by
PyTorch, alpha * T^2 * (KL_start + KL_end) / 2 + (1 - alpha) * (CE_start + CE_end) / 2 with
KL = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") and CE as
BertForQuestionAnswering's (ignore_index = sequence length), with its gradients with respect to the student's start
and end logits, in float64 from float32 inputs. Dev-time only."""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(3)
cases = []
for rows, cols, alpha, temp, spread in [(3, 7, 0.5, 2.0, 3.0), (4, 16, 0.9, 4.0, 8.0), (2, 5, 1.0, 1.0, 1.0), (5, 9, 0.0, 3.0, 2.0),
                                        (2, 128, 0.7, 10.0, 20.0)]:
    s_start = (torch.randn(rows, cols) * spread).float()
    s_end = (torch.randn(rows, cols) * spread).float()
    t_start = (torch.randn(rows, cols) * spread).float()
    t_end = (torch.randn(rows, cols) * spread).float()
    y_start = torch.randint(0, cols + 1, (rows,))  # cols = the ignored index (answer outside the window, clamped)
    y_end = torch.randint(0, cols, (rows,))
    y_start[0] = 0
    ss = s_start.double().requires_grad_()
    se = s_end.double().requires_grad_()
    kl = lambda s, t: F.kl_div(F.log_softmax(s / temp, -1), F.softmax(t.double() / temp, -1), reduction="batchmean")
    ce = (F.cross_entropy(ss, y_start, ignore_index=cols) + F.cross_entropy(se, y_end, ignore_index=cols)) / 2
    kd = (kl(ss, t_start) + kl(se, t_end)) / 2
    loss = alpha * temp * temp * kd + (1 - alpha) * ce
    loss.backward()
    cases.append({"rows": rows, "cols": cols, "alpha": alpha, "temperature": temp,
                  "student_start": s_start.flatten().tolist(), "student_end": s_end.flatten().tolist(),
                  "teacher_start": t_start.flatten().tolist(), "teacher_end": t_end.flatten().tolist(),
                  "start_positions": y_start.tolist(), "end_positions": y_end.tolist(),
                  "kl_start": kl(s_start.double(), t_start).item(), "loss": loss.item(),
                  "grad_start": ss.grad.flatten().tolist(), "grad_end": se.grad.flatten().tolist()})
path = os.path.join(os.path.dirname(__file__), "..", "train", "fixtures", "distill_torch.json")
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
    f.write("\n")
