/*
 * controller.c — an example robot control loop over Lichen's C ABI (lichen.h).
 *
 * Creates a runtime with a memory budget and a control socket, loads a model, and steps one
 * frame per tick at a fixed rate (default 200 Hz) over a Lichen stream file (LCHS v1, what
 * `lichen stream make` writes) standing in for a camera. The runtime adapts while it runs;
 * an operator can swap LoRA adapters meanwhile with `lichen adapters ... --socket PATH`.
 * Every second it prints steps, step p99 and the active adapters; at the end a summary.
 *
 *   controller --model M.gguf --stream S.stream --socket /tmp/lichen.sock
 *              [--rate 200] [--seconds 10 | --frames N] [--method source|bn|tent|cotta|rmt]
 *              [--window 16] [--every 16] [--budget-mib 64] [--source-pack P.stream]
 *              [--lora-rank R] [--guard BOUND] [--cotta-threshold P]
 *
 * CoTTA (without --cotta-threshold) and RMT read labelled source frames from a source pack
 * (`lichen source-pack`), which the runtime loads into its budget at lichen_method_set.
 *
 * The same source is built for the host (ports/host/example/build.sh) and cross-built for
 * aarch64 (ports/linux-aarch64/example/build.sh). Exit status: 0, 1 on a runtime failure,
 * 2 on bad arguments.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lichen.h"

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

/* ---- the stream file (LCHS v1): validated before use ---- */

typedef struct {
    uint8_t *bytes;
    size_t size;
    uint32_t width, height, classes;
    uint64_t frames;
    const uint8_t *labels;  // frames bytes
    const uint8_t *pixels;  // frames * width * height bytes
} stream;

static uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t u64_at(const uint8_t *p) { return (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32; }

/* Reads and checks the layout (bounds of every section; labels below the class count).
 * Returns 0 or prints why and returns -1. The CRC is left to `lichen stream show`. */
static int stream_open(const char *path, stream *s) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "controller: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0) goto io;
    long size = ftell(f);
    if (size < 52 || fseek(f, 0, SEEK_SET) != 0) goto bad;
    s->bytes = malloc((size_t)size);
    if (!s->bytes || fread(s->bytes, 1, (size_t)size, f) != (size_t)size) goto io;
    fclose(f);
    f = NULL;
    s->size = (size_t)size;
    const uint8_t *b = s->bytes;
    if (memcmp(b, "LCHS", 4) != 0 || u32_at(b + 4) != 1 || u32_at(b + 20) != 1) goto bad;
    s->width = u32_at(b + 12);
    s->height = u32_at(b + 16);
    s->classes = u32_at(b + 24);
    uint32_t domains = u32_at(b + 28);
    s->frames = u64_at(b + 32);
    if (s->width == 0 || s->width > 4096 || s->height == 0 || s->height > 4096 || s->classes == 0 ||
        s->classes > 256 || domains == 0 || s->frames == 0) goto bad;
    size_t at = 48;
    for (uint32_t d = 0; d < domains; d++) {  // u64 first, u64 count, u8 severity, u8 name length, name
        if (at + 18 > s->size) goto bad;
        at += 18 + b[at + 17];
    }
    uint64_t per_frame = (uint64_t)s->width * s->height;
    if (s->frames > (s->size - at) / (per_frame + 1) || at + s->frames * (per_frame + 1) + 4 != s->size) goto bad;
    s->labels = b + at;
    s->pixels = b + at + s->frames;
    for (uint64_t i = 0; i < s->frames; i++) {
        if (s->labels[i] >= s->classes) goto bad;
    }
    return 0;
io:
    fprintf(stderr, "controller: %s: %s\n", path, strerror(errno));
    if (f) fclose(f);
    free(s->bytes);
    return -1;
bad:
    fprintf(stderr, "controller: %s: not a valid LCHS v1 stream file\n", path);
    if (f) fclose(f);
    free(s->bytes);
    return -1;
}

/* ---- time ---- */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop_requested) {
    }
}

/* ---- main ---- */

static int fail(lichen_runtime *rt, const char *what, lichen_status status) {
    char message[512];
    message[0] = 0;
    if (rt) lichen_last_error(rt, message, sizeof message, NULL);
    fprintf(stderr, "controller: %s: %s%s%s\n", what, lichen_status_string(status), message[0] ? ": " : "", message);
    return 1;
}

static int usage(void) {
    fprintf(stderr,
            "usage: controller --model M.gguf --stream S.stream --socket PATH [--rate HZ] [--seconds S | --frames N]\n"
            "                  [--method source|bn|tent|cotta|rmt] [--window B] [--every K] [--budget-mib MIB]\n"
            "                  [--source-pack P] [--lora-rank R] [--guard BOUND] [--cotta-threshold P]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *model = NULL, *stream_path = NULL, *socket_path = NULL, *method_name = "source", *source_pack = NULL;
    double rate = 200, seconds = 10, guard = 0, cotta_threshold = -1;
    long long frame_limit = -1, window = 16, every = 16, budget_mib = 64, lora_rank = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        const char *v = argv[++i];
        char *end = NULL;
        if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--stream") == 0) stream_path = v;
        else if (strcmp(a, "--socket") == 0) socket_path = v;
        else if (strcmp(a, "--method") == 0) method_name = v;
        else if (strcmp(a, "--rate") == 0) rate = strtod(v, &end);
        else if (strcmp(a, "--seconds") == 0) seconds = strtod(v, &end);
        else if (strcmp(a, "--frames") == 0) frame_limit = strtoll(v, &end, 10);
        else if (strcmp(a, "--window") == 0) window = strtoll(v, &end, 10);
        else if (strcmp(a, "--every") == 0) every = strtoll(v, &end, 10);
        else if (strcmp(a, "--budget-mib") == 0) budget_mib = strtoll(v, &end, 10);
        else if (strcmp(a, "--source-pack") == 0) source_pack = v;
        else if (strcmp(a, "--lora-rank") == 0) lora_rank = strtoll(v, &end, 10);
        else if (strcmp(a, "--guard") == 0) guard = strtod(v, &end);
        else if (strcmp(a, "--cotta-threshold") == 0) cotta_threshold = strtod(v, &end);
        else return usage();
        if (end && *end) return usage();
    }
    lichen_method method;
    if (strcmp(method_name, "source") == 0) method = LICHEN_METHOD_SOURCE;
    else if (strcmp(method_name, "bn") == 0) method = LICHEN_METHOD_BN;
    else if (strcmp(method_name, "tent") == 0) method = LICHEN_METHOD_TENT;
    else if (strcmp(method_name, "cotta") == 0) method = LICHEN_METHOD_COTTA;
    else if (strcmp(method_name, "rmt") == 0) method = LICHEN_METHOD_RMT;
    else return usage();
    if (lora_rank < 0 || lora_rank > 4096 || !(guard >= 0 && guard <= 1000)) return usage();
    if (!model || !stream_path || !socket_path || !(rate > 0 && rate <= 100000) || !(seconds > 0) || window < 1 ||
        window > 4096 || every < 1 || budget_mib < 8 || budget_mib > (1 << 20) || frame_limit == 0) {
        return usage();
    }

    stream s;
    if (stream_open(stream_path, &s) != 0) return 1;

    lichen_runtime_params params = lichen_runtime_default_params();
    params.budget_bytes = (size_t)budget_mib << 20;
    params.socket_path = socket_path;
    lichen_runtime *rt = NULL;
    lichen_status st = lichen_runtime_create(&params, &rt);
    if (st != LICHEN_STATUS_OK) return fail(NULL, "creating the runtime", st);
    if ((st = lichen_model_load(rt, model)) != LICHEN_STATUS_OK) return fail(rt, model, st);
    lichen_method_params mp = lichen_method_default_params(method);
    mp.window = (uint32_t)window;
    mp.every = (uint32_t)every;
    mp.source_pack = source_pack;
    mp.lora_rank = (uint32_t)lora_rank;
    mp.guard_min_classes = (float)guard;
    if (cotta_threshold >= 0) mp.cotta_threshold = (float)cotta_threshold;
    if ((st = lichen_method_set(rt, &mp)) != LICHEN_STATUS_OK) return fail(rt, "choosing the method", st);
    uint64_t setup_ns = 0;
    lichen_method_setup_ns(rt, &setup_ns);
    fprintf(stderr, "controller: %s set up in %.1f ms\n", method_name, setup_ns / 1e6);
    size_t frame_values = 0, classes = 0;
    lichen_model_info(rt, &frame_values, &classes);
    if (frame_values != (size_t)s.width * s.height) {
        fprintf(stderr, "controller: the stream's frames have %u values, the model takes %zu\n", s.width * s.height, frame_values);
        return 1;
    }

    // The loop's own buffers: one frame and its logits (the runtime writes into them).
    float *frame = malloc(frame_values * sizeof *frame);
    float *logits = malloc(classes * sizeof *logits);
    if (!frame || !logits) return 1;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    uint64_t total = frame_limit > 0 ? (uint64_t)frame_limit : (uint64_t)(rate * seconds + 0.5);
    fprintf(stderr, "controller: %s, %s, %.0f Hz, %llu frames, budget %lld MiB, socket %s\n", model, method_name, rate,
            (unsigned long long)total, budget_mib, socket_path);
    const uint64_t period = (uint64_t)(1e9 / rate);
    const uint64_t start = now_ns();
    // Without --frames the run also ends at --seconds of wall time, however slow the steps.
    const uint64_t deadline = frame_limit > 0 ? UINT64_MAX : start + (uint64_t)(seconds * 1e9);
    uint64_t next_tick = start, next_report = start + 1000000000u, stepped = 0, correct = 0, overruns = 0, failures = 0;
    while (stepped < total && !stop_requested && now_ns() < deadline) {
        const uint8_t *pixels = s.pixels + (stepped % s.frames) * frame_values;
        for (size_t k = 0; k < frame_values; k++) frame[k] = (float)pixels[k] / 255.0f;
        int32_t predicted = -1;
        st = lichen_step(rt, frame, frame_values, logits, classes, &predicted);
        if (st != LICHEN_STATUS_OK) {
            failures++;
            fail(rt, "step", st);
        } else if (predicted == s.labels[stepped % s.frames]) {
            correct++;
        }
        stepped++;
        uint64_t t = now_ns();
        if (t >= next_report) {
            lichen_metrics m;
            lichen_metrics_get(rt, &m);
            printf("t=%llus steps=%llu p99_ms=%.3f active_adapters=%u generation=%llu swaps=%llu\n",
                   (unsigned long long)((t - start) / 1000000000u), (unsigned long long)m.steps, m.step_p99_ns / 1e6,
                   m.active_adapters, (unsigned long long)m.adapter_generation, (unsigned long long)m.swaps);
            fflush(stdout);
            next_report += 1000000000u;
        }
        next_tick += period;
        if (t < next_tick) {
            sleep_until(next_tick);
        } else {
            overruns++;
            next_tick = t;
        }
    }
    lichen_metrics m;
    lichen_metrics_get(rt, &m);
    printf("done: steps=%llu seconds=%.2f online_error=%.4f overruns=%llu failures=%llu p50_ms=%.3f p99_ms=%.3f "
           "max_ms=%.3f active_adapters=%u swaps=%llu used_bytes=%llu budget_bytes=%llu updates=%llu guard_resets=%llu "
           "last_loss=%.4f\n",
           (unsigned long long)m.steps, (now_ns() - start) / 1e9, stepped ? 1.0 - (double)correct / (double)stepped : 0.0,
           (unsigned long long)overruns, (unsigned long long)failures, m.step_p50_ns / 1e6, m.step_p99_ns / 1e6,
           m.step_max_ns / 1e6, m.active_adapters, (unsigned long long)m.swaps, (unsigned long long)m.used_bytes,
           (unsigned long long)m.budget_bytes, (unsigned long long)m.updates, (unsigned long long)m.guard_resets,
           (double)m.last_loss);
    lichen_runtime_destroy(rt);
    free(frame);
    free(logits);
    free(s.bytes);
    return failures == 0 ? 0 : 1;
}
