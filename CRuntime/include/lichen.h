/*
 * lichen.h — Lichen's C ABI: an on-device continual-learning runtime for a robot's control loop.
 *
 * One runtime holds one model inside one memory budget fixed at creation. Each control tick
 * the robot hands it a sensor frame and gets a prediction back; the runtime adapts the model
 * to what it sees (source / BN-adapt / Tent / CoTTA / RMT over a window of recent frames, with
 * optional LoRA trainables and a collapse guard) and applies the
 * active LoRA adapters, which an operator can load, unload, swap and re-weight while the loop
 * runs (`lichen adapters ... --socket PATH` talks to the runtime's control endpoint).
 *
 *     lichen_runtime_params p = lichen_runtime_default_params();
 *     p.budget_bytes = 64u << 20;
 *     p.socket_path = "/run/robot/lichen.sock";          // or NULL: no control endpoint
 *     lichen_runtime *rt;
 *     if (lichen_runtime_create(&p, &rt) != LICHEN_STATUS_OK) return 1;
 *     lichen_model_load(rt, "fmnist-cnn-q8_0.gguf");
 *     lichen_method_params m = lichen_method_default_params(LICHEN_METHOD_TENT);
 *     lichen_method_set(rt, &m);
 *     for (;;) {                                          // every tick
 *         float logits[10]; int32_t cls;
 *         if (lichen_step(rt, frame, 784, logits, 10, &cls) != LICHEN_STATUS_OK) { ...lichen_last_error... }
 *     }
 *     lichen_runtime_destroy(rt);
 *
 * Statuses: every function returns a lichen_status (lichen_status_string names it); the
 * detail of the last failure on a runtime is lichen_last_error(). A failed call changes
 * nothing: the model, the adaptation state and the active adapters stay as they were.
 *
 * Ownership: the caller owns every buffer it passes (frames, logits, checkpoint buffers,
 * strings) and keeps it only for the duration of the call. The runtime owns what it creates
 * until lichen_runtime_destroy.
 *
 * Threads:
 * - One thread, the control loop's, calls lichen_model_load, lichen_method_set, lichen_step,
 *   lichen_reset, lichen_checkpoint_* (never two of them at once, never concurrently with
 *   lichen_runtime_destroy).
 * - The adapter functions (lichen_adapter_*), lichen_metrics_get and lichen_last_error may be
 *   called from any thread, also while lichen_step runs on the loop thread. Adapter changes are
 *   prepared on the calling thread (load, validate, build inside the budget) and picked up by
 *   the loop at the start of its next step with one atomic exchange: lichen_step never waits
 *   on them. The control endpoint's own thread (started by lichen_runtime_create when
 *   socket_path is set) works the same way.
 *
 * Memory: everything the runtime allocates after creation lives in the budget (step memory,
 * adaptation state, adapters, the control endpoint's buffers); base weights are mapped from
 * the model file. The runtime links Debian's jemalloc, which exports malloc itself: a binary
 * that links it gets jemalloc as its process allocator (the budget's heap is one explicit
 * jemalloc arena carved from the budget).
 *
 * ABI version policy: LICHEN_ABI_VERSION grows when a function, field or enum value is added;
 * enum values and struct fields are only ever appended; a change that breaks callers would
 * be a new major version with new names. Params and metrics structs grow at their end, so a
 * binary must be compiled against the header of the library it links: check
 * lichen_abi_version() == LICHEN_ABI_VERSION at start (ABI 2 and ABI 3 appended fields to
 * lichen_method_params and lichen_metrics; ABI 4 added the cue learner's functions; ABI 5 online
 * learning: lichen_learn and the learn_* fields of both structs).
 */
#ifndef LICHEN_H
#define LICHEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LICHEN_API __attribute__((visibility("default")))
#else
#define LICHEN_API
#endif

#define LICHEN_ABI_VERSION 5

/* ====== Statuses ====== */

typedef enum lichen_status {
    LICHEN_STATUS_OK = 0,
    /** An argument is NULL, out of range, or the call comes at the wrong time (no model yet). */
    LICHEN_STATUS_INVALID_ARGUMENT = 1,
    /** The budget cannot hold what was asked for. */
    LICHEN_STATUS_BUDGET_EXCEEDED = 2,
    /** A frame has the wrong number of values, or a shape does not fit. */
    LICHEN_STATUS_SHAPE_MISMATCH = 3,
    /** An output buffer is too small (see lichen_last_error for the size needed). */
    LICHEN_STATUS_BUFFER_TOO_SMALL = 4,
    /** A frame (or a checkpoint) holds NaN or infinity. */
    LICHEN_STATUS_NON_FINITE = 5,
    /** A file cannot be opened or read. */
    LICHEN_STATUS_FILE_ERROR = 6,
    /** A file (model, adapter, checkpoint) is malformed, truncated or of an unsupported version. */
    LICHEN_STATUS_MALFORMED = 7,
    /** A file belongs to another model (an adapter of another base, a checkpoint of another method). */
    LICHEN_STATUS_MODEL_MISMATCH = 8,
    /** No such adapter (or other named thing). */
    LICHEN_STATUS_NOT_FOUND = 9,
    /** An operating-system call failed. */
    LICHEN_STATUS_SYSTEM_ERROR = 10,
    /** Something Lichen does not support (a tensor type, a setting). */
    LICHEN_STATUS_UNSUPPORTED = 11,
} lichen_status;

/** A static, human-readable name of a status ("ok", "budget exceeded", ...). */
LICHEN_API const char *lichen_status_string(lichen_status status);
/** LICHEN_ABI_VERSION of the library (compare with the header's). */
LICHEN_API uint32_t lichen_abi_version(void);

/* ====== Runtime ====== */

typedef struct lichen_runtime lichen_runtime;

typedef struct lichen_runtime_params {
    size_t budget_bytes;        // the memory budget, bytes (at least a few MiB)
    void *buffer;               // NULL: the runtime reserves the budget; else the caller's buffer of budget_bytes
    const char *socket_path;    // NULL: no control endpoint; else a Unix-domain socket path (made 0600)
    uint32_t metrics_window;    // steps the step-time percentiles cover (default 1024)
    uint32_t max_clients;       // control clients served at once (default 4)
    uint32_t io_timeout_ms;     // a control client must send / take a message within this (default 2000)
    /* ABI 3 */
    const char *state_path;     // NULL: no state file; else the adapted state's file: restored at lichen_method_set
                                // when it matches the model and the method's settings (a file that does not is
                                // refused, the reason recorded as the last error, and left in place), saved every
                                // state_every_updates updates or state_every_ms milliseconds (from the learner thread
                                // in learner mode, never the loop), atomically: PATH.tmp, fsync, rename, folder fsync
    uint32_t state_every_updates; // default 16 (0: not by count)
    uint32_t state_every_ms;    // default 0 (not by time)
    int32_t state_overwrite;    // 1: save over a refused state file (default 0: keep it, save nothing)
} lichen_runtime_params;

/** Defaults: 64 MiB reserved by the runtime, no socket, 1024 steps, 4 clients, 2000 ms. */
LICHEN_API lichen_runtime_params lichen_runtime_default_params(void);

/** Creates a runtime. On success *out is the new runtime; on failure *out is NULL and the
 *  status says why (a socket path already taken by a non-socket file is FILE_ERROR). */
LICHEN_API lichen_status lichen_runtime_create(const lichen_runtime_params *params, lichen_runtime **out);
/** Stops the learner thread (its running update ends first) and the control endpoint, saves
 *  the state file once more (when set), frees everything (the budget too, unless it is the
 *  caller's buffer). NULL is ignored. Like free(), destroying a runtime twice, or using it
 *  after, is undefined: the handle is gone. */
LICHEN_API void lichen_runtime_destroy(lichen_runtime *runtime);

/* ====== Model ====== */

/** Loads a Lichen GGUF model (mapped read-only). Once per runtime. */
LICHEN_API lichen_status lichen_model_load(lichen_runtime *runtime, const char *path);
/** The frame size and class count of the loaded model. */
LICHEN_API lichen_status lichen_model_info(lichen_runtime *runtime, size_t *frame_values, size_t *classes);

/* ====== Adaptation method ====== */

typedef enum lichen_method {
    LICHEN_METHOD_SOURCE = 0,   // the model as trained
    LICHEN_METHOD_BN = 1,       // BN-adapt: normalise with the window's statistics
    LICHEN_METHOD_TENT = 2,     // Tent: entropy minimisation over the norm layers (Adam)
    LICHEN_METHOD_COTTA = 3,    // CoTTA: EMA teacher, augmentation-averaged pseudo-labels, stochastic restore
    LICHEN_METHOD_RMT = 4,      // RMT: robust mean teacher, contrastive loss to source prototypes, source replay
} lichen_method;

/** How frames between two updates are predicted. */
typedef enum lichen_prediction {
    LICHEN_PREDICTION_SAVED = 0,   // batch-1 forward with the batch statistics saved by the last update (fast)
    LICHEN_PREDICTION_WINDOW = 1,  // forward over the whole window ending at the frame (exact, window times the cost)
} lichen_prediction;

typedef struct lichen_method_params {
    lichen_method method;
    uint32_t window;            // frames each update sees (default 16; 1...4096)
    uint32_t every;             // frames between two updates (default 16)
    float learning_rate;        // Adam's learning rate of Tent, CoTTA and RMT (default 1e-3)
    int32_t full;               // 0: train norm layers only (default, "frugal"); 1: every f32 parameter (f32 models)
    /* ABI 2 */
    uint32_t lora_rank;         // frugal mode's LoRA trainables: rank r (0: none, the default)
    float lora_alpha;           // B·A scaled by alpha / r (0: alpha = 2r, the default)
    const char *lora_targets;   // NULL: "conv,linear"; else a comma-separated list of conv, linear or layer names
    float guard_min_classes;    // collapse guard: reset when the effective number of predicted classes falls under
                                // this (0: no guard, the default)
    uint32_t guard_window;      // predictions the guard looks back over (default 200)
    uint32_t reset_every;       // reset the trainables every N frames (0: never, the default)
    lichen_prediction prediction; // frames between updates (default LICHEN_PREDICTION_SAVED)
    const char *source_pack;    // a source pack file (`lichen source-pack`): labelled source frames, read into the
                                // budget at lichen_method_set; needed by RMT and by CoTTA without cotta_threshold
    uint64_t seed;              // seed of the method's random draws (default 1)
    float cotta_threshold;      // CoTTA's confidence threshold; NaN (the default): from the source pack (5 % quantile
                                // of the source model's top softmax probability, minus 0.05)
    uint32_t cotta_augmentations; // CoTTA's augmented teacher passes when its gate opens (default 32)
    uint32_t rmt_warmup_samples;  // RMT's warm-up on source frames at lichen_method_set (default 2048; 0: none)
    uint32_t rmt_prototype_samples; // source frames averaged into RMT's prototypes (0, the default: the whole pack)
    float rmt_lambda_source;    // RMT's source replay weight (default 1; 0: no replay)
    float rmt_lambda_contrast;  // RMT's contrastive weight (default 1; 0: no prototypes, no projector)
    int32_t fused;              // 1 (default): with LICHEN_PREDICTION_SAVED, frames between updates go through the fused
                                // inference model, refolded with the adapted statistics after each update, while no
                                // adapter is applied; 0: through the graph
    /* ABI 3 */
    int32_t learner;            // 1: updates run on a learner thread the runtime owns (started here, stopped by the
                                // next lichen_method_set or lichen_runtime_destroy); lichen_step predicts through the
                                // newest published version and never waits on an update. Needs prediction SAVED,
                                // fused 1 and no LoRA trainables. 0 (default): updates inside the lichen_step that
                                // triggers them (deterministic)
    int32_t learner_cpu;        // the CPU the learner is pinned to (-1, the default: not pinned); it must be one the
                                // process may run on, else lichen_method_set fails with SYSTEM_ERROR (EINVAL)
    int32_t learner_nice;       // the learner thread's nice value, -20...19 (0: the process's). Raising it (lower
                                // priority than the loop) is always allowed; lowering it needs CAP_SYS_NICE or
                                // RLIMIT_NICE, else lichen_method_set fails with SYSTEM_ERROR (EPERM)
    int32_t guard_reset;        // what the collapse guard resets to: 0 (default) the model as loaded; 1 the last
                                // state it judged healthy (kept before each update), the model when there is none
    /* ABI 5: online supervised learning (lichen_learn), for a robot with a trusted source of labels */
    uint32_t learn_policy;      // a lichen_learn_policy (default LICHEN_LEARN_NONE). Needs LICHEN_METHOD_SOURCE and
                                // learner 0. Trains every f32 parameter of the model (a quantized model: its biases
                                // and norm parameters) with plain SGD, w -= (eta / minibatch) * sum of gradients.
                                // What it learns (weights, eta) is part of the adapted state: with state_path set
                                // it is saved and restored like a method's
    float learn_rate;           // eta at the start (default 1e-3)
    float learn_step;           // Delta, the amount one class effect moves eta (default 1e-4); eta never goes below 1e-8
    uint32_t learn_minibatch;   // labelled frames per update (default 10)
    uint32_t learn_interval;    // LRR / LRH: a decision every this many frames (default 10)
    uint32_t learn_memory;      // LRH: the last frames the two trial updates are scored on (default 20)
    const int8_t *learn_effects; // one effect per class: +1 excitatory (eta += Delta), -1 inhibitory, 0 none;
                                // NULL (default): classes 5 and above excitatory, the others inhibitory
    uint32_t learn_effect_count; // values in learn_effects (the model's class count)
} lichen_method_params;

/** Learning-rate policies of online learning (Sources/Lichen/Homeostasis/README.md). */
typedef enum lichen_learn_policy {
    LICHEN_LEARN_NONE = 0,      // no online learning: lichen_learn fails with INVALID_ARGUMENT
    LICHEN_LEARN_CONSTANT = 1,  // eta stays at learn_rate
    LICHEN_LEARN_RANDOM = 2,    // LRR: every learn_interval frames, a fair coin (seeded by seed) applies the true label's effect
    LICHEN_LEARN_HOMEOSTATIC = 3, // LRH: every learn_interval frames, two trial updates (eta, and eta moved by the
                                // predicted class's effect) are scored on the last learn_memory frames; if the moved
                                // one scores strictly better, eta moves by the true label's effect
} lichen_learn_policy;

/** The defaults of `method` (see each field). */
LICHEN_API lichen_method_params lichen_method_default_params(lichen_method method);
/** Chooses the method and all its settings: trained values go back to the model's, the window
 *  starts empty, and the method is assembled in the budget (the source pack read in, CoTTA's
 *  threshold derived, RMT's prototypes and warm-up computed: lichen_method_setup_ns says what
 *  that took). A bad setting, a source pack that cannot be read or does not fit the model, and
 *  a method the model cannot run (full mode on a quantized model) return an error and change
 *  nothing. When the budget cannot hold the new method (BUDGET_EXCEEDED) the previous method is
 *  rebuilt and keeps running with its trained norm parameters (its optimizer, teacher and
 *  LoRA state start over). */
LICHEN_API lichen_status lichen_method_set(lichen_runtime *runtime, const lichen_method_params *params);
/** Nanoseconds the last successful lichen_method_set spent assembling the method. */
LICHEN_API lichen_status lichen_method_setup_ns(lichen_runtime *runtime, uint64_t *nanoseconds);
/** Bytes of budget a runtime needs to load the model at `model_path` and run `params` (model
 *  parameters, the method's step memory and state, its source pack, and the runtime's own
 *  structures; no control endpoint, no adapters). Measured by assembling the plan in a scratch
 *  reservation of `ceiling` bytes (0: 1 GiB) that is given back before it returns: the low end's
 *  peak (set-up scratch included) plus the heap, rounded up to whole heap pages with one page
 *  of slack (alignment padding depends on where a budget lies in memory). */
LICHEN_API lichen_status lichen_plan_budget(const char *model_path, const lichen_method_params *params, size_t ceiling,
                                            size_t *bytes);

/* ====== Step ====== */

/** One control tick: predicts `frame` (frame_values f32, the model's input, row-major) and
 *  adapts. Writes the class count's logits into `logits` (capacity in floats) and the
 *  predicted class into *predicted_class (may be NULL). Allocates nothing. */
LICHEN_API lichen_status lichen_step(lichen_runtime *runtime, const float *frame, size_t frame_values,
                                     float *logits, size_t logits_capacity, int32_t *predicted_class);
/** Returns the trained values to the model's and clears the optimizer state (online learning:
 *  eta back to learn_rate, its minibatch and memory emptied). */
LICHEN_API lichen_status lichen_reset(lichen_runtime *runtime);
/** Online learning (learn_policy set): predicts `frame` with the weights as they are, writes the
 *  class into *predicted_class (may be NULL), and learns from `label` (0...classes-1): its
 *  gradient joins the minibatch, the policy may move eta, and every learn_minibatch frames the
 *  weights are updated; lichen_step predicts with them from its next call. Loop thread, like
 *  lichen_step; allocates nothing. A bad label, frame size, NaN or infinity changes nothing. */
LICHEN_API lichen_status lichen_learn(lichen_runtime *runtime, const float *frame, size_t frame_values, int32_t label,
                                      int32_t *predicted_class);

/* ====== Adapters (any thread) ====== */

/** Loads a LoRA adapter file (GGUF) and adds it to the active set with `scale`. */
LICHEN_API lichen_status lichen_adapter_load(lichen_runtime *runtime, const char *path, float scale);
/** Removes the adapter called `name` from the active set. */
LICHEN_API lichen_status lichen_adapter_unload(lichen_runtime *runtime, const char *name);
/** Replaces the whole active set: `count` files with their scales (count 0: no adapter). */
LICHEN_API lichen_status lichen_adapter_swap(lichen_runtime *runtime, const char *const *paths, const float *scales,
                                             size_t count);
/** Sets the scale of the active adapter called `name`. */
LICHEN_API lichen_status lichen_adapter_scale(lichen_runtime *runtime, const char *name, float scale);

/** One adapter of the active set (lichen_adapter_list). Strings are NUL-terminated, cut to fit. */
typedef struct lichen_adapter_info {
    char name[64];              // the adapter's name (its file name without .gguf)
    char file[256];             // the path it was loaded from
    uint32_t rank;              // its largest rank over its targets
    float scale;                // the scale it is applied with
    uint64_t bytes;             // bytes it holds in the budget
} lichen_adapter_info;

/** The newest active set, by name, file, rank and scale: up to `capacity` entries into
 *  `adapters` (may be NULL when capacity is 0); *count gets the set's size (call with capacity
 *  0 to size the buffer). BUFFER_TOO_SMALL when the set has more adapters than `capacity`
 *  (the first `capacity` are written). */
LICHEN_API lichen_status lichen_adapter_list(lichen_runtime *runtime, lichen_adapter_info *adapters, size_t capacity,
                                             size_t *count);

/* ====== Checkpoints (loop thread) ====== */

/** Bytes a checkpoint of the current method's trained state takes. */
LICHEN_API lichen_status lichen_checkpoint_size(lichen_runtime *runtime, size_t *bytes);
/** Writes a checkpoint into `buffer` (capacity bytes); *written gets its length. */
LICHEN_API lichen_status lichen_checkpoint_save(lichen_runtime *runtime, void *buffer, size_t capacity, size_t *written);
/** Restores a checkpoint of the same model and method (checked whole before anything changes). */
LICHEN_API lichen_status lichen_checkpoint_restore(lichen_runtime *runtime, const void *buffer, size_t length);

/* ====== Metrics (any thread) ====== */

typedef struct lichen_metrics {
    uint64_t steps;             // frames stepped
    uint64_t resets;            // lichen_reset calls
    uint64_t swaps;             // steps at which the loop picked up a new adapter set
    uint64_t step_p50_ns;       // step time percentiles over the metrics window, nanoseconds
    uint64_t step_p99_ns;
    uint64_t step_max_ns;
    uint64_t budget_bytes;      // the budget
    uint64_t used_bytes;        // budget in use (low end + heap extents + control block)
    uint64_t heap_in_use_bytes; // live heap allocations (adapters)
    uint32_t active_adapters;   // adapters in the newest set
    uint32_t model_loaded;      // 1 once a model is loaded
    uint64_t adapter_generation;// generation of the newest adapter set (0: none ever published)
    /* ABI 2 */
    uint64_t updates;           // adaptation steps (updates on the window) since lichen_method_set
    uint64_t guard_resets;      // resets by the collapse guard (collapse and periodic)
    uint64_t rejected_frames;   // frames refused as bad input (NaN, infinity)
    float last_loss;            // the method's loss on its last update (0 for source and BN-adapt)
    float effective_classes;    // effective number of predicted classes the guard watches (0: no guard)
    uint32_t method;            // the running lichen_method
    /* ABI 3 */
    uint32_t learner;           // 1 while updates run on the learner thread
    uint64_t dropped_frames;    // learner: frames no update saw because the learner was busy
    uint64_t learner_lag;       // learner: frames between the newest prediction and the end of the window the
                                // version it used learned from
    uint64_t max_learner_lag;   // learner: the largest lag since lichen_method_set
    uint64_t version;           // learner: the published version the loop predicts with (0: the model as loaded)
    uint64_t torn_predictions;  // learner: predictions that saw a version being written (always 0; a check)
    uint64_t update_p50_ns;     // update durations over the last updates (synchronous: the adapting step;
    uint64_t update_p99_ns;     // learner: the learner's job, update and refold), nanoseconds
    uint64_t update_max_ns;
    uint32_t state_restore;     // the state file at the last lichen_method_set: 0 none, 1 restored, 2 refused
    uint64_t state_saves;       // state files written since lichen_method_set
    uint64_t state_save_failures; // saves that failed (the previous file stays)
    uint64_t last_save_unix_ns; // the last save's wall-clock time (Unix epoch, ns) and duration
    uint64_t last_save_ns;
    uint64_t last_good_resets;  // collapse-guard resets that returned to the last healthy state
    /* ABI 5 */
    uint64_t learn_samples;     // labelled frames learned from (lichen_learn) since lichen_method_set or lichen_reset
    uint64_t learn_updates;     // online learning's weight updates
    uint64_t learn_decisions;   // LRR / LRH decisions taken, and how many moved eta (LRH: "take it" won)
    uint64_t learn_taken;
    double learning_rate;       // eta now (0 without online learning)
} lichen_metrics;

LICHEN_API lichen_status lichen_metrics_get(lichen_runtime *runtime, lichen_metrics *metrics);

/* ====== Diagnostics ====== */

/** Copies the text of the runtime's last error (NUL-terminated, cut to capacity) into
 *  `buffer`; *length (may be NULL) gets its full length without the NUL. "" if none.
 *  With runtime NULL: why the calling thread's last lichen_runtime_create failed (there is no
 *  runtime to ask), "" after a success. */
LICHEN_API lichen_status lichen_last_error(lichen_runtime *runtime, char *buffer, size_t capacity, size_t *length);

/* ====== Cue learners (persistent self-supervised cue switching) ======
 *
 * A trusted cue (stereo disparity, say) teaches a complementary cue (a monocular feature
 * vector) online, and a switch rule picks which cue drives (Sources/Lichen/Cues/README.md):
 *
 *     lichen_cue_params cp = lichen_cue_default_params();
 *     cp.decision_threshold = 14; cp.danger_threshold = 24;       // on the target's scale
 *     lichen_cue_learner *cue;
 *     if (lichen_cue_create(rt, &cp, &cue) != LICHEN_STATUS_OK) { ... }
 *     for (;;) {                                                   // every tick
 *         lichen_cue_output o;
 *         lichen_cue_tick(cue, features, 21, stereo_target, stereo_ok, &o);
 *         if (o.driver == LICHEN_CUE_NONE) stop(); else if (o.obstacle) avoid(); else fly();
 *     }
 *     lichen_cue_destroy(cue);                                     // before lichen_runtime_destroy
 *
 * The learner's buffers are one block of the runtime's budget (its heap), freed by
 * lichen_cue_destroy. A learner belongs to one thread at a time; it never runs inside
 * lichen_step, so the loop thread may tick it between steps. Errors are recorded on the
 * runtime (lichen_last_error). lichen_cue_tick allocates nothing.
 */

typedef struct lichen_cue_learner lichen_cue_learner;

typedef enum lichen_cue {
    LICHEN_CUE_NONE = 0,            // no cue may drive: the robot should stop
    LICHEN_CUE_TRUSTED = 1,
    LICHEN_CUE_COMPLEMENTARY = 2,
} lichen_cue;

typedef enum lichen_cue_policy {
    LICHEN_CUE_POLICY_TRUSTED_ONLY = 0,       // only the trusted cue drives; nothing once it is lost
    LICHEN_CUE_POLICY_GATED = 1,              // the switch rule (held-out TPR/FPR gate, training wheels, timeout)
    LICHEN_CUE_POLICY_TRAINING_WHEELS = 2,    // the complementary cue drives once it has a model; trusted overrides on danger
    LICHEN_CUE_POLICY_COMPLEMENTARY_ONLY = 3, // the complementary cue drives once it has a model; no override
} lichen_cue_policy;

typedef struct lichen_cue_params {
    uint32_t feature_count;     // values per complementary feature vector (default 21)
    uint32_t neighbours;        // k of the kNN regression (default 5, at most 64)
    uint32_t capacity;          // samples in the ring buffer (default 2435)
    uint32_t retrain_interval;  // new samples between retrains (default 200)
    uint32_t smoothing;         // moving-average width of the estimate (default 5)
    float decision_threshold;   // tau_gt: the trusted cue reports an obstacle above this (default 14)
    float danger_threshold;     // tau_safe >= tau_gt: imminent danger, training wheels take over (default 24)
    float min_true_positive_rate;   // the gate: held-out TPR >= this (default 0.95)
    float max_false_positive_rate;  // ... and FPR <= this (default 0.4)
    uint32_t trusted_timeout;   // ticks the trusted cue may be invalid before it is lost (default 10)
    uint32_t policy;            // a lichen_cue_policy (default GATED)
    uint32_t learning;          // 1: valid targets are learned (default 1)
} lichen_cue_params;

typedef struct lichen_cue_output {
    uint32_t driver;                // a lichen_cue
    float estimate;                 // the driving value on the target's scale (NaN when driver is NONE)
    uint32_t obstacle;              // 1: the driving cue reports an obstacle
    float complementary_estimate;   // the smoothed complementary estimate (NaN before the first retrain)
    float confidence;               // in [0, 1]: neighbours agreeing with the complementary decision
    uint32_t intervention;          // 1: the training wheels overrode the complementary cue
    uint32_t learned;               // 1: this tick's sample entered the buffer
    uint32_t qualified;             // 1: the complementary cue passes the held-out gate
    float estimate_threshold;       // tau_est, the auto-tuned complementary decision threshold
} lichen_cue_output;

/** The authors' settings (k 5, buffer 2435, retrain 200, smoothing 5), 21 features, gate 0.95 / 0.4,
 *  thresholds 14 / 24 (the simulator's mean-disparity scale), timeout 10 ticks, GATED, learning on. */
LICHEN_API lichen_cue_params lichen_cue_default_params(void);
/** Creates a cue learner in the runtime's budget. On failure *out is NULL (INVALID_ARGUMENT for
 *  a bad parameter, NON_FINITE for a NaN threshold, BUDGET_EXCEEDED when the block does not fit). */
LICHEN_API lichen_status lichen_cue_create(lichen_runtime *runtime, const lichen_cue_params *params, lichen_cue_learner **out);
/** Frees the learner and its block. NULL is ignored. */
LICHEN_API void lichen_cue_destroy(lichen_cue_learner *learner);
/** One tick: features (feature_count values), the trusted target and whether it is valid (its
 *  value is not read when invalid). SHAPE_MISMATCH for another count, NON_FINITE for a NaN or
 *  infinite feature or valid target; a failed tick changes nothing. */
LICHEN_API lichen_status lichen_cue_tick(lichen_cue_learner *learner, const float *features, size_t feature_count,
                                         float target, int target_valid, lichen_cue_output *out);
/** Changes the policy and learning from the next tick on; what was learned is kept. */
LICHEN_API lichen_status lichen_cue_set_policy(lichen_cue_learner *learner, uint32_t policy, int learning);
/** Bytes of a saved state (the ring buffer, tau_est, the gate). */
LICHEN_API lichen_status lichen_cue_state_size(lichen_cue_learner *learner, size_t *bytes);
/** Saves the state into `buffer` (4-byte aligned; BUFFER_TOO_SMALL below lichen_cue_state_size). */
LICHEN_API lichen_status lichen_cue_save(lichen_cue_learner *learner, void *buffer, size_t capacity, size_t *written);
/** Restores a saved state (untrusted: MALFORMED or SHAPE_MISMATCH, and nothing changes, when it
 *  does not fit this learner's parameters). The model becomes the restored buffer. */
LICHEN_API lichen_status lichen_cue_restore(lichen_cue_learner *learner, const void *buffer, size_t length);

#ifdef __cplusplus
}
#endif
#endif /* LICHEN_H */
