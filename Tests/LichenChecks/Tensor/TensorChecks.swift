let tensorChecks: [Check] = []  // replaced by the tensor checks
