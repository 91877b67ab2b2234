"""What every app may import: the error vocabulary, validators, admin helpers, command progress.

Nothing here imports an app of ours, so builds, deployments and releases can all depend on it.
"""
