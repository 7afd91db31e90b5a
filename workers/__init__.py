"""Workers: arq settings, jobs and crons, and the sync rules per entity."""
