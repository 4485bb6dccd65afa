"""Running the tap's account groups in parallel on Dagster (the `orchestrate` extra)."""
