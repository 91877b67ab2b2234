"""What every app may import: the error vocabulary, validators and admin helpers.

Nothing here imports an app of ours, so builds, deployments and releases can all depend on it.
"""
