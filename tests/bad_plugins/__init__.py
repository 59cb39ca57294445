"""Plugins that misbehave, one module each, loaded with -p by the bad-input catalogue.

The catalogue is tests/integration/test_bad_inputs.py.
"""
