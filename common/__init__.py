"""What every stage may import: the environment switch (local vs prod, read in one place) and
the one shim over private Dagster names."""
