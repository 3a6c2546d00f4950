let arenaChecks: [Check] = []  // replaced by the arena checks
