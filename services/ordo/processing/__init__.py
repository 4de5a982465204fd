"""The image processor: object crops and OCR text lines as samples of their own.

One photo yields several samples: the whole image (the embedding pipeline), each detected object crop
(embedded by the image tower) and each recognised text line (embedded by the text tower, its text kept
in the payload for keyword search). Detectors and text readers sit behind small ports
(``ordo.processing.regions``) so another model family plugs in without touching the stage.
"""
