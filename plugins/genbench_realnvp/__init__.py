"""RealNVP (Dinh et al. 2017): being written."""
