/* qa_train.c: see qa_train.h. */
#include "train/qa_train.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/fileio.h"
#include "base/staging.h"
#include "model/heads.h"
#include "train/clip_grad.h"
#include "model/checkpoint.h"
#include "train/metrics_log.h"
#include "train/progress.h"
#include "train/qa_distill.h"
#include "train/shuffle.h"
#include "train/tb_writer.h"
#include "train/train_state.h"

#define DROPOUT_STREAM_SHIFT 36 /* each step's dropout counters start at (step + 1) << 36 */
#define DROPOUT_RANK_SHIFT 56   /* ... plus rank << 56 (256 ranks, 2^20 steps apart) */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int qb_qa_trainer_init(qb_qa_trainer *t, qb_bert_model *m, const qb_squad_features *f, const qb_qa_train_opts *o, qb_err *err) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->f = f;
    t->o = *o;
    t->order_epoch = -1;
    t->world = o->comm ? o->comm->size : 1;
    t->rank = o->comm ? o->comm->rank : 0;
    if (t->rank != 0) t->o.output_dir = NULL, t->o.log = NULL; /* rank 0 logs and saves */
    if (f->n < 1) return qb_errorf(err, "train: no training features");
    if (o->batch_size < 1) return qb_errorf(err, "train.batch_size: %d must be positive", o->batch_size);
    if (!(o->learning_rate > 0)) return qb_errorf(err, "train.learning_rate: %g must be positive", o->learning_rate);
    if (o->max_steps <= 0 && !(o->epochs > 0)) return qb_errorf(err, "train.epochs: %g must be positive (or set train.max_steps)", o->epochs);
    if (o->warmup_steps < 0 || !(o->warmup_ratio >= 0 && o->warmup_ratio <= 1))
        return qb_errorf(err, "train.warmup_steps / train.warmup_ratio: must be >= 0 (ratio <= 1)");
    if (o->gradient_accumulation_steps < 0)
        return qb_errorf(err, "train.gradient_accumulation_steps: %d must be positive", o->gradient_accumulation_steps);
    if (o->eval_steps < 0 || (o->eval_steps > 0 && !o->evaluate)) return qb_errorf(err, "eval.steps: %lld needs an evaluation", (long long)o->eval_steps);
    if (o->load_best_model_at_end && (o->eval_steps <= 0 || o->save_steps <= 0 || o->save_steps % o->eval_steps != 0))
        return qb_errorf(err, "train.load_best_model_at_end: needs eval.steps > 0 and train.save_steps a multiple of it (got %lld, %lld)",
                         (long long)o->eval_steps, (long long)o->save_steps);
    if (o->save_total_limit < 0) return qb_errorf(err, "train.save_total_limit: %lld must be >= 0", (long long)o->save_total_limit);
    if (o->teacher && (!(o->kd_alpha >= 0 && o->kd_alpha <= 1) || !(o->kd_temperature > 0)))
        return qb_errorf(err, "train.kd_alpha / train.kd_temperature: %g must be in [0, 1], %g > 0", o->kd_alpha, o->kd_temperature);
    if (o->max_steps > QB_QA_MAX_STEPS || o->warmup_steps > QB_QA_MAX_STEPS)
        return qb_errorf(err, "train.max_steps / train.warmup_steps: %lld / %lld is above %lld", (long long)o->max_steps,
                         (long long)o->warmup_steps, (long long)QB_QA_MAX_STEPS);
    t->accum = o->gradient_accumulation_steps > 1 ? o->gradient_accumulation_steps : 1;
    const char *overlap = getenv("QB_GRAD_OVERLAP");
    t->sync.no_overlap = overlap && strcmp(overlap, "0") == 0;
    const char *bucket = getenv("QB_GRAD_BUCKET_FLOATS"); /* tests: several buckets on a tiny model */
    if (bucket && atoll(bucket) > 0) t->sync.bucket = atoll(bucket);
    int64_t rows_per_step = (int64_t)o->batch_size * t->accum * t->world;  /* the global batch */
    t->steps_per_epoch = (f->n + rows_per_step - 1) / rows_per_step;
    double epoch_steps = o->max_steps > 0 ? 0.0 : ceil(o->epochs * (double)t->steps_per_epoch);
    if (!(epoch_steps <= (double)QB_QA_MAX_STEPS))
        return qb_errorf(err, "train.epochs: %g epochs of %lld steps is above %lld steps", o->epochs, (long long)t->steps_per_epoch,
                         (long long)QB_QA_MAX_STEPS);
    t->total_steps = o->max_steps > 0 ? o->max_steps : (int64_t)epoch_steps;
    if (t->accum > 1 && t->total_steps > QB_QA_MAX_STEPS / t->accum)
        return qb_errorf(err, "train.gradient_accumulation_steps: %lld steps of %d micro-batches is above %lld dropout streams",
                         (long long)t->total_steps, t->accum, (long long)QB_QA_MAX_STEPS);
    t->sched = (qb_lr_schedule){.kind = o->scheduler, .base_lr = o->learning_rate, .total_steps = t->total_steps,
                                .warmup_steps = qb_lr_warmup_steps(o->warmup_steps, o->warmup_ratio, t->total_steps)};
    t->order = malloc((size_t)f->n * sizeof *t->order);
    if (!t->order) return qb_qa_trainer_free(t), qb_errorf(err, "train: out of memory");
    if (qb_qa_batch_init(&t->batch, o->batch_size, f->max_len, err)) return qb_qa_trainer_free(t), -1;
    if (o->teacher) {
        if (o->teacher->cfg.max_position_embeddings < f->max_len || o->teacher->head != QB_BERT_QUESTION_ANSWERING)
            return qb_qa_trainer_free(t), qb_errorf(err, "train.teacher: not a question-answering model for %d tokens", f->max_len);
        t->teacher_host = malloc((size_t)2 * (size_t)o->batch_size * (size_t)f->max_len * sizeof(float));
        if (!t->teacher_host) return qb_qa_trainer_free(t), qb_errorf(err, "train: out of memory");
    }
    if (qb_adamw_init(&t->opt, m->ctx, o->adam_beta1, o->adam_beta2, o->adam_epsilon, o->weight_decay, err))
        return qb_qa_trainer_free(t), -1;
    return 0;
}

int qb_qa_trainer_resume(qb_qa_trainer *t, const char *checkpoint_dir, qb_err *err) {
    qb_train_state_info info;
    if (qb_train_state_load(checkpoint_dir, t->m->ctx, &t->opt, &info, err)) return -1;
    const char *what = NULL;
    int64_t got = 0, want = 0;
    if (info.seed != (int64_t)t->o.seed) what = "seed", got = info.seed, want = (int64_t)t->o.seed;
    else if (info.train_batch_size != (int64_t)t->o.batch_size * t->world * t->accum)
        what = "train_batch_size", got = info.train_batch_size, want = (int64_t)t->o.batch_size * t->world * t->accum;
    else if (info.num_train_features != t->f->n) what = "num_train_features", got = info.num_train_features, want = t->f->n;
    if (what)
        return qb_errorf(err, "%s/trainer_state.json: %s %lld but this run has %lld (resume needs the same data order%s)", checkpoint_dir,
                         what, (long long)got, (long long)want,
                         strcmp(what, "train_batch_size") ? "" : "; it is the global batch, per-device batch x ranks x accumulation steps");
    if (info.global_step > t->total_steps)
        return qb_errorf(err, "%s/trainer_state.json: global_step %lld is past this run's %lld steps", checkpoint_dir,
                         (long long)info.global_step, (long long)t->total_steps);
    t->step = t->resumed_from = info.global_step;
    t->best_step = info.best_step;
    t->best_metric = info.best_metric;
    return 0;
}

int qb_qa_load_micro_batch(qb_qa_trainer *t, int64_t step, int k, qb_qa_batch *b, qb_err *err) {
    if (step < 0 || k < 0 || k >= t->accum) return qb_errorf(err, "train: step %lld, micro-batch %d", (long long)step, k);
    int64_t epoch = step / t->steps_per_epoch, i = step % t->steps_per_epoch, n = t->f->n, first;
    if (epoch != t->order_epoch) {
        qb_permutation(t->order, n, t->o.seed, (uint64_t)epoch);
        t->order_epoch = epoch;
    }
    int rows;
    qb_shard_batch(n, t->o.batch_size, t->world, t->rank, i * t->accum + k, &first, &rows, &t->global_rows);
    qb_qa_batch_gather(b, t->f, t->order + (first < n ? first : 0), rows);
    return 0;
}

/* Index of the first non-finite element of t, -1 when all are finite or t cannot be read. */
static int64_t non_finite_at(qb_ctx *ctx, const qb_tensor *t) {
    int64_t n = qb_numel(t);
    float *host = malloc((size_t)(n ? n : 1) * sizeof *host);
    int64_t at = -1;
    if (host && qb_to_host(ctx, t, host) == 0)
        for (int64_t i = 0; i < n && at < 0; i++)
            if (!isfinite(host[i])) at = i;
    free(host);
    return at;
}

/* Names the first tensor that went bad: with a non-finite loss, the first op output of the forward pass (in tape
 * order), else the first parameter gradient (in parameter order). */
static void first_non_finite(qb_ctx *ctx, bool in_forward, char *what, size_t n) {
    snprintf(what, n, "none found");
    for (int i = 0; i < ctx->params.n; i++) {  /* a parameter itself (cannot be after a finite update, but say so) */
        int64_t at = non_finite_at(ctx, ctx->params.items[i]);
        if (at >= 0) {
            snprintf(what, n, "parameter %s (element %lld)", ctx->params.items[i]->name, (long long)at);
            return;
        }
    }
    if (in_forward) {
        for (int k = 0; k < ctx->n_tape; k++) {
            const qb_node *node = ctx->tape[k];
            int64_t at = non_finite_at(ctx, node->out);
            if (at < 0) continue;
            const char *param = NULL;
            for (int j = 0; j < node->n_in && !param; j++)
                if (node->in[j] && node->in[j]->is_param) param = node->in[j]->name;
            snprintf(what, n, "output of forward op %d of %d, %s%s%s (element %lld)", k + 1, ctx->n_tape, node->op, param ? " of " : "",
                     param ? param : "", (long long)at);
            return;
        }
        return;
    }
    for (int i = 0; i < ctx->params.n; i++) {
        const qb_tensor *p = ctx->params.items[i];
        int64_t at = p->grad ? non_finite_at(ctx, p->grad) : -1;
        if (at >= 0) {
            snprintf(what, n, "gradient of %s (element %lld)", p->name, (long long)at);
            return;
        }
    }
}

int qb_qa_load_batch(qb_qa_trainer *t, int64_t step, qb_qa_batch *b, qb_err *err) { return qb_qa_load_micro_batch(t, step, 0, b, err); }

/* The teacher's start and end logits [B, S] for the batch (eval mode, no grad, its own context), copied into the
 * student's context. */
static int teacher_logits(qb_qa_trainer *t, const qb_bert_batch *view, qb_tensor **start, qb_tensor **end, qb_err *err) {
    qb_bert_model *tm = t->o.teacher;
    qb_ctx *tc = tm->ctx, *ctx = t->m->ctx;
    qb_ctx_step_reset(tc);
    bool training = tc->training, no_grad = tc->no_grad;
    tc->training = false;
    tc->no_grad = true;
    qb_bert_output out;
    int64_t shape[2] = {view->batch, view->seq}, n = shape[0] * shape[1];
    int rc = qb_bert_question_answering(tm, view, NULL, NULL, &out) || qb_to_host(tc, out.logits, t->teacher_host) ||
             qb_to_host(tc, out.end_logits, t->teacher_host + n);
    tc->training = training;
    tc->no_grad = no_grad;
    if (rc) return qb_errorf(err, "train step %lld: teacher: %s", (long long)t->opt.step + 1, tc->err.msg);
    *start = qb_from_host(ctx, 2, shape, t->teacher_host);
    *end = qb_from_host(ctx, 2, shape, t->teacher_host + n);
    if (!*start || !*end) return qb_errorf(err, "train step %lld: teacher logits: %s", (long long)t->opt.step + 1, ctx->err.msg);
    return 0;
}

/* The step arena reset, training mode and the dropout stream of micro-batch k of the step: (step + 1) << 36 without
 * accumulation, one stream per micro-batch with it; one per rank. */
static void begin_micro(qb_qa_trainer *t, int k) {
    qb_ctx *ctx = t->m->ctx;
    int64_t step = t->opt.step;
    qb_ctx_step_reset(ctx);
    ctx->training = !t->o.disable_dropout;
    ctx->no_grad = false;
    ctx->rng_counter = ((uint64_t)(t->accum == 1 ? step + 1 : step * t->accum + k + 1) << DROPOUT_STREAM_SHIFT) |
                       ((uint64_t)t->rank << DROPOUT_RANK_SHIFT);
}

/* Forward and backward of one micro-batch (k of the step) with its loss scaled by weight; gradients add up. The loss
 * (unscaled) is left in *loss_out. With sync, the gradient all-reduce hooks this backward pass (qb_grad_sync_begin). */
static int micro_step(qb_qa_trainer *t, const qb_qa_batch *b, int k, float weight, qb_grad_sync *sync, float sync_weight, qb_tensor **loss_out,
                      qb_err *err) {
    qb_ctx *ctx = t->m->ctx;
    int64_t step = t->opt.step;
    begin_micro(t, k);
    qb_bert_batch view = qb_qa_batch_view(b);
    qb_tensor *t_start = NULL, *t_end = NULL;
    if (t->o.teacher && teacher_logits(t, &view, &t_start, &t_end, err)) return -1;
    qb_bert_output out;
    int rc = qb_bert_question_answering(t->m, &view, b->start_positions, b->end_positions, &out);
    qb_tensor *loss = rc ? NULL : out.loss;
    if (loss && t->o.teacher)
        loss = qb_qa_distill_loss(ctx, out.logits, out.end_logits, t_start, t_end, loss, (float)t->o.kd_alpha, (float)t->o.kd_temperature);
    qb_tensor *unscaled = loss;
    if (loss && weight != 1.0f) loss = qb_scale(ctx, loss, weight);
    if (loss && sync && qb_grad_sync_begin(sync, t->o.comm, ctx, sync_weight, step + 1, err)) return -1;
    rc = loss ? qb_backward(ctx, loss) : -1;
    ctx->backward_hook = NULL;
    if (rc) return qb_errorf(err, "train step %lld: %s", (long long)step + 1, ctx->err.msg);
    *loss_out = unscaled;
    return 0;
}

/* The step on N ranks: accum global micro-batches, this rank's rows of each (maybe none); the gradients of the
 * step's mean loss summed over the ranks (weighted by rows / the step's rows: in the all-reduce without accumulation,
 * in the loss with it), the bucketed all-reduce overlapped with the last backward pass on a device backend; then the
 * same clipping and update on every rank; a non-finite loss on any rank stops them all. */
static int data_parallel_step(qb_qa_trainer *t, double lr, qb_qa_step_stats *s, qb_err *err) {
    qb_ctx *ctx = t->m->ctx;
    long long step = (long long)t->opt.step + 1;
    int64_t first, step_rows = 0;
    int rows, global_rows;
    for (int k = 0; k < t->accum; k++) { /* the step's rows over every rank */
        qb_shard_batch(t->f->n, t->o.batch_size, t->world, t->rank, (t->step % t->steps_per_epoch) * t->accum + k, &first, &rows, &global_rows);
        step_rows += global_rows;
    }
    if (step_rows == 0) return qb_errorf(err, "train step %lld: no rows", step);
    double loss[1] = {0.0};
    float sync_weight = 1.0f;
    qb_zero_grad(ctx);
    begin_micro(t, 0);
    for (int k = 0; k < t->accum; k++) {
        if (qb_qa_load_micro_batch(t, t->step, k, &t->batch, err)) return -1;
        bool last = k == t->accum - 1;
        float weight = (float)t->batch.batch / (float)step_rows;
        if (t->accum == 1) sync_weight = weight, weight = 1.0f; /* the all-reduce weighs: the one-rank arithmetic */
        if (t->batch.batch == 0) continue;
        qb_tensor *unscaled = NULL;
        if (micro_step(t, &t->batch, k, weight, last ? &t->sync : NULL, sync_weight, &unscaled, err)) return -1;
        float host = qb_item(ctx, unscaled);
        if (ctx->err.msg[0]) return qb_errorf(err, "train step %lld: %s", step, ctx->err.msg);
        loss[0] += (double)host * t->batch.batch / (double)step_rows;
    }
    t->global_rows = (int)step_rows;
    if (qb_grad_sync_end(&t->sync, t->o.comm, ctx, sync_weight, (int64_t)step, err) ||
        qb_comm_allreduce(t->o.comm, loss, 1, QB_COMM_F64, QB_COMM_SUM, "loss all-reduce", err))
        return -1;
    float *norm = qb_act_alloc(ctx, sizeof(float)), hnorm = 0.0f;
    int rc = !norm || (t->o.max_grad_norm > 0 ? qb_clip_grad_norm_dev(ctx, t->o.max_grad_norm, norm) : qb_grad_norm_dev(ctx, norm)) ||
             qb_download(ctx, &hnorm, norm, sizeof hnorm);
    if (rc) return qb_errorf(err, "train step %lld: %s", step, ctx->err.msg);
    s->loss = (float)loss[0];
    s->grad_norm = hnorm;
    if (!isfinite(s->loss) || !isfinite(s->grad_norm))
        return qb_errorf(err, "train step %lld: loss %g, gradient norm %g over %d ranks (not finite)", step, (double)s->loss, s->grad_norm,
                         t->world);
    if (qb_adamw_step(&t->opt, ctx, (float)lr)) return qb_errorf(err, "train step %lld: %s", step, ctx->err.msg);
    return 0;
}

/* Clipping (or the norm alone), the step's host read of loss and norm, the finite check and AdamW. */
static int finish_step(qb_qa_trainer *t, const qb_tensor *loss, double loss_prior, float weight, double lr, qb_qa_step_stats *s,
                       qb_err *err) {
    qb_ctx *ctx = t->m->ctx;
    /* the step's one host synchronisation: loss and gradient norm side by side, read together */
    float *stats = qb_act_alloc(ctx, 2 * sizeof(float)), host[2];
    /* clipping runs after the finite check, so that a non-finite gradient is found where it arose */
    int rc = !stats || qb_copy_to_device(ctx, stats, loss) || qb_grad_norm_dev(ctx, stats + 1) ||
             qb_download(ctx, host, stats, sizeof host);
    if (rc) return qb_errorf(err, "train step %lld: %s", (long long)t->opt.step + 1, ctx->err.msg);
    s->loss = weight == 1.0f ? host[0] : (float)(loss_prior + (double)weight * (double)host[0]);
    s->grad_norm = host[1];
    if (!isfinite(s->loss) || !isfinite(s->grad_norm)) {
        char what[400];
        first_non_finite(ctx, !isfinite(s->loss), what, sizeof what);
        return qb_errorf(err, "train step %lld: loss %g, gradient norm %g (not finite); first non-finite tensor: %s", (long long)t->opt.step + 1,
                         (double)s->loss, s->grad_norm, what);
    }
    if (t->o.max_grad_norm > 0 && qb_grad_clip_dev(ctx, t->o.max_grad_norm, stats + 1))
        return qb_errorf(err, "train step %lld: %s", (long long)t->opt.step + 1, ctx->err.msg);
    if (qb_adamw_step(&t->opt, ctx, (float)lr)) return qb_errorf(err, "train step %lld: %s", (long long)t->opt.step + 1, ctx->err.msg);
    return 0;
}

int qb_qa_train_step(qb_qa_trainer *t, const qb_qa_batch *b, double lr, qb_qa_step_stats *s, qb_err *err) {
    qb_tensor *loss = NULL;
    if (t->world > 1) return data_parallel_step(t, lr, s, err); /* loads this rank's share of the step itself */
    qb_zero_grad(t->m->ctx);
    if (micro_step(t, b, 0, 1.0f, NULL, 1.0f, &loss, err)) return -1;
    return finish_step(t, loss, 0.0, 1.0f, lr, s, err);
}

int qb_qa_accumulated_step(qb_qa_trainer *t, double lr, qb_qa_step_stats *s, qb_err *err) {
    if (t->world > 1) return data_parallel_step(t, lr, s, err);
    if (t->accum == 1) return qb_qa_load_batch(t, t->step, &t->batch, err) || qb_qa_train_step(t, &t->batch, lr, s, err) ? -1 : 0;
    int64_t n = t->f->n, bs = t->o.batch_size, first = (t->step % t->steps_per_epoch) * t->accum * bs;
    int64_t rows = n - first < bs * t->accum ? n - first : bs * t->accum;
    qb_ctx *ctx = t->m->ctx;
    qb_zero_grad(ctx);
    double prior = 0.0;  /* the weighted losses of the micro-batches before the last */
    int micro = (int)((rows + bs - 1) / bs);
    for (int k = 0; k < micro; k++) {
        qb_tensor *loss_t = NULL;
        if (qb_qa_load_micro_batch(t, t->step, k, &t->batch, err)) return -1;
        float weight = (float)t->batch.batch / (float)rows;
        if (micro_step(t, &t->batch, k, weight, NULL, 1.0f, &loss_t, err)) return -1;
        if (k == micro - 1) return finish_step(t, loss_t, prior, weight, lr, s, err);
        float loss = qb_item(ctx, loss_t);
        if (ctx->err.msg[0]) return qb_errorf(err, "train step %lld: %s", (long long)t->step + 1, ctx->err.msg);
        prior += (double)weight * (double)loss;
    }
    return qb_errorf(err, "train step %lld: no rows", (long long)t->step + 1);
}

/* Writes the checkpoint files into dir (a staging directory). */
static int write_checkpoint(qb_qa_trainer *t, const char *dir, qb_err *err) {
    qb_train_state_info info = {.global_step = t->step, .max_steps = t->total_steps, .seed = (int64_t)t->o.seed,
                                .train_batch_size = (int64_t)t->o.batch_size * t->world * t->accum, .num_train_features = t->f->n,
                                .epoch = (double)t->step / (double)t->steps_per_epoch, .best_step = t->best_step,
                                .best_metric = t->best_metric};
    if (qb_train_state_save(dir, t->m, &t->opt, &info, err)) return -1;
    if (t->o.tokenizer_dir && qb_copy_tokenizer_files(t->o.tokenizer_dir, dir, err)) return -1;
    return 0;
}

int qb_qa_trainer_save(qb_qa_trainer *t, const char *dir, qb_err *err) {
    qb_stage st;
    if (qb_stage_begin(&st, dir, err)) return -1;
    if (write_checkpoint(t, st.path, err) || qb_stage_commit(&st, err)) {
        qb_stage_abort(&st);
        return qb_err_context(err, "%s", dir);
    }
    return 0;
}

/* Where the run's progress goes: stdout lines, the live line, metrics.jsonl and TensorBoard. */
typedef struct train_log {
    qb_metrics_log ml, *mlp;
    qb_tb_writer tb;
    qb_progress bar;
} train_log;

static int tb_scalar(train_log *lg, const char *tag, int64_t step, double v, double wall, qb_err *err) {
    return qb_tb_scalar(&lg->tb, tag, step, (float)v, wall, err);
}

static int log_record(train_log *lg, const qb_qa_trainer *t, double loss, double lr, double grad_norm, double ex_per_s, qb_err *err) {
    double epoch = (double)t->step / (double)t->steps_per_epoch, wall = wall_now();
    char line[512];
    snprintf(line, sizeof line, "step %6lld/%lld  epoch %.2f  loss %.4f  lr %.3e  grad_norm %.3f  %.1f examples/s", (long long)t->step,
             (long long)t->total_steps, epoch, loss, lr, grad_norm, ex_per_s);
    qb_progress_log(&lg->bar, line);
    if (tb_scalar(lg, "train/loss", t->step, loss, wall, err) || tb_scalar(lg, "train/learning_rate", t->step, lr, wall, err) ||
        tb_scalar(lg, "train/grad_norm", t->step, grad_norm, wall, err) || tb_scalar(lg, "train/epoch", t->step, epoch, wall, err) ||
        tb_scalar(lg, "train/samples_per_second", t->step, ex_per_s, wall, err))
        return -1;
    if (!lg->mlp) return 0;
    json_t *r = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "step", (json_int_t)t->step, "epoch", epoch, "loss", loss, "learning_rate", lr,
                          "grad_norm", grad_norm, "examples_per_second", ex_per_s);
    if (!r) return qb_errorf(err, "train: out of memory");
    int rc = qb_metrics_log_append(lg->mlp, r, err);
    json_decref(r);
    return rc;
}

/* Evaluates at the current step; logs EM/F1 (stdout, metrics.jsonl, TensorBoard). */
static int evaluate_now(train_log *lg, qb_qa_trainer *t, double *metric, qb_err *err) {
    double em = NAN, f1 = NAN, t0 = now();
    if (t->o.evaluate(t->o.eval_user, t->m, t->step, &em, &f1, err)) return qb_err_context(err, "eval at step %lld", (long long)t->step);
    double epoch = (double)t->step / (double)t->steps_per_epoch, wall = wall_now();
    char line[256];
    snprintf(line, sizeof line, "eval: step %lld  exact_match %.2f  f1 %.2f  (%.1f s)", (long long)t->step, em, f1, now() - t0);
    qb_progress_log(&lg->bar, line);
    *metric = t->o.best_by_exact_match ? em : f1;
    if (tb_scalar(lg, "eval/exact_match", t->step, em, wall, err) || tb_scalar(lg, "eval/f1", t->step, f1, wall, err)) return -1;
    if (!lg->mlp) return 0;
    json_t *r = json_pack("{s:I, s:f, s:f, s:f}", "step", (json_int_t)t->step, "epoch", epoch, "eval_exact_match", em, "eval_f1", f1);
    if (!r) return qb_errorf(err, "train: out of memory");
    int rc = qb_metrics_log_append(lg->mlp, r, err);
    json_decref(r);
    return rc;
}

static int write_train_results(const qb_qa_trainer *t, const char *dir, double seconds, int64_t examples, double mean_loss, qb_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/train_results.json", dir);
    json_t *j = json_pack("{s:f, s:I, s:f, s:f, s:I, s:f}", "epoch", (double)t->step / (double)t->steps_per_epoch, "global_step",
                          (json_int_t)t->step, "train_loss", mean_loss, "train_runtime", seconds, "train_samples", (json_int_t)t->f->n,
                          "train_samples_per_second", seconds > 0 ? (double)examples / seconds : 0.0);
    char *text = j ? json_dumps(j, JSON_INDENT(4)) : NULL;
    json_decref(j);
    if (!text) return qb_errorf(err, "%s: out of memory", path);
    int rc = qb_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* The step of a "checkpoint-N" name, or -1. */
static int64_t checkpoint_step(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0 || !name[11]) return -1;
    int64_t v = 0;
    for (const char *p = name + 11; *p; p++) {
        if (*p < '0' || *p > '9' || v > INT64_MAX / 10 - 10) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* HF's _rotate_checkpoints: the oldest checkpoint-N beyond save_total_limit are removed; the best one is moved to
 * the second newest place first (so it stays), and a limit of 1 keeps 2 while the best is not the newest. */
static int rotate_checkpoints(qb_qa_trainer *t, train_log *lg, qb_err *err) {
    if (t->o.save_total_limit <= 0 || !t->o.output_dir) return 0;
    DIR *d = opendir(t->o.output_dir);
    if (!d) return qb_errorf(err, "%s: cannot list: %s", t->o.output_dir, strerror(errno));
    int64_t steps[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;) {
        int64_t s = checkpoint_step(e->d_name);
        if (s >= 0) steps[n++] = s;
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof steps[0], cmp_i64);
    for (int i = 0; i < n; i++)
        if (steps[i] == t->best_step && t->best_step > 0) {
            for (int j = i; j < n - 2; j++) {
                int64_t x = steps[j];
                steps[j] = steps[j + 1];
                steps[j + 1] = x;
            }
            break;
        }
    int64_t limit = t->o.save_total_limit;
    if (limit == 1 && t->best_step > 0 && n > 0 && steps[n - 1] != t->best_step) limit = 2;
    for (int i = 0; i < n - limit; i++) {
        char path[4200], line[4300];
        snprintf(path, sizeof path, "%s/checkpoint-%lld", t->o.output_dir, (long long)steps[i]);
        if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) return qb_errorf(err, "%s: cannot remove: %s", path, strerror(errno));
        snprintf(line, sizeof line, "train: removed %s (save_total_limit %lld)", path, (long long)t->o.save_total_limit);
        qb_progress_log(&lg->bar, line);
    }
    return 0;
}

/* load_best_model_at_end: the weights of the best checkpoint-N (when it is not the current step). */
static int load_best(qb_qa_trainer *t, train_log *lg, qb_err *err) {
    if (!t->o.load_best_model_at_end || t->best_step <= 0 || t->best_step == t->step) return 0;
    char path[4200], line[4400];
    snprintf(path, sizeof path, "%s/checkpoint-%lld/model.safetensors", t->o.output_dir, (long long)t->best_step);
    if (qb_bert_load_safetensors(t->m, path, NULL, err)) return qb_err_context(err, "train.load_best_model_at_end");
    for (int i = 0; i < t->m->n_quant; i++)
        if (tensor_quantizer_reload_learned(t->m->ctx, &t->m->quant[i].tq))
            return qb_errorf(err, "train.load_best_model_at_end: %s", t->m->ctx->err.msg);
    snprintf(line, sizeof line, "train: loaded the best model, checkpoint-%lld (%s %.2f)", (long long)t->best_step,
             t->o.best_by_exact_match ? "exact_match" : "f1", t->best_metric);
    qb_progress_log(&lg->bar, line);
    return 0;
}

static int open_logs(train_log *lg, qb_qa_trainer *t, qb_err *err) {
    memset(lg, 0, sizeof *lg);
    qb_progress_init(&lg->bar, t->o.log, t->o.live_progress, t->total_steps, t->step, now());
    if (!t->o.output_dir) return 0;
    char path[4200];
    if (qb_mkdir_p(t->o.output_dir, err)) return -1;
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->o.output_dir);
    if (qb_metrics_log_open(&lg->ml, path, t->resumed_from > 0 ? t->resumed_from : -1, err)) return -1;
    lg->mlp = &lg->ml;
    if (!t->o.tensorboard) return 0;
    double wall = wall_now();
    if (t->o.logging_dir && t->o.logging_dir[0]) snprintf(path, sizeof path, "%s", t->o.logging_dir);
    else qb_tb_default_logdir(path, sizeof path, t->o.output_dir, wall);
    if (qb_tb_open(&lg->tb, path, wall, err)) return qb_metrics_log_close(lg->mlp), -1;
    return 0;
}

static void close_logs(train_log *lg) {
    qb_progress_finish(&lg->bar);
    qb_tb_close(&lg->tb);
    if (lg->mlp) qb_metrics_log_close(lg->mlp);
}

int qb_qa_train(qb_qa_trainer *t, int64_t stop_at, qb_err *err) {
    int64_t end = stop_at > 0 && stop_at < t->total_steps ? stop_at : t->total_steps;
    train_log lg;
    char path[4096], line[4400];
    if (open_logs(&lg, t, err)) return -1;
    if (t->o.log) {
        char batch[128];
        if (t->accum > 1 && t->world > 1)
            snprintf(batch, sizeof batch, "global batch %lld (%d per device x %d ranks x %d accumulated)",
                     (long long)t->o.batch_size * t->world * t->accum, t->o.batch_size, t->world, t->accum);
        else if (t->accum > 1) snprintf(batch, sizeof batch, "batch %d x %d accumulated", t->o.batch_size, t->accum);
        else if (t->world > 1)
            snprintf(batch, sizeof batch, "global batch %lld (%d per device x %d ranks)", (long long)t->o.batch_size * t->world,
                     t->o.batch_size, t->world);
        else snprintf(batch, sizeof batch, "batch %d", t->o.batch_size);
        snprintf(line, sizeof line, "train: %lld features, %s, %lld steps/epoch, %lld steps (%s lr %.3g, warmup %lld)%s%s%s",
                 (long long)t->f->n, batch, (long long)t->steps_per_epoch, (long long)t->total_steps, qb_lr_kind_name(t->sched.kind),
                 t->sched.base_lr, (long long)t->sched.warmup_steps, t->step ? " resumed" : "", lg.tb.fp ? "; TensorBoard: " : "",
                 lg.tb.fp ? lg.tb.path : "");
        qb_progress_log(&lg.bar, line);
    }
    double t_start = now(), t_window = t_start, window_loss = 0.0, sum_loss = 0.0;
    int64_t window_steps = 0, window_examples = 0, examples = 0, steps_run = 0;
    int rc = 0;
    while (!rc && t->step < end) {
        double lr = qb_lr_at(&t->sched, t->step);
        qb_qa_step_stats s;
        int64_t first = (t->step % t->steps_per_epoch) * t->accum * t->o.batch_size;
        int64_t rows = t->f->n - first < (int64_t)t->accum * t->o.batch_size ? t->f->n - first : (int64_t)t->accum * t->o.batch_size;
        rc = qb_qa_accumulated_step(t, lr, &s, err);
        if (!rc && t->step >= t->n_losses) {  /* grown as steps run: memory follows the steps taken, not the plan */
            int64_t cap = t->n_losses ? 2 * t->n_losses : 1024;
            while (cap <= t->step) cap *= 2;  /* a resumed run starts past the first block */
            if (cap > t->total_steps) cap = t->total_steps;
            float *l = realloc(t->losses, (size_t)cap * sizeof *l);
            if (!l) rc = qb_errorf(err, "train: out of memory");
            else {
                for (int64_t i = t->n_losses; i < cap; i++) l[i] = NAN;
                t->losses = l;
                t->n_losses = cap;
            }
        }
        if (rc) break;
        t->losses[t->step] = s.loss;
        t->step++;
        steps_run++;
        window_loss += s.loss;
        sum_loss += s.loss;
        window_steps++;
        window_examples += t->world > 1 ? t->global_rows : rows;
        examples += t->world > 1 ? t->global_rows : rows;
        bool last = t->step == end;
        double tn = now();
        qb_progress_state ps = {.step = t->step, .epoch = (double)t->step / (double)t->steps_per_epoch, .loss = s.loss,
                                .lr = qb_lr_at(&t->sched, t->step), .samples_per_s = tn > t_start ? (double)examples / (tn - t_start) : 0.0};
        qb_progress_update(&lg.bar, &ps, tn);
        if (t->step == t->resumed_from + 1 || last || (t->o.logging_steps > 0 && t->step % t->o.logging_steps == 0)) {
            /* HF logs lr_scheduler.get_last_lr() after scheduler.step(): the rate of the next step */
            rc = log_record(&lg, t, window_loss / (double)window_steps, qb_lr_at(&t->sched, t->step), s.grad_norm,
                            (double)window_examples / (tn - t_window), err);
            t_window = tn;
            window_loss = 0.0;
            window_steps = window_examples = 0;
        }
        bool final = t->step == t->total_steps;
        bool save = t->o.output_dir && t->o.save_steps > 0 && t->step % t->o.save_steps == 0 && !last;
        double metric = NAN;
        if (!rc && t->o.eval_steps > 0 && (t->step % t->o.eval_steps == 0 || (final && t->o.load_best_model_at_end)))
            rc = evaluate_now(&lg, t, &metric, err);
        if (!rc && !isnan(metric) && (save || final) && (t->best_step <= 0 || metric > t->best_metric)) {
            t->best_step = t->step;
            t->best_metric = metric;
        }
        if (!rc && save) {
            snprintf(path, sizeof path, "%s/checkpoint-%lld", t->o.output_dir, (long long)t->step);
            rc = qb_qa_trainer_save(t, path, err);
            if (!rc) {
                snprintf(line, sizeof line, "train: saved %s", path);
                qb_progress_log(&lg.bar, line);
                rc = rotate_checkpoints(t, &lg, err);
            }
        }
    }
    double seconds = now() - t_start;
    if (!rc && t->o.output_dir && t->step == t->total_steps) rc = load_best(t, &lg, err);
    if (!rc && t->o.output_dir) {  /* the final model replaces the one in output_dir as a unit; the rest is carried over */
        qb_stage st;
        rc = qb_stage_begin_update(&st, t->o.output_dir, qb_model_unit_files, err);
        if (!rc) rc = write_checkpoint(t, st.path, err);
        if (!rc) rc = write_train_results(t, st.path, seconds, examples, steps_run ? sum_loss / (double)steps_run : 0.0, err);
        if (!rc) rc = qb_stage_commit(&st, err);
        if (rc) qb_stage_abort(&st);
        snprintf(line, sizeof line, "train: saved %s (step %lld)", t->o.output_dir, (long long)t->step);
        if (!rc) qb_progress_log(&lg.bar, line);
    }
    if (!rc && t->o.log) {
        snprintf(line, sizeof line, "train: %lld steps in %.1f s (%.2f examples/s), mean loss %.4f", (long long)steps_run, seconds,
                 seconds > 0 ? (double)examples / seconds : 0.0, steps_run ? sum_loss / (double)steps_run : NAN);
        qb_progress_log(&lg.bar, line);
    }
    close_logs(&lg);
    return rc;
}

void qb_qa_trainer_free(qb_qa_trainer *t) {
    qb_adamw_free(&t->opt);
    qb_qa_batch_free(&t->batch);
    qb_grad_sync_free(&t->sync);
    free(t->order);
    free(t->losses);
    free(t->teacher_host);
    t->teacher_host = NULL;
    t->order = NULL;
    t->losses = NULL;
    t->n_losses = 0;
}
