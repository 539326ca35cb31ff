"""Detection training: train, engine, data, shapes_dataset, strip_checkpoint (`python -m cpwc_references.detection.train`)."""
