"""mlprune: multi-layer pruning of SSD detectors (Singh et al., WACV 2019)."""

__version__ = "0.1.0"
