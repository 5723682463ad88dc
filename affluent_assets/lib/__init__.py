"""Plain Python (no Dagster): the data contract, demo data, schemas, features, training, scoring."""
