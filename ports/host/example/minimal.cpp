// minimal.cpp — the smallest C++ control loop over Lichen's C ABI: create a runtime, load a
// model, choose a method, step frames, read the metrics. Built for the host by
// ports/host/example/build.sh and for aarch64 by ports/linux-aarch64/build.sh, to show (and
// check) the compile and link lines a C++ robot binary needs.
//
//   minimal MODEL.gguf [tent|bn|source] [FRAMES]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lichen.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: minimal MODEL.gguf [tent|bn|source] [FRAMES]\n");
        return 2;
    }
    if (lichen_abi_version() != LICHEN_ABI_VERSION) {
        std::fprintf(stderr, "minimal: library ABI %u, header %u\n", lichen_abi_version(), LICHEN_ABI_VERSION);
        return 1;
    }
    const char *name = argc > 2 ? argv[2] : "tent";
    lichen_method method = std::strcmp(name, "bn") == 0       ? LICHEN_METHOD_BN
                           : std::strcmp(name, "source") == 0 ? LICHEN_METHOD_SOURCE
                                                              : LICHEN_METHOD_TENT;
    int frames = argc > 3 ? std::atoi(argv[3]) : 64;

    lichen_runtime_params params = lichen_runtime_default_params();
    params.budget_bytes = std::size_t(32) << 20;
    lichen_runtime *rt = nullptr;
    lichen_status s = lichen_runtime_create(&params, &rt);
    if (s == LICHEN_STATUS_OK) s = lichen_model_load(rt, argv[1]);
    lichen_method_params mp = lichen_method_default_params(method);
    mp.window = 8;
    mp.every = 8;
    if (s == LICHEN_STATUS_OK) s = lichen_method_set(rt, &mp);
    std::size_t values = 0, classes = 0;
    if (s == LICHEN_STATUS_OK) s = lichen_model_info(rt, &values, &classes);
    std::vector<float> frame(values), logits(classes);
    unsigned state = 1;
    for (int i = 0; s == LICHEN_STATUS_OK && i < frames; i++) {
        for (auto &v : frame) v = float((state = state * 1103515245u + 12345u) >> 8) / float(1u << 24);
        s = lichen_step(rt, frame.data(), values, logits.data(), classes, nullptr);
    }
    if (s != LICHEN_STATUS_OK) {
        char message[256] = "";
        if (rt) lichen_last_error(rt, message, sizeof message, nullptr);
        std::fprintf(stderr, "minimal: %s: %s\n", lichen_status_string(s), message);
        lichen_runtime_destroy(rt);
        return 1;
    }
    lichen_metrics m;
    lichen_metrics_get(rt, &m);
    std::printf("minimal: %s, %llu steps, %llu updates, p50 %.3f ms, %llu of %llu budget bytes used\n", name,
                (unsigned long long)m.steps, (unsigned long long)m.updates, m.step_p50_ns / 1e6,
                (unsigned long long)m.used_bytes, (unsigned long long)m.budget_bytes);
    lichen_runtime_destroy(rt);
    return 0;
}
