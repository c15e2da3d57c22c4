/* expect.h: reading the generators' safetensors fixtures and comparing model outputs with them. */
#pragma once
#include "autograd/autograd.h"
#include "check.h"
#include "model/bert.h"
#include "model/safetensors.h"

/* A float tensor of the fixture as a malloc'd array (n elements); NULL (and a FAIL) when absent. */
float *expect_f32(qb_check *c, const qb_safetensors *f, const char *name, int64_t *n);
/* An integer tensor of the fixture as a malloc'd int32 array; NULL (and a FAIL) when absent. */
int32_t *expect_i32(qb_check *c, const qb_safetensors *f, const char *name, int64_t *n);
/* Checks tensor t against fixture tensor `name`: same element count, max abs difference <= atol. */
bool expect_close(qb_check *c, qb_ctx *ctx, const qb_tensor *t, const qb_safetensors *f, const char *name, double atol);
/* Builds a model with `head` from fixture dir (config.json edited by edit when not NULL) and loads its weights. */
int expect_model(qb_bert_model *m, qb_ctx *ctx, const char *dir, qb_bert_head head, void (*edit)(qb_bert_config *), qb_err *err);
