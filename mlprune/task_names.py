"""The two tasks mlprune prunes for.

A model family (`models/family.py`) and a dataset format (`data/splits.py`) each say
which task they are; `evaluation/tasks.py` says how each task is scored.
"""

DETECTION = "detection"
CLASSIFICATION = "classification"
