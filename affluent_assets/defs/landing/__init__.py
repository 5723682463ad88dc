"""Landing folder: sensor, per-file batches, batch scores."""
