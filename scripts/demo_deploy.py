#!/usr/bin/env python3
"""What the local executor runs by default (`make run`): pretends to deploy for a moment.

It prints the deployment it was given and exits 0, or 1 when the image tag contains "fail",
so a demo can show a failing rollout. DEMO_DEPLOY_SECONDS (default 20) sets how long it takes:
long enough to try a switch while a stage deploys and see it refused.
"""

import os
import sys
import time


def main() -> int:
    app = os.environ.get("APP_NAME", "?")
    tag = os.environ.get("IMAGE_TAG", "?")
    environment = os.environ.get("ENVIRONMENT", "?")
    deployment = os.environ.get("DEPLOYMENT_ID", "?")
    seconds = float(os.environ.get("DEMO_DEPLOY_SECONDS", "20"))
    print(f"deploying {app}:{tag} to {environment} (deployment {deployment})", flush=True)
    steps = 3
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        print(f"step {step}/{steps} done", flush=True)
    if "fail" in tag.lower():
        print(f"error: {app}:{tag} did not become healthy", flush=True)
        return 1
    print(f"{app}:{tag} is live in {environment}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
