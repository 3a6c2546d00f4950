#include "lichen_jpeg_codec.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

/* libjpeg's error manager extended with a jump target and a warning counter. */
struct lcj_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int warnings;
};

static void lcj_error_exit(j_common_ptr cinfo) {
    struct lcj_error *err = (struct lcj_error *)cinfo->err;
    longjmp(err->jump, 1);
}

/* Warnings (msg_level -1) and trace messages are counted or dropped, never printed. */
static void lcj_emit_message(j_common_ptr cinfo, int msg_level) {
    struct lcj_error *err = (struct lcj_error *)cinfo->err;
    if (msg_level < 0) err->warnings += 1;
}

static void lcj_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void lcj_set_message(char *message, size_t capacity, const char *text) {
    if (message == NULL || capacity == 0) return;
    size_t n = strlen(text);
    if (n >= capacity) n = capacity - 1;
    memcpy(message, text, n);
    message[n] = '\0';
}

static void lcj_format_libjpeg_message(j_common_ptr cinfo, char *message, size_t capacity) {
    char buffer[JMSG_LENGTH_MAX];
    buffer[0] = '\0';
    (*cinfo->err->format_message)(cinfo, buffer);
    lcj_set_message(message, capacity, buffer);
}

static void lcj_install(struct lcj_error *err) {
    jpeg_std_error(&err->pub);
    err->pub.error_exit = lcj_error_exit;
    err->pub.emit_message = lcj_emit_message;
    err->pub.output_message = lcj_output_message;
    err->warnings = 0;
}

int lcj_encode_gray(const uint8_t *pixels, int width, int height, int quality,
                    uint8_t *out, size_t capacity, size_t *outSize,
                    char *message, size_t messageCapacity) {
    if (pixels == NULL || out == NULL || outSize == NULL || width <= 0 || height <= 0 ||
        width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION || quality < 1 || quality > 100 ||
        capacity == 0) {
        lcj_set_message(message, messageCapacity, "bad argument (size, quality or buffer)");
        return LCJ_BAD_ARGUMENT;
    }
    *outSize = 0;

    struct jpeg_compress_struct cinfo;
    struct lcj_error err;
    /* jpeg_mem_dest writes into `out` while the stream fits; when it outgrows `capacity`,
     * libjpeg mallocs a larger buffer, detected after finishing (callers size `out` so that
     * this does not happen: a libjpeg error after such a growth would leak that buffer, which
     * only libjpeg's private destination manager knows). Neither variable is read after a
     * longjmp. */
    unsigned char *dest = out;
    unsigned long destSize = (unsigned long)capacity;

    memset(&cinfo, 0, sizeof cinfo);
    lcj_install(&err);
    cinfo.err = &err.pub;
    if (setjmp(err.jump)) {
        lcj_format_libjpeg_message((j_common_ptr)&cinfo, message, messageCapacity);
        jpeg_destroy_compress(&cinfo);
        return LCJ_LIBJPEG_ERROR;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &dest, &destSize);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 1;
    cinfo.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * (size_t)width);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);

    if (dest != out) {
        /* libjpeg reallocated: the stream is larger than the caller's buffer. */
        free(dest);
        lcj_set_message(message, messageCapacity, "compressed stream larger than the output buffer");
        return LCJ_OUTPUT_TOO_SMALL;
    }
    *outSize = (size_t)destSize;
    return LCJ_OK;
}

int lcj_decode_gray(const uint8_t *data, size_t size, uint8_t *pixels, int width, int height,
                    int *warnings, char *message, size_t messageCapacity) {
    if (warnings != NULL) *warnings = 0;
    if (data == NULL || pixels == NULL || size == 0 || width <= 0 || height <= 0 ||
        (unsigned long long)size > (unsigned long long)(unsigned long)-1) {
        lcj_set_message(message, messageCapacity, "bad argument (empty data, size or buffer)");
        return LCJ_BAD_ARGUMENT;
    }

    struct jpeg_decompress_struct cinfo;
    struct lcj_error err;
    memset(&cinfo, 0, sizeof cinfo);
    lcj_install(&err);
    cinfo.err = &err.pub;
    if (setjmp(err.jump)) {
        lcj_format_libjpeg_message((j_common_ptr)&cinfo, message, messageCapacity);
        if (warnings != NULL) *warnings = err.warnings;
        jpeg_destroy_decompress(&cinfo);
        return LCJ_LIBJPEG_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width != (JDIMENSION)width || cinfo.output_height != (JDIMENSION)height ||
        cinfo.output_components != 1) {
        char text[160];
        snprintf(text, sizeof text, "decoded %ux%u with %d component(s), expected %dx%d gray",
                 (unsigned)cinfo.output_width, (unsigned)cinfo.output_height,
                 cinfo.output_components, width, height);
        lcj_set_message(message, messageCapacity, text);
        if (warnings != NULL) *warnings = err.warnings;
        jpeg_destroy_decompress(&cinfo);
        return LCJ_SIZE_MISMATCH;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.output_scanline * (size_t)width);
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (warnings != NULL) *warnings = err.warnings;
    jpeg_destroy_decompress(&cinfo);
    return LCJ_OK;
}
