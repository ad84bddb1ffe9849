"""Bounds shared by the command line and the library, in a module that imports nothing heavy (the CLI reads it
before torch loads)."""

# An enlarged input scale's bound: the vision tokens Qwen2-VL's processor gives its largest input by default
# (12,845,056 px in 28 px merged patches), so no scale costs more than a model's own largest image
# (docs/METHODS.md, "Scales")
MAX_VISION_TOKENS = 16384
