#ifndef LCR_ARENA_H
#define LCR_ARENA_H
#include <stddef.h>
#include <stdint.h>
#endif
