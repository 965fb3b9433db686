"""Labs: step-by-step exercises beside the terminal (format, loading, progress, checks)."""
