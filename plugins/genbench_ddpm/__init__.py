"""DDPM (Ho et al. 2020): being written."""
