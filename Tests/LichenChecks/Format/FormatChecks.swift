let formatChecks: [Check] = []  // replaced by the GGUF checks
