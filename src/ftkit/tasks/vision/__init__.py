"""Images (tasks image-cls and mim): image sources (IDX, folders, tables, parquet, hub) read lazily and scanned before
training (sources.py, images.py, checks.py, data.py), pixels and augmentation as the saved image processor does them
(pixels.py), the image classifier (classify.py, predict.py) and masked-image pre-training, MAE / SimMIM (mim.py,
mim_report.py). Each task module exports its own SPEC (the registry names it)."""
