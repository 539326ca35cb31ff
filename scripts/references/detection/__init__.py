"""Detection training: train, engine, data, shapes_dataset, strip_checkpoint.

`python -m cpwc_references.detection.train` (npm run train) and the others run as modules."""
