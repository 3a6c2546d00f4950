#ifndef LCR_OS_H
#define LCR_OS_H
#include <stddef.h>
#include <stdint.h>
#endif
