#ifndef LCR_FILE_H
#define LCR_FILE_H
#include <stddef.h>
#include <stdint.h>
#endif
