"""Reports over run folders: the run summary now; sweeps, stage tables, leaderboards and gates next."""
