"""A tiny Django site that the real-stack test runs on several uWSGI nodes behind routerd."""
