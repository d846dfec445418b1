"""The run directory: its layout and the files stages write into it (metrics.jsonl, run.json)."""
