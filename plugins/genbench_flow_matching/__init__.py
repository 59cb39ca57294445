"""Flow matching (Lipman et al. 2023): being written."""
