"""Plugins that misbehave, one module each, loaded with -p by the bad-input catalogue (tests/test_bad_inputs.py)."""
