"""Docker Engine as a deployer (engine.py)."""
