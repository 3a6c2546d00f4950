#ifndef LICHEN_JPEG_CODEC_H
#define LICHEN_JPEG_CODEC_H
/* In-memory grayscale JPEG encode/decode through libjpeg(-turbo). Every libjpeg error is
 * caught with setjmp/longjmp inside the C code and returned as a status with a message;
 * nothing longjmps across a Swift frame. */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    LCJ_OK = 0,
    LCJ_BAD_ARGUMENT = 1,  /* size, quality or pointer out of range (checked before libjpeg) */
    LCJ_LIBJPEG_ERROR = 2, /* libjpeg reported an error; the message is in `message` */
    LCJ_SIZE_MISMATCH = 3, /* decoded image is not width x height with one component */
    LCJ_OUTPUT_TOO_SMALL = 4 /* the compressed stream does not fit `capacity` */
};

/* Encodes width x height 8-bit gray pixels (row-major) as a baseline JPEG at `quality` 1...100
 * (libjpeg's standard tables scaled by jpeg_set_quality, force_baseline) into `out`, which has
 * `capacity` bytes; `*outSize` receives the byte count. `message` (may be NULL) receives a
 * NUL-terminated description of a failure, at most `messageCapacity` bytes. */
int lcj_encode_gray(const uint8_t *pixels, int width, int height, int quality,
                    uint8_t *out, size_t capacity, size_t *outSize,
                    char *message, size_t messageCapacity);

/* Decodes a JPEG stream of `size` bytes into width x height 8-bit gray pixels (colour
 * streams are converted to gray by libjpeg). Fails with LCJ_SIZE_MISMATCH when the stream's
 * dimensions differ. libjpeg warnings (e.g. corrupt data it can recover from) are counted
 * in `*warnings` (may be NULL), not printed. */
int lcj_decode_gray(const uint8_t *data, size_t size, uint8_t *pixels, int width, int height,
                    int *warnings, char *message, size_t messageCapacity);

#ifdef __cplusplus
}
#endif
#endif
