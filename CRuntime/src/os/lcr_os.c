#include "lcr_os.h"
