/* tb_writer.h: TensorBoard event files as tf.summary / torch.utils.tensorboard write them: TFRecord framing
 * (uint64 length, masked CRC32C of the length, the record, masked CRC32C of the record; CRC32C by ISA-L) around
 * tensorflow.Event protobufs (protobuf-c, tb_event.proto): a file_version "brain.Event:2" event first, then one
 * Summary with a simple_value per scalar. Each record is flushed as written, so TensorBoard follows a live run. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/error.h"

typedef struct qb_tb_writer {
    FILE *fp;
    char path[4096];
} qb_tb_writer;

/* Creates logdir (and parents) and the file events.out.tfevents.<seconds>.<host>.<pid>.0 in it, as TensorBoard's
 * EventFileWriter names it; writes the file_version event at wall_time (seconds since the epoch). */
int qb_tb_open(qb_tb_writer *w, const char *logdir, double wall_time, qb_err *err);
/* The same at an exact file path (created or truncated). */
int qb_tb_open_file(qb_tb_writer *w, const char *path, double wall_time, qb_err *err);
/* Appends one scalar event (tag, step, value at wall_time) and flushes. */
int qb_tb_scalar(qb_tb_writer *w, const char *tag, int64_t step, float value, double wall_time, qb_err *err);
/* Closes the file (w may be unopened). */
void qb_tb_close(qb_tb_writer *w);
/* HF Trainer's default logging_dir under output_dir: output_dir/runs/<Mon DD_HH-MM-SS>_<host> at local time t. */
void qb_tb_default_logdir(char *out, size_t n, const char *output_dir, double t);

/* The masked CRC32C of TFRecord framing: ((c >> 15) | (c << 17)) + 0xa282ead8 for c = crc32c(data). */
uint32_t qb_tb_masked_crc32c(const void *data, size_t n);
/* CRC32C (Castagnoli) of data. */
uint32_t qb_tb_crc32c(const void *data, size_t n);

/* One record of an event file: the decoded Event's fields this writer uses. */
typedef struct qb_tb_record {
    double wall_time;
    int64_t step;
    char file_version[64];   /* "" unless a file_version event */
    char tag[256];           /* first summary value's tag ("" when none) */
    float value;             /* its simple_value */
    int n_values;            /* summary values in the record */
} qb_tb_record;

/* Reads every record of an event file, checking both CRCs of each; calls fn per record (non-zero stops with that
 * value). Errors name the file and the byte offset of the bad record. */
int qb_tb_read(const char *path, int (*fn)(void *user, const qb_tb_record *r), void *user, qb_err *err);
