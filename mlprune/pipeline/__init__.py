"""Stage orchestration: one module per DVC stage, named after it.

Each module reads the stage's inputs from files, calls the algorithm (`pruning`,
`models`, `evaluation`, `train`) and writes the outputs atomically; it also holds the
params block that only that stage reads. Only stages/ and presets.py (which checks a whole
params file) import it.
"""
