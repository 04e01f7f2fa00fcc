"""Multi-layer pruning (Singh et al., WACV 2019): choosing which filters to remove."""
