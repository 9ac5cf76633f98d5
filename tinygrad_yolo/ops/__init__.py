"""The ops: one file per family, each Function's forward and backward side by side.

Every op works on raw numpy or cupy arrays; ``xp = array_module(x)`` picks the module.
"""
