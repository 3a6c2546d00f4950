#ifndef LICHEN_CJPEG_SHIM_H
#define LICHEN_CJPEG_SHIM_H
/* Debian's libjpeg-turbo (libjpeg62-turbo-dev): jpeglib.h needs stdio.h first. */
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>
#endif
