let kernelChecks: [Check] = []  // replaced by the kernel checks
