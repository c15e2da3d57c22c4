/* qa_train.c: see qa_train.h. */
#include "train/qa_train.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/fileio.h"
#include "base/staging.h"
#include "model/heads.h"
#include "train/clip_grad.h"
#include "train/metrics_log.h"
#include "train/shuffle.h"
#include "train/train_state.h"

#define DROPOUT_STREAM_SHIFT 36 /* each step's dropout counters start at (step + 1) << 36 */
#define DROPOUT_RANK_SHIFT 56   /* ... plus rank << 56 (256 ranks, 2^20 steps apart) */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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
    if (o->max_steps > QB_QA_MAX_STEPS || o->warmup_steps > QB_QA_MAX_STEPS)
        return qb_errorf(err, "train.max_steps / train.warmup_steps: %lld / %lld is above %lld", (long long)o->max_steps,
                         (long long)o->warmup_steps, (long long)QB_QA_MAX_STEPS);
    int64_t global_batch = (int64_t)o->batch_size * t->world;
    t->steps_per_epoch = (f->n + global_batch - 1) / global_batch;
    double epoch_steps = o->max_steps > 0 ? 0.0 : ceil(o->epochs * (double)t->steps_per_epoch);
    if (!(epoch_steps <= (double)QB_QA_MAX_STEPS))
        return qb_errorf(err, "train.epochs: %g epochs of %lld steps is above %lld steps", o->epochs, (long long)t->steps_per_epoch,
                         (long long)QB_QA_MAX_STEPS);
    t->total_steps = o->max_steps > 0 ? o->max_steps : (int64_t)epoch_steps;
    t->sched = (qb_lr_schedule){.kind = o->scheduler, .base_lr = o->learning_rate, .total_steps = t->total_steps,
                                .warmup_steps = qb_lr_warmup_steps(o->warmup_steps, o->warmup_ratio, t->total_steps)};
    t->order = malloc((size_t)f->n * sizeof *t->order);
    if (!t->order) return qb_qa_trainer_free(t), qb_errorf(err, "train: out of memory");
    if (qb_qa_batch_init(&t->batch, o->batch_size, f->max_len, err)) return qb_qa_trainer_free(t), -1;
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
    else if (info.train_batch_size != (int64_t)t->o.batch_size * t->world)
        what = "train_batch_size", got = info.train_batch_size, want = (int64_t)t->o.batch_size * t->world;
    else if (info.num_train_features != t->f->n) what = "num_train_features", got = info.num_train_features, want = t->f->n;
    if (what)
        return qb_errorf(err, "%s/trainer_state.json: %s %lld but this run has %lld (resume needs the same data order%s)", checkpoint_dir,
                         what, (long long)got, (long long)want,
                         strcmp(what, "train_batch_size") ? "" : "; it is the global batch, per-device batch x ranks");
    if (info.global_step > t->total_steps)
        return qb_errorf(err, "%s/trainer_state.json: global_step %lld is past this run's %lld steps", checkpoint_dir,
                         (long long)info.global_step, (long long)t->total_steps);
    t->step = t->resumed_from = info.global_step;
    return 0;
}

int qb_qa_load_batch(qb_qa_trainer *t, int64_t step, qb_qa_batch *b, qb_err *err) {
    if (step < 0) return qb_errorf(err, "train: step %lld", (long long)step);
    int64_t epoch = step / t->steps_per_epoch, k = step % t->steps_per_epoch, n = t->f->n, first;
    if (epoch != t->order_epoch) {
        qb_permutation(t->order, n, t->o.seed, (uint64_t)epoch);
        t->order_epoch = epoch;
    }
    int rows;
    qb_shard_batch(n, t->o.batch_size, t->world, t->rank, k, &first, &rows, &t->global_rows);
    qb_qa_batch_gather(b, t->f, t->order + first, rows);
    return 0;
}

/* The step on N ranks: this rank's rows (maybe none), gradients and loss weighted by rows / global rows and summed
 * over the ranks, then the same clipping and update on every rank; a non-finite loss on any rank stops them all. */
static int data_parallel_step(qb_qa_trainer *t, const qb_qa_batch *b, double lr, qb_qa_step_stats *s, qb_err *err) {
    qb_ctx *ctx = t->m->ctx;
    long long step = (long long)t->opt.step + 1;
    double loss[1] = {0.0};
    float weight = (float)b->batch / (float)t->global_rows, host = 0.0f;
    if (b->batch > 0) {
        qb_bert_batch view = qb_qa_batch_view(b);
        qb_bert_output out;
        if (qb_bert_question_answering(t->m, &view, b->start_positions, b->end_positions, &out) || qb_backward(ctx, out.loss) ||
            qb_download(ctx, &host, out.loss->data, sizeof host))
            return qb_errorf(err, "train step %lld: %s", step, ctx->err.msg);
        loss[0] = (double)host * b->batch / t->global_rows;
    }
    if (qb_grad_sync_run(&t->sync, t->o.comm, ctx, weight, (int64_t)step, err) ||
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

int qb_qa_train_step(qb_qa_trainer *t, const qb_qa_batch *b, double lr, qb_qa_step_stats *s, qb_err *err) {
    qb_ctx *ctx = t->m->ctx;
    qb_ctx_step_reset(ctx);
    ctx->training = true;
    ctx->no_grad = false;
    ctx->rng_counter = ((uint64_t)(t->opt.step + 1) << DROPOUT_STREAM_SHIFT) | ((uint64_t)t->rank << DROPOUT_RANK_SHIFT);
    qb_zero_grad(ctx);
    if (t->world > 1) return data_parallel_step(t, b, lr, s, err);
    qb_bert_batch view = qb_qa_batch_view(b);
    qb_bert_output out;
    int rc = qb_bert_question_answering(t->m, &view, b->start_positions, b->end_positions, &out);
    if (!rc) rc = qb_backward(ctx, out.loss);
    if (rc) return qb_errorf(err, "train step %lld: %s", (long long)t->opt.step + 1, ctx->err.msg);
    /* the step's one host synchronisation: loss and gradient norm side by side, read together; clipping runs after the
     * check, so that a non-finite gradient is found where it arose */
    float *stats = qb_act_alloc(ctx, 2 * sizeof(float)), host[2];
    rc = !stats || qb_device_copy(ctx, stats, out.loss->data, sizeof(float)) || qb_grad_norm_dev(ctx, stats + 1) ||
         qb_download(ctx, host, stats, sizeof host);
    if (rc) return qb_errorf(err, "train step %lld: %s", (long long)t->opt.step + 1, ctx->err.msg);
    s->loss = host[0];
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

/* Writes the checkpoint files into dir (a staging directory). */
static int write_checkpoint(qb_qa_trainer *t, const char *dir, qb_err *err) {
    qb_train_state_info info = {.global_step = t->step, .max_steps = t->total_steps, .seed = (int64_t)t->o.seed,
                                .train_batch_size = (int64_t)t->o.batch_size * t->world, .num_train_features = t->f->n,
                                .epoch = (double)t->step / (double)t->steps_per_epoch};
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

static int log_record(qb_metrics_log *ml, const qb_qa_trainer *t, double loss, double lr, double grad_norm, double ex_per_s, qb_err *err) {
    double epoch = (double)t->step / (double)t->steps_per_epoch;
    if (t->o.log)
        fprintf(t->o.log, "step %6lld/%lld  epoch %.2f  loss %.4f  lr %.3e  grad_norm %.3f  %.1f examples/s\n", (long long)t->step,
                (long long)t->total_steps, epoch, loss, lr, grad_norm, ex_per_s);
    if (!ml) return 0;
    json_t *r = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "step", (json_int_t)t->step, "epoch", epoch, "loss", loss, "learning_rate", lr,
                          "grad_norm", grad_norm, "examples_per_second", ex_per_s);
    if (!r) return qb_errorf(err, "train: out of memory");
    int rc = qb_metrics_log_append(ml, r, err);
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

int qb_qa_train(qb_qa_trainer *t, int64_t stop_at, qb_err *err) {
    int64_t end = stop_at > 0 && stop_at < t->total_steps ? stop_at : t->total_steps;
    qb_metrics_log ml, *mlp = NULL;
    char path[4096];
    if (t->o.output_dir) {
        if (qb_mkdir_p(t->o.output_dir, err)) return -1;
        snprintf(path, sizeof path, "%s/metrics.jsonl", t->o.output_dir);
        if (qb_metrics_log_open(&ml, path, t->resumed_from > 0 ? t->resumed_from : -1, err)) return -1;
        mlp = &ml;
    }
    if (t->o.log)
        fprintf(t->o.log,
                "train: %lld features, global batch %lld (%d per device x %d ranks), %lld steps/epoch, %lld steps (%s lr %.3g, warmup %lld)%s\n",
                (long long)t->f->n, (long long)t->o.batch_size * t->world, t->o.batch_size, t->world, (long long)t->steps_per_epoch,
                (long long)t->total_steps, qb_lr_kind_name(t->sched.kind), t->sched.base_lr, (long long)t->sched.warmup_steps, t->step ? " resumed" : "");
    double t_start = now(), t_window = t_start, window_loss = 0.0, sum_loss = 0.0;
    int64_t window_steps = 0, window_examples = 0, examples = 0, steps_run = 0;
    int rc = 0;
    while (!rc && t->step < end) {
        double lr = qb_lr_at(&t->sched, t->step);
        qb_qa_step_stats s;
        rc = qb_qa_load_batch(t, t->step, &t->batch, err);
        if (!rc) rc = qb_qa_train_step(t, &t->batch, lr, &s, err);
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
        window_examples += t->global_rows;
        examples += t->global_rows;
        bool last = t->step == end;
        if (t->step == t->resumed_from + 1 || last || (t->o.logging_steps > 0 && t->step % t->o.logging_steps == 0)) {
            double tn = now();
            /* HF logs lr_scheduler.get_last_lr() after scheduler.step(): the rate of the next step */
            rc = log_record(mlp, t, window_loss / (double)window_steps, qb_lr_at(&t->sched, t->step), s.grad_norm,
                            (double)window_examples / (tn - t_window), err);
            t_window = tn;
            window_loss = 0.0;
            window_steps = window_examples = 0;
        }
        if (!rc && t->o.output_dir && t->o.save_steps > 0 && t->step % t->o.save_steps == 0 && !last) {
            snprintf(path, sizeof path, "%s/checkpoint-%lld", t->o.output_dir, (long long)t->step);
            rc = qb_qa_trainer_save(t, path, err);
            if (!rc && t->o.log) fprintf(t->o.log, "train: saved %s\n", path);
        }
    }
    double seconds = now() - t_start;
    if (!rc && t->o.output_dir) {  /* the final model replaces the one in output_dir as a unit; the rest is carried over */
        qb_stage st;
        rc = qb_stage_begin_update(&st, t->o.output_dir, qb_model_unit_files, err);
        if (!rc) rc = write_checkpoint(t, st.path, err);
        if (!rc) rc = write_train_results(t, st.path, seconds, examples, steps_run ? sum_loss / (double)steps_run : 0.0, err);
        if (!rc) rc = qb_stage_commit(&st, err);
        if (rc) qb_stage_abort(&st);
        if (!rc && t->o.log) fprintf(t->o.log, "train: saved %s (step %lld)\n", t->o.output_dir, (long long)t->step);
    }
    if (!rc && t->o.log)
        fprintf(t->o.log, "train: %lld steps in %.1f s (%.2f examples/s), mean loss %.4f\n", (long long)steps_run, seconds,
                seconds > 0 ? (double)examples / seconds : 0.0, steps_run ? sum_loss / (double)steps_run : NAN);
    if (mlp) qb_metrics_log_close(mlp);
    return rc;
}

void qb_qa_trainer_free(qb_qa_trainer *t) {
    qb_adamw_free(&t->opt);
    qb_qa_batch_free(&t->batch);
    qb_grad_sync_free(&t->sync);
    free(t->order);
    free(t->losses);
    t->order = NULL;
    t->losses = NULL;
    t->n_losses = 0;
}
