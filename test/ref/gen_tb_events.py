"""Writes test/train/fixtures/tb_events.tfevents with TensorBoard's own writer (tensorboard.summary.writer's
RecordWriter framing, tensorboard.compat.proto Event/Summary) and test/train/fixtures/tb_events.json listing what was
written; test_tb_writer writes the same events with src/train/tb_writer.c and compares the bytes, and reads the file
back. Dev-time only: pip install tensorboard."""
import json
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

here = os.path.join(os.path.dirname(__file__), "..", "train", "fixtures")
wall0 = 1764600000.25
events = [{"wall_time": wall0, "file_version": "brain.Event:2"}]
scalars = [("train/loss", 1, 5.9531), ("train/learning_rate", 1, 3.99e-05), ("train/grad_norm", 1, 12.5),
           ("train/loss", 50, 2.125), ("train/samples_per_second", 50, 17.375), ("eval/exact_match", 100, 61.2),
           ("eval/f1", 100, 72.8125), ("train/loss", 0, -0.0), ("train/loss", 1 << 40, 1e-30), ("train/epoch", 7, 0.0)]
for i, (tag, step, value) in enumerate(scalars):
    events.append({"wall_time": wall0 + 0.5 * (i + 1), "step": step, "tag": tag, "value": value})

with open(os.path.join(here, "tb_events.tfevents"), "wb") as f:
    w = RecordWriter(f)
    for e in events:
        if "file_version" in e:
            ev = event_pb2.Event(wall_time=e["wall_time"], file_version=e["file_version"])
        else:
            s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=e["tag"], simple_value=e["value"])])
            ev = event_pb2.Event(wall_time=e["wall_time"], step=e["step"], summary=s)
        w.write(ev.SerializeToString())
with open(os.path.join(here, "tb_events.json"), "w") as f:
    json.dump(events, f, indent=1)
    f.write("\n")
