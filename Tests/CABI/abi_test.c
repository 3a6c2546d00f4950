/*
 * abi_test.c — Lichen's C ABI tested as a robot binary uses it: plain C11 over lichen.h and the
 * static library, nothing else. It calls every function of lichen.h: each method (source,
 * BN-adapt, Tent, CoTTA, RMT, with LoRA trainables and the collapse guard; online learning with
 * lichen_learn), every status a
 * caller can provoke, misuse (NULL pointers, wrong sizes, calls in the wrong order, a second
 * lichen_model_load), NaN frames, and checks that a failed call changes nothing: a twin
 * runtime given the same plan and frames, but none of the failing calls, must predict the same
 * logits bit for bit afterwards.
 *
 *   abi_test MODEL.gguf SOURCE_PACK.stream [ADAPTER.gguf]
 *
 * Frames are made here (a seeded generator); the source pack comes from `lichen source-pack`.
 * Prints one line per failed check and ends with "abi_test: N passed, M failed"; exit status 0
 * only when nothing failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lichen.h"

static int passed = 0, failed = 0;

#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (cond) {                                                   \
            passed++;                                                 \
        } else {                                                      \
            failed++;                                                 \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);      \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
        }                                                             \
    } while (0)

#define EXPECT_STATUS(call, want)                                                                       \
    do {                                                                                                \
        lichen_status got_ = (call);                                                                    \
        CHECK(got_ == (want), "%s: got %s, expected %s", #call, lichen_status_string(got_),              \
              lichen_status_string(want));                                                              \
    } while (0)

/* A copy of `base` with `change` applied (on p_) must be refused by lichen_method_set with `want`. */
#define EXPECT_REFUSED(rt, base, change, want)                                                          \
    do {                                                                                                \
        lichen_method_params p_ = (base);                                                               \
        change;                                                                                         \
        lichen_status got_ = lichen_method_set((rt), &p_);                                              \
        CHECK(got_ == (want), "lichen_method_set with %s: got %s, expected %s", #change,                \
              lichen_status_string(got_), lichen_status_string(want));                                  \
    } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static float uniform01(void) {
    rng_state += 0x9E3779B97F4A7C15u;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    return (float)(z >> 40) / (float)(1u << 24);
}

#define FRAMES 48
#define MAX_VALUES 4096
#define MAX_CLASSES 64
static float frames[FRAMES][MAX_VALUES];

static lichen_runtime *make_runtime(const char *model) {
    lichen_runtime_params p = lichen_runtime_default_params();
    p.budget_bytes = (size_t)96 << 20;
    lichen_runtime *rt = NULL;
    lichen_status s = lichen_runtime_create(&p, &rt);
    CHECK(s == LICHEN_STATUS_OK && rt != NULL, "lichen_runtime_create: %s", lichen_status_string(s));
    if (!rt) return NULL;
    s = lichen_model_load(rt, model);
    CHECK(s == LICHEN_STATUS_OK, "lichen_model_load(%s): %s", model, lichen_status_string(s));
    return rt;
}

static void last_error(lichen_runtime *rt, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    lichen_last_error(rt, buf, cap, &n);
}

/* Steps `count` frames from `first` on both runtimes; every logit must agree bit for bit. */
static int step_twins(lichen_runtime *a, lichen_runtime *b, size_t values, size_t classes, int first, int count,
                      const char *what) {
    int same = 1;
    for (int i = first; i < first + count; i++) {
        float za[MAX_CLASSES], zb[MAX_CLASSES];
        int32_t ka = -1, kb = -2;
        lichen_status sa = lichen_step(a, frames[i % FRAMES], values, za, classes, &ka);
        lichen_status sb = lichen_step(b, frames[i % FRAMES], values, zb, classes, &kb);
        if (sa != LICHEN_STATUS_OK || sb != LICHEN_STATUS_OK || ka != kb || memcmp(za, zb, classes * sizeof(float)) != 0) {
            same = 0;
        }
    }
    CHECK(same, "%s: the twins' predictions differ", what);
    return same;
}

/* One method: its plan on two twins, failing calls on the first, predictions compared. */
static void method_case(const char *model, lichen_method_params mp, const char *name, size_t values, size_t classes) {
    lichen_runtime *a = make_runtime(model), *b = make_runtime(model);
    if (!a || !b) return;
    lichen_status sa = lichen_method_set(a, &mp), sb = lichen_method_set(b, &mp);
    char message[512];
    last_error(a, message, sizeof message);
    CHECK(sa == LICHEN_STATUS_OK && sb == LICHEN_STATUS_OK, "%s: lichen_method_set: %s (%s)", name, lichen_status_string(sa),
          message);
    uint64_t setup = 0;
    EXPECT_STATUS(lichen_method_setup_ns(a, &setup), LICHEN_STATUS_OK);
    step_twins(a, b, values, classes, 0, 20, name);

    // Failing calls on `a` only: none may change anything.
    float z[MAX_CLASSES];
    float bad[MAX_VALUES];
    memcpy(bad, frames[0], values * sizeof(float));
    bad[values / 2] = NAN;
    EXPECT_STATUS(lichen_step(a, bad, values, z, classes, NULL), LICHEN_STATUS_NON_FINITE);
    bad[values / 2] = INFINITY;
    EXPECT_STATUS(lichen_step(a, bad, values, z, classes, NULL), LICHEN_STATUS_NON_FINITE);
    EXPECT_STATUS(lichen_step(a, frames[0], values - 1, z, classes, NULL), LICHEN_STATUS_SHAPE_MISMATCH);
    EXPECT_STATUS(lichen_step(a, frames[0], values, z, classes - 1, NULL), LICHEN_STATUS_BUFFER_TOO_SMALL);
    EXPECT_STATUS(lichen_step(a, NULL, values, z, classes, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_step(a, frames[0], values, NULL, classes, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(a, mp, p_.window = 0, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(a, mp, p_.window = 100000, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(a, mp, p_.learning_rate = NAN, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(a, mp, p_.method = (lichen_method)99, LICHEN_STATUS_INVALID_ARGUMENT);
    int trains = mp.method == LICHEN_METHOD_TENT || mp.method == LICHEN_METHOD_COTTA || mp.method == LICHEN_METHOD_RMT;
    if (trains) {
        EXPECT_REFUSED(a, mp, p_.full = 1, LICHEN_STATUS_INVALID_ARGUMENT);  // full mode trains every parameter: a quantized model cannot
        EXPECT_REFUSED(a, mp, p_.lora_rank = 1; p_.lora_targets = "no_such_layer", LICHEN_STATUS_NOT_FOUND);
    }
    EXPECT_REFUSED(a, mp, p_.method = LICHEN_METHOD_RMT; p_.source_pack = "/nonexistent/pack.stream", LICHEN_STATUS_FILE_ERROR);
    EXPECT_REFUSED(a, mp, p_.method = LICHEN_METHOD_RMT; p_.source_pack = model, LICHEN_STATUS_MALFORMED);  // a model file is no source pack
    EXPECT_REFUSED(a, mp, p_.method = LICHEN_METHOD_RMT; p_.source_pack = NULL, LICHEN_STATUS_INVALID_ARGUMENT);  // RMT needs source frames
    EXPECT_STATUS(lichen_model_load(a, model), LICHEN_STATUS_INVALID_ARGUMENT);  // once per runtime
    unsigned char junk[64] = {0};
    EXPECT_STATUS(lichen_checkpoint_restore(a, junk, sizeof junk), LICHEN_STATUS_MALFORMED);

    lichen_metrics ma, mb;
    EXPECT_STATUS(lichen_metrics_get(a, &ma), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(b, &mb), LICHEN_STATUS_OK);
    CHECK(ma.method == (uint32_t)mp.method, "%s: metrics.method %u", name, ma.method);
    CHECK(ma.updates == mb.updates && ma.rejected_frames == mb.rejected_frames + 2,
          "%s: updates %llu/%llu, rejected %llu/%llu", name, (unsigned long long)ma.updates, (unsigned long long)mb.updates,
          (unsigned long long)ma.rejected_frames, (unsigned long long)mb.rejected_frames);
    step_twins(a, b, values, classes, 20, 28, name);
    EXPECT_STATUS(lichen_metrics_get(a, &ma), LICHEN_STATUS_OK);
    // 48 frames, window and every 8: an update at frames 8, 16, ..., 48.
    CHECK(!trains || ma.updates == 6, "%s: %llu updates (expected 6)", name, (unsigned long long)ma.updates);
    CHECK(!trains || (ma.last_loss == ma.last_loss && ma.last_loss != 0), "%s: last loss %g", name, (double)ma.last_loss);

    // Checkpoint round trip on `a`, reset on both: the twins agree again.
    size_t size = 0, written = 0;
    EXPECT_STATUS(lichen_checkpoint_size(a, &size), LICHEN_STATUS_OK);
    unsigned char *ck = malloc(size ? size : 1);
    EXPECT_STATUS(lichen_checkpoint_save(a, ck, size, &written), LICHEN_STATUS_OK);
    CHECK(written == size, "%s: checkpoint wrote %zu of %zu bytes", name, written, size);
    if (size > 0) EXPECT_STATUS(lichen_checkpoint_save(a, ck, size - 1, &written), LICHEN_STATUS_BUFFER_TOO_SMALL);
    EXPECT_STATUS(lichen_checkpoint_restore(a, ck, size), LICHEN_STATUS_OK);
    free(ck);
    EXPECT_STATUS(lichen_reset(a), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_reset(b), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(a, &ma), LICHEN_STATUS_OK);
    CHECK(ma.resets == 1, "%s: %llu resets", name, (unsigned long long)ma.resets);
    lichen_runtime_destroy(a);
    lichen_runtime_destroy(b);
}


/* Learner mode: lichen_step predicts through published versions while a learner thread
 * updates; steps until `versions` versions were published (1 ms between steps, at most
 * `seconds`), then checks the learner's metrics, a checkpoint round trip, the refusals, and a
 * teardown while a job may run. */
static void learner_case(const char *model, lichen_method_params mp, const char *name, size_t values, size_t classes,
                         uint64_t versions, int seconds) {
    lichen_runtime *rt = make_runtime(model);
    if (!rt) return;
    mp.learner = 1;
    char message[512];
    lichen_status set = lichen_method_set(rt, &mp);
    last_error(rt, message, sizeof message);
    CHECK(set == LICHEN_STATUS_OK, "%s (learner): lichen_method_set: %s (%s)", name, lichen_status_string(set), message);
    lichen_metrics m;
    memset(&m, 0, sizeof m);
    float z[MAX_CLASSES];
    int steps = 0, finite = 1;
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < seconds * 1000; i++) {
        EXPECT_STATUS(lichen_step(rt, frames[i % FRAMES], values, z, classes, NULL), LICHEN_STATUS_OK);
        for (size_t k = 0; k < classes; k++) finite &= isfinite(z[k]) != 0;
        steps++;
        EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
        if (m.version >= versions) break;
        nanosleep(&pause, NULL);
    }
    CHECK(finite, "%s (learner): non-finite logits", name);
    CHECK(m.learner == 1, "%s (learner): metrics.learner %u", name, m.learner);
    CHECK(m.version >= versions, "%s (learner): version %llu after %d steps", name, (unsigned long long)m.version, steps);
    CHECK(m.updates >= 1 && m.torn_predictions == 0, "%s (learner): %llu updates, %llu torn", name,
          (unsigned long long)m.updates, (unsigned long long)m.torn_predictions);
    CHECK(m.update_p50_ns > 0 && m.update_p99_ns >= m.update_p50_ns && m.update_max_ns >= m.update_p99_ns,
          "%s (learner): update p50 %llu p99 %llu max %llu", name, (unsigned long long)m.update_p50_ns,
          (unsigned long long)m.update_p99_ns, (unsigned long long)m.update_max_ns);
    CHECK(m.max_learner_lag >= m.learner_lag, "%s (learner): lag %llu, max %llu", name, (unsigned long long)m.learner_lag,
          (unsigned long long)m.max_learner_lag);
    // A checkpoint taken while the learner runs (it waits for the job) restores.
    size_t size = 0, written = 0;
    EXPECT_STATUS(lichen_checkpoint_size(rt, &size), LICHEN_STATUS_OK);
    unsigned char *ck = malloc(size ? size : 1);
    EXPECT_STATUS(lichen_checkpoint_save(rt, ck, size, &written), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_checkpoint_restore(rt, ck, written), LICHEN_STATUS_OK);
    free(ck);
    EXPECT_STATUS(lichen_step(rt, frames[0], values, z, classes, NULL), LICHEN_STATUS_OK);
    // Settings the learner cannot take: refused, the running method carries on.
    EXPECT_REFUSED(rt, mp, p_.prediction = LICHEN_PREDICTION_WINDOW, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(rt, mp, p_.fused = 0, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(rt, mp, p_.learner_cpu = 100000, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(rt, mp, p_.learner_nice = 40, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(rt, mp, p_.learner = 7, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(rt, mp, p_.learner_cpu = 1000, LICHEN_STATUS_SYSTEM_ERROR);  // in range, but not a CPU this machine has
    if (mp.method == LICHEN_METHOD_TENT) {
        EXPECT_REFUSED(rt, mp, p_.lora_rank = 2, LICHEN_STATUS_INVALID_ARGUMENT);
    }
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.learner == 1 && m.method == (uint32_t)mp.method, "%s (learner): after refusals learner %u method %u", name,
          m.learner, m.method);
    // A few more steps (a job is likely running), then the teardown joins the learner.
    for (int i = 0; i < 40; i++) EXPECT_STATUS(lichen_step(rt, frames[i % FRAMES], values, z, classes, NULL), LICHEN_STATUS_OK);
    lichen_runtime_destroy(rt);
}

/* The state file: saved while stepping (synchronous and learner mode), restored by the next
 * runtime, a damaged file refused (status 2, the reason as the last error) and left in place;
 * the guard's reset to the last healthy state. */
static lichen_runtime *state_runtime(const char *model, const char *path, int overwrite) {
    lichen_runtime_params p = lichen_runtime_default_params();
    p.budget_bytes = (size_t)96 << 20;
    p.state_path = path;
    p.state_every_updates = 1;
    p.state_overwrite = overwrite;
    lichen_runtime *rt = NULL;
    EXPECT_STATUS(lichen_runtime_create(&p, &rt), LICHEN_STATUS_OK);
    if (rt) EXPECT_STATUS(lichen_model_load(rt, model), LICHEN_STATUS_OK);
    return rt;
}

static void state_case(const char *model, size_t values, size_t classes, int learner) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/lichen-abi-state-%d-%d.lcst", (int)getpid(), learner);
    unlink(path);
    lichen_method_params mp = lichen_method_default_params(LICHEN_METHOD_TENT);
    mp.window = 8, mp.every = 8;
    mp.learner = learner;
    mp.guard_min_classes = 0.5f;  // every full history is healthy: the saves are not held back
    mp.guard_window = 8;
    mp.guard_reset = 1;
    float z[MAX_CLASSES];
    lichen_metrics m;
    lichen_runtime *rt = state_runtime(model, path, 0);
    if (!rt) return;
    EXPECT_STATUS(lichen_method_set(rt, &mp), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.state_restore == 0, "state (learner %d): restore %u before any file", learner, m.state_restore);
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 60000 && (m.state_saves < 2 || m.updates < 3); i++) {
        EXPECT_STATUS(lichen_step(rt, frames[i % FRAMES], values, z, classes, NULL), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
        if (learner) nanosleep(&pause, NULL);
    }
    CHECK(m.state_saves >= 2 && m.state_save_failures == 0 && m.last_save_unix_ns > 0,
          "state (learner %d): %llu saves, %llu failed, last at %llu", learner, (unsigned long long)m.state_saves,
          (unsigned long long)m.state_save_failures, (unsigned long long)m.last_save_unix_ns);
    lichen_runtime_destroy(rt);
    rt = state_runtime(model, path, 0);
    if (!rt) return;
    EXPECT_STATUS(lichen_method_set(rt, &mp), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.state_restore == 1, "state (learner %d): restore %u after a save", learner, m.state_restore);
    lichen_runtime_destroy(rt);
    // One flipped byte: refused with the reason, left as it is.
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL, "state: reopen %s", path);
    if (f) {
        fseek(f, 60, SEEK_SET);
        int c = fgetc(f);
        fseek(f, 60, SEEK_SET);
        fputc(c ^ 0x01, f);
        fclose(f);
    }
    rt = state_runtime(model, path, 0);
    if (!rt) return;
    EXPECT_STATUS(lichen_method_set(rt, &mp), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    char message[512];
    last_error(rt, message, sizeof message);
    CHECK(m.state_restore == 2 && strstr(message, "checksum") != NULL, "state (learner %d): restore %u, last error '%s'", learner,
          m.state_restore, message);
    for (int i = 0; i < 24; i++) EXPECT_STATUS(lichen_step(rt, frames[i % FRAMES], values, z, classes, NULL), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.state_saves == 0, "state (learner %d): %llu saves over a refused file", learner, (unsigned long long)m.state_saves);
    EXPECT_REFUSED(rt, mp, p_.guard_reset = 5, LICHEN_STATUS_INVALID_ARGUMENT);
    lichen_runtime_destroy(rt);
    unlink(path);
}

/* Cue learners: create in a runtime's budget beside a running model, the switch script, bad
 * input, save / restore, and a method change (the runtime rolls its low end back) that must
 * leave the learner working: its block lives on the budget's heap. */
static void cue_case(const char *model) {
    lichen_runtime *rt = make_runtime(model);
    if (!rt) return;
    lichen_method_params tent = lichen_method_default_params(LICHEN_METHOD_TENT);
    EXPECT_STATUS(lichen_method_set(rt, &tent), LICHEN_STATUS_OK);
    lichen_cue_params p = lichen_cue_default_params();
    CHECK(p.neighbours == 5 && p.capacity == 2435 && p.retrain_interval == 200 && p.smoothing == 5, "cue defaults");
    p.feature_count = 2; p.neighbours = 1; p.capacity = 64; p.retrain_interval = 8; p.smoothing = 1;
    p.decision_threshold = 10; p.danger_threshold = 20; p.trusted_timeout = 3;
    lichen_cue_learner *cue = (lichen_cue_learner *)0x1;
    lichen_cue_params bad = p;
    bad.neighbours = 0;
    EXPECT_STATUS(lichen_cue_create(rt, &bad, &cue), LICHEN_STATUS_INVALID_ARGUMENT);
    CHECK(cue == NULL, "a failed lichen_cue_create sets *out to NULL");
    EXPECT_STATUS(lichen_cue_create(NULL, &p, &cue), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_cue_create(rt, &p, &cue), LICHEN_STATUS_OK);
    if (!cue) { lichen_runtime_destroy(rt); return; }
    static const float cycle[8] = {5, 12, 8, 15, 6, 14, 9, 13};
    lichen_cue_output o;
    for (int t = 0; t < 24; t++) {
        float x[2] = {cycle[t % 8] / 10, 1};
        EXPECT_STATUS(lichen_cue_tick(cue, x, 2, cycle[t % 8], 1, &o), LICHEN_STATUS_OK);
        if (t < 16) CHECK(o.driver == LICHEN_CUE_TRUSTED, "tick %d: the trusted cue drives before the gate opens", t);
    }
    CHECK(o.qualified == 1 && o.estimate_threshold == 10.5f, "gate open, tau_est 10.5 (got %u, %g)", o.qualified, o.estimate_threshold);
    // A method change rolls the runtime's low end back; the learner's heap block must survive it.
    lichen_method_params bn = lichen_method_default_params(LICHEN_METHOD_BN);
    EXPECT_STATUS(lichen_method_set(rt, &bn), LICHEN_STATUS_OK);
    float clear[2] = {0.5f, 1}, near[2] = {1.5f, 1}, danger[2] = {2.5f, 1};
    EXPECT_STATUS(lichen_cue_tick(cue, clear, 2, 5, 1, &o), LICHEN_STATUS_OK);
    CHECK(o.driver == LICHEN_CUE_COMPLEMENTARY && o.obstacle == 0 && o.estimate == 5, "clear: mono drives (%u, %g)", o.driver, o.estimate);
    EXPECT_STATUS(lichen_cue_tick(cue, near, 2, 15, 1, &o), LICHEN_STATUS_OK);
    CHECK(o.driver == LICHEN_CUE_COMPLEMENTARY && o.obstacle == 1 && o.intervention == 0, "obstacle: mono decides");
    EXPECT_STATUS(lichen_cue_tick(cue, danger, 2, 25, 1, &o), LICHEN_STATUS_OK);
    CHECK(o.driver == LICHEN_CUE_TRUSTED && o.intervention == 1 && o.obstacle == 1, "danger: training wheels");
    for (int i = 0; i < 5; i++) {
        EXPECT_STATUS(lichen_cue_tick(cue, near, 2, NAN, 0, &o), LICHEN_STATUS_OK);
        CHECK(o.driver == LICHEN_CUE_COMPLEMENTARY && o.learned == 0, "stereo invalid %d: mono drives on", i);
    }
    // Bad input: statuses, the last error, nothing changed.
    float nan_x[2] = {NAN, 1};
    EXPECT_STATUS(lichen_cue_tick(cue, nan_x, 2, 5, 1, &o), LICHEN_STATUS_NON_FINITE);
    char message[256];
    last_error(rt, message, sizeof message);
    CHECK(strstr(message, "features") != NULL, "the last error names the features: '%s'", message);
    EXPECT_STATUS(lichen_cue_tick(cue, clear, 2, INFINITY, 1, &o), LICHEN_STATUS_NON_FINITE);
    EXPECT_STATUS(lichen_cue_tick(cue, clear, 3, 5, 1, &o), LICHEN_STATUS_SHAPE_MISMATCH);
    EXPECT_STATUS(lichen_cue_tick(cue, NULL, 2, 5, 1, &o), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_cue_tick(cue, clear, 2, 5, 1, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_cue_set_policy(cue, 42, 1), LICHEN_STATUS_INVALID_ARGUMENT);
    // Save and restore into a twin.
    size_t size = 0, written = 0;
    EXPECT_STATUS(lichen_cue_state_size(cue, &size), LICHEN_STATUS_OK);
    CHECK(size == 4 * (10 + 64 * 4), "state size %zu", size);
    float *state = malloc(size);
    if (state) {
        EXPECT_STATUS(lichen_cue_save(cue, state, size - 1, &written), LICHEN_STATUS_BUFFER_TOO_SMALL);
        EXPECT_STATUS(lichen_cue_save(cue, state, size, &written), LICHEN_STATUS_OK);
        CHECK(written == size, "written %zu", written);
        lichen_cue_learner *twin = NULL;
        EXPECT_STATUS(lichen_cue_create(rt, &p, &twin), LICHEN_STATUS_OK);
        state[1] = 7;  // an unknown version
        EXPECT_STATUS(lichen_cue_restore(twin, state, size), LICHEN_STATUS_MALFORMED);
        state[1] = 1;
        EXPECT_STATUS(lichen_cue_restore(twin, state, size - 4), LICHEN_STATUS_SHAPE_MISMATCH);
        EXPECT_STATUS(lichen_cue_restore(twin, state, size), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_cue_set_policy(twin, LICHEN_CUE_POLICY_COMPLEMENTARY_ONLY, 0), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_cue_tick(twin, near, 2, 0, 0, &o), LICHEN_STATUS_OK);
        CHECK(o.driver == LICHEN_CUE_COMPLEMENTARY && o.complementary_estimate == 15, "the restored twin estimates 15 (%g)",
              o.complementary_estimate);
        lichen_cue_destroy(twin);
        free(state);
    }
    lichen_cue_destroy(cue);
    lichen_cue_destroy(NULL);
    lichen_runtime_destroy(rt);
}

/* Online learning (lichen_learn): refused without a policy and with a method that adapts the same
 * parameters; a frame the model gets wrong is learned until lichen_step predicts its label; LRH
 * takes decisions; bad labels and frames change nothing; lichen_reset gives the model back. */
static void learn_case(const char *model, size_t values, size_t classes) {
    lichen_runtime *rt = make_runtime(model);
    if (!rt) return;
    float z0[MAX_CLASSES], z[MAX_CLASSES];
    int32_t k0 = -1, k = -1;
    EXPECT_STATUS(lichen_step(rt, frames[3], values, z0, classes, &k0), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_learn(rt, frames[3], values, 0, &k), LICHEN_STATUS_INVALID_ARGUMENT);
    char message[256];
    last_error(rt, message, sizeof message);
    CHECK(strstr(message, "learning") != NULL, "the last error names learning: '%s'", message);
    lichen_method_params mp = lichen_method_default_params(LICHEN_METHOD_SOURCE);
    CHECK(mp.learn_policy == LICHEN_LEARN_NONE && mp.learn_minibatch == 10 && mp.learn_memory == 20, "learn defaults");
    mp.learn_policy = LICHEN_LEARN_CONSTANT;
    mp.learn_rate = 0.05f;
    EXPECT_REFUSED(rt, mp, p_.method = LICHEN_METHOD_TENT, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_REFUSED(rt, mp, p_.learn_policy = 9, LICHEN_STATUS_INVALID_ARGUMENT);
    int8_t two[2] = {1, -1};
    EXPECT_REFUSED(rt, mp, p_.learn_effects = two; p_.learn_effect_count = 2, LICHEN_STATUS_SHAPE_MISMATCH);
    EXPECT_REFUSED(rt, mp, p_.learn_rate = NAN, LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_method_set(rt, &mp), LICHEN_STATUS_OK);
    // Teach frame 3 a label the model does not give it.
    int32_t target = (k0 + 1) % (int32_t)classes;
    int learned_at = -1;
    for (int i = 0; i < 400 && learned_at < 0; i++) {
        EXPECT_STATUS(lichen_learn(rt, frames[3], values, target, NULL), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_step(rt, frames[3], values, z, classes, &k), LICHEN_STATUS_OK);
        if (k == target) learned_at = i + 1;
    }
    CHECK(learned_at > 0, "400 labelled frames did not teach frame 3 class %d", target);
    lichen_metrics m;
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(learned_at < 0 || (m.learn_samples == (uint64_t)learned_at && m.learn_updates == (uint64_t)learned_at / 10),
          "samples %llu, updates %llu after %d frames", (unsigned long long)m.learn_samples,
          (unsigned long long)m.learn_updates, learned_at);
    CHECK(m.learning_rate == (double)0.05f && m.learn_decisions == 0, "constant: eta %g, decisions %llu", m.learning_rate,
          (unsigned long long)m.learn_decisions);
    // Bad labels and frames: refused, nothing learned.
    uint64_t samples = m.learn_samples;
    EXPECT_STATUS(lichen_learn(rt, frames[3], values, (int32_t)classes, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_learn(rt, frames[3], values, -1, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_learn(rt, frames[3], values - 1, 0, NULL), LICHEN_STATUS_SHAPE_MISMATCH);
    EXPECT_STATUS(lichen_learn(rt, NULL, values, 0, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_learn(NULL, frames[3], values, 0, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    float poisoned[MAX_VALUES];
    memcpy(poisoned, frames[3], values * sizeof(float));
    poisoned[7] = NAN;
    EXPECT_STATUS(lichen_learn(rt, poisoned, values, 0, NULL), LICHEN_STATUS_NON_FINITE);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.learn_samples == samples, "refused frames were counted (%llu, was %llu)", (unsigned long long)m.learn_samples,
          (unsigned long long)samples);
    // lichen_reset: the model's logits again.
    EXPECT_STATUS(lichen_reset(rt), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_step(rt, frames[3], values, z, classes, &k), LICHEN_STATUS_OK);
    CHECK(k == k0 && memcmp(z, z0, classes * sizeof(float)) == 0, "after lichen_reset: the model's logits (class %d, was %d)", k, k0);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.learn_samples == 0, "after lichen_reset: %llu samples", (unsigned long long)m.learn_samples);
    // LRH with a custom effect map: decisions are taken every 10 frames after the first 20.
    mp.learn_policy = LICHEN_LEARN_HOMEOSTATIC;
    mp.learn_rate = 1e-3f;
    int8_t effects[MAX_CLASSES];
    for (size_t c = 0; c < classes; c++) effects[c] = c % 2 ? 1 : -1;
    mp.learn_effects = effects, mp.learn_effect_count = (uint32_t)classes;
    EXPECT_STATUS(lichen_method_set(rt, &mp), LICHEN_STATUS_OK);
    for (int i = 0; i < 100; i++) {
        EXPECT_STATUS(lichen_learn(rt, frames[i % FRAMES], values, i % (int)classes, &k), LICHEN_STATUS_OK);
        CHECK(k >= 0 && k < (int32_t)classes, "predicted class %d", k);
    }
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.learn_samples == 100 && m.learn_updates == 10 && m.learn_decisions == 7 && m.learn_taken <= 7,
          "LRH: %llu samples, %llu updates, %llu decisions, %llu taken", (unsigned long long)m.learn_samples,
          (unsigned long long)m.learn_updates, (unsigned long long)m.learn_decisions, (unsigned long long)m.learn_taken);
    CHECK(m.learning_rate >= 1e-8, "eta %g", m.learning_rate);
    lichen_runtime_destroy(rt);

    // What was learned survives the runtime: the state file, restored by the next one.
    char path[128];
    snprintf(path, sizeof path, "/tmp/lichen-abi-learn-%d.lcst", (int)getpid());
    unlink(path);
    float zs[MAX_CLASSES], zr[MAX_CLASSES];
    double rate = 0;
    rt = state_runtime(model, path, 0);
    if (!rt) return;
    EXPECT_STATUS(lichen_method_set(rt, &mp), LICHEN_STATUS_OK);
    for (int i = 0; i < 40; i++) EXPECT_STATUS(lichen_learn(rt, frames[i % FRAMES], values, i % (int)classes, NULL), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_step(rt, frames[5], values, zs, classes, NULL), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.state_saves >= 4 && m.state_save_failures == 0, "learning saves: %llu (%llu failed)",
          (unsigned long long)m.state_saves, (unsigned long long)m.state_save_failures);
    rate = m.learning_rate;
    lichen_runtime_destroy(rt);
    rt = state_runtime(model, path, 0);
    if (!rt) return;
    EXPECT_STATUS(lichen_method_set(rt, &mp), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
    CHECK(m.state_restore == 1 && m.learn_samples == 40 && m.learning_rate == rate,
          "restored: %u, %llu samples, eta %g (saved %g)", m.state_restore, (unsigned long long)m.learn_samples, m.learning_rate, rate);
    EXPECT_STATUS(lichen_step(rt, frames[5], values, zr, classes, NULL), LICHEN_STATUS_OK);
    CHECK(memcmp(zs, zr, classes * sizeof(float)) == 0, "the restored runtime predicts as the one that learned");
    lichen_runtime_destroy(rt);
    unlink(path);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: abi_test MODEL.gguf SOURCE_PACK.stream [ADAPTER.gguf]\n");
        return 2;
    }
    const char *model = argv[1], *pack = argv[2], *adapter = argc > 3 ? argv[3] : NULL;
    CHECK(lichen_abi_version() == LICHEN_ABI_VERSION, "ABI %u, header %u", lichen_abi_version(), LICHEN_ABI_VERSION);
    CHECK(strcmp(lichen_status_string(LICHEN_STATUS_OK), "ok") == 0, "status string of OK");
    for (int s = 0; s <= 11; s++) CHECK(strcmp(lichen_status_string((lichen_status)s), "unknown status") != 0, "status %d named", s);
    CHECK(strcmp(lichen_status_string((lichen_status)999), "unknown status") == 0, "an unknown status");

    // Creation misuse.
    lichen_runtime *rt = (lichen_runtime *)0x1;
    EXPECT_STATUS(lichen_runtime_create(NULL, &rt), LICHEN_STATUS_INVALID_ARGUMENT);
    CHECK(rt == NULL, "a failed create sets *out to NULL");
    lichen_runtime_params rp = lichen_runtime_default_params();
    EXPECT_STATUS(lichen_runtime_create(&rp, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    rp.budget_bytes = 0;
    EXPECT_STATUS(lichen_runtime_create(&rp, &rt), LICHEN_STATUS_INVALID_ARGUMENT);
    {
        // Why a create failed: lichen_last_error(NULL, ...) on this thread.
        char why[512];
        size_t n = 0;
        EXPECT_STATUS(lichen_last_error(NULL, why, sizeof why, &n), LICHEN_STATUS_OK);
        CHECK(n > 0 && strstr(why, "budget_bytes") != NULL, "create failure reason: '%s'", why);
        rp = lichen_runtime_default_params();
        rp.budget_bytes = (size_t)16 << 20;
        rp.socket_path = argv[1];  // a regular file (the model) where the socket would go
        EXPECT_STATUS(lichen_runtime_create(&rp, &rt), LICHEN_STATUS_FILE_ERROR);
        lichen_last_error(NULL, why, sizeof why, &n);
        CHECK(strstr(why, argv[1]) != NULL, "create failure names the socket path: '%s'", why);
        rp.socket_path = NULL;
        EXPECT_STATUS(lichen_runtime_create(&rp, &rt), LICHEN_STATUS_OK);
        lichen_last_error(NULL, why, sizeof why, &n);
        CHECK(n == 0 && why[0] == 0, "after a successful create: '%s'", why);
        lichen_runtime_destroy(rt);
        rt = NULL;
    }
    lichen_runtime_destroy(NULL);

    // Calls in the wrong order: no model yet.
    rp = lichen_runtime_default_params();
    rp.budget_bytes = (size_t)16 << 20;
    EXPECT_STATUS(lichen_runtime_create(&rp, &rt), LICHEN_STATUS_OK);
    size_t values = 0, classes = 0;
    float z[MAX_CLASSES];
    EXPECT_STATUS(lichen_model_info(rt, &values, &classes), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_step(rt, frames[0], 784, z, 10, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    lichen_method_params tent = lichen_method_default_params(LICHEN_METHOD_TENT);
    EXPECT_STATUS(lichen_method_set(rt, &tent), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_reset(rt), LICHEN_STATUS_INVALID_ARGUMENT);
    char message[512];
    last_error(rt, message, sizeof message);
    CHECK(strstr(message, "model") != NULL, "the last error names the missing model: '%s'", message);
    size_t length = 0;
    EXPECT_STATUS(lichen_last_error(rt, NULL, 0, &length), LICHEN_STATUS_OK);
    CHECK(length == strlen(message), "lichen_last_error's length %zu, text %zu", length, strlen(message));
    char tiny[4];
    EXPECT_STATUS(lichen_last_error(rt, tiny, sizeof tiny, NULL), LICHEN_STATUS_OK);
    CHECK(strlen(tiny) == 3, "a cut last error is NUL-terminated");
    EXPECT_STATUS(lichen_model_load(rt, "/nonexistent/model.gguf"), LICHEN_STATUS_FILE_ERROR);
    EXPECT_STATUS(lichen_model_load(rt, pack), LICHEN_STATUS_MALFORMED);  // a stream file is no model
    EXPECT_STATUS(lichen_model_load(rt, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_model_load(rt, model), LICHEN_STATUS_OK);
    EXPECT_STATUS(lichen_model_info(rt, &values, &classes), LICHEN_STATUS_OK);
    CHECK(values >= 1 && values <= MAX_VALUES && classes >= 2 && classes <= MAX_CLASSES, "model info %zu values, %zu classes",
          values, classes);
    EXPECT_STATUS(lichen_metrics_get(rt, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_checkpoint_size(rt, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_method_setup_ns(rt, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(lichen_method_set(rt, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
    if (values > MAX_VALUES || classes > MAX_CLASSES) return 1;

    for (int i = 0; i < FRAMES; i++)
        for (size_t k = 0; k < values; k++) frames[i][k] = uniform01();

    // Adapters: load, scale, unload, swap, and the errors.
    if (adapter) {
        EXPECT_STATUS(lichen_adapter_load(rt, adapter, 1.0f), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_step(rt, frames[0], values, z, classes, NULL), LICHEN_STATUS_OK);
        lichen_metrics m;
        EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
        CHECK(m.active_adapters == 1 && m.swaps == 1, "after a load: %u active, %llu swaps", m.active_adapters,
              (unsigned long long)m.swaps);
        size_t n = 99;
        EXPECT_STATUS(lichen_adapter_list(rt, NULL, 0, &n), LICHEN_STATUS_BUFFER_TOO_SMALL);
        CHECK(n == 1, "lichen_adapter_list counts %zu adapters", n);
        lichen_adapter_info info[2];
        memset(info, 0x7f, sizeof info);
        EXPECT_STATUS(lichen_adapter_list(rt, info, 2, &n), LICHEN_STATUS_OK);
        CHECK(n == 1 && info[0].scale == 1.0f && info[0].rank >= 1 && info[0].bytes > 0 && strlen(info[0].name) > 0 &&
                  strcmp(info[0].file, adapter) == 0,
              "lichen_adapter_list: %zu, '%.63s' '%.255s' rank %u scale %g", n, info[0].name, info[0].file, info[0].rank,
              (double)info[0].scale);
        EXPECT_STATUS(lichen_adapter_list(rt, info, 2, NULL), LICHEN_STATUS_INVALID_ARGUMENT);
        EXPECT_STATUS(lichen_adapter_scale(rt, "no_such_adapter", 0.5f), LICHEN_STATUS_NOT_FOUND);
        EXPECT_STATUS(lichen_adapter_unload(rt, "no_such_adapter"), LICHEN_STATUS_NOT_FOUND);
        EXPECT_STATUS(lichen_adapter_load(rt, "/nonexistent/adapter.gguf", 1.0f), LICHEN_STATUS_FILE_ERROR);
        EXPECT_STATUS(lichen_adapter_load(rt, NULL, 1.0f), LICHEN_STATUS_INVALID_ARGUMENT);
        const char *paths[1] = {adapter};
        float scales[1] = {0.5f};
        EXPECT_STATUS(lichen_adapter_swap(rt, paths, scales, 1), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_adapter_swap(rt, NULL, scales, 1), LICHEN_STATUS_INVALID_ARGUMENT);
        EXPECT_STATUS(lichen_adapter_swap(rt, NULL, NULL, 0), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_step(rt, frames[1], values, z, classes, NULL), LICHEN_STATUS_OK);
        EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
        CHECK(m.active_adapters == 0, "after an empty swap: %u active", m.active_adapters);
    }
    lichen_runtime_destroy(rt);

    // Every method, its options, and failed calls that must change nothing.
    lichen_method_params mp;
    mp = lichen_method_default_params(LICHEN_METHOD_SOURCE);
    mp.window = 8, mp.every = 8;
    method_case(model, mp, "source", values, classes);
    mp = lichen_method_default_params(LICHEN_METHOD_BN);
    mp.window = 8, mp.every = 8;
    method_case(model, mp, "bn", values, classes);
    mp = lichen_method_default_params(LICHEN_METHOD_TENT);
    mp.window = 8, mp.every = 8;
    method_case(model, mp, "tent", values, classes);
    mp.lora_rank = 2;
    mp.lora_targets = "linear";
    mp.prediction = LICHEN_PREDICTION_WINDOW;
    method_case(model, mp, "tent + lora r2, window prediction", values, classes);
    mp = lichen_method_default_params(LICHEN_METHOD_COTTA);
    mp.window = 8, mp.every = 8;
    mp.source_pack = pack;
    mp.cotta_augmentations = 4;
    mp.guard_min_classes = 1.5f;
    mp.guard_window = 16;
    method_case(model, mp, "cotta (threshold from the pack, guard)", values, classes);
    mp.source_pack = NULL;
    mp.cotta_threshold = 1.0f;  // the gate always fires
    method_case(model, mp, "cotta (threshold 1)", values, classes);
    mp = lichen_method_default_params(LICHEN_METHOD_RMT);
    mp.window = 8, mp.every = 8;
    mp.source_pack = pack;
    mp.rmt_warmup_samples = 64;
    method_case(model, mp, "rmt", values, classes);

    // Learner mode, per learning method.
    mp = lichen_method_default_params(LICHEN_METHOD_TENT);
    learner_case(model, mp, "tent", values, classes, 3, 120);
    mp = lichen_method_default_params(LICHEN_METHOD_BN);
    learner_case(model, mp, "bn", values, classes, 3, 120);
    mp = lichen_method_default_params(LICHEN_METHOD_COTTA);
    mp.cotta_threshold = 1.0f;
    mp.cotta_augmentations = 4;
    learner_case(model, mp, "cotta (threshold 1)", values, classes, 2, 240);
    mp = lichen_method_default_params(LICHEN_METHOD_RMT);
    mp.source_pack = pack;
    mp.rmt_warmup_samples = 64;
    learner_case(model, mp, "rmt", values, classes, 2, 240);

    // The state file, synchronous and from the learner thread.
    state_case(model, values, classes, 0);
    state_case(model, values, classes, 1);

    // The budget a plan needs, and a runtime of exactly that budget runs it.
    size_t need = 0;
    mp = lichen_method_default_params(LICHEN_METHOD_TENT);
    mp.window = 8, mp.every = 8;
    EXPECT_STATUS(lichen_plan_budget(model, &mp, 0, &need), LICHEN_STATUS_OK);
    CHECK(need > 0, "plan budget %zu", need);
    EXPECT_STATUS(lichen_plan_budget(NULL, &mp, 0, &need), LICHEN_STATUS_INVALID_ARGUMENT);
    size_t tight = 0;
    EXPECT_STATUS(lichen_plan_budget(model, &mp, need / 2, &tight), LICHEN_STATUS_BUDGET_EXCEEDED);
    rp = lichen_runtime_default_params();
    rp.budget_bytes = need;
    rt = NULL;
    EXPECT_STATUS(lichen_runtime_create(&rp, &rt), LICHEN_STATUS_OK);
    if (rt) {
        EXPECT_STATUS(lichen_model_load(rt, model), LICHEN_STATUS_OK);
        lichen_status set = lichen_method_set(rt, &mp);
        last_error(rt, message, sizeof message);
        CHECK(set == LICHEN_STATUS_OK, "a runtime of the plan's budget (%zu bytes): lichen_method_set: %s (%s)", need,
              lichen_status_string(set), message);
        for (int i = 0; i < 16; i++) EXPECT_STATUS(lichen_step(rt, frames[i], values, z, classes, NULL), LICHEN_STATUS_OK);
        // A method the remaining budget cannot hold: refused, the previous one keeps running.
        lichen_method_params big = mp;
        big.window = 4096;
        big.every = 4096;
        EXPECT_STATUS(lichen_method_set(rt, &big), LICHEN_STATUS_BUDGET_EXCEEDED);
        lichen_metrics m;
        EXPECT_STATUS(lichen_metrics_get(rt, &m), LICHEN_STATUS_OK);
        CHECK(m.method == LICHEN_METHOD_TENT, "after a refused method: method %u", m.method);
        EXPECT_STATUS(lichen_step(rt, frames[16], values, z, classes, NULL), LICHEN_STATUS_OK);
        lichen_runtime_destroy(rt);
    }

    cue_case(model);
    learn_case(model, values, classes);

    printf("abi_test: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
