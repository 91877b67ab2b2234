"""Runs one local Job: `python local_runner.py JOB_DIR -- ARGV...` (standard library only).

Started by the local executor in a session of its own, so cancelling kills the whole process
group. It records the command's output in JOB_DIR/output.log and, when the command ends, its
exit status in JOB_DIR/exit_code, so any reconciler (even a restarted one) can read the result.
"""

import os
import signal
import subprocess
import sys


def main() -> int:
    job_dir, separator, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if separator != "--" or not argv:
        print("usage: local_runner.py JOB_DIR -- ARGV...", file=sys.stderr)
        return 2
    # SIGTERM reaches the command too (same process group); outlive it to record its status.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with open(os.path.join(job_dir, "output.log"), "ab") as out:
        try:
            code = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        except OSError as exc:
            out.write(f"cannot run {argv[0]}: {exc}\n".encode())
            code = 127
    tmp = os.path.join(job_dir, "exit_code.tmp")
    with open(tmp, "w") as f:
        f.write(str(code))
    os.replace(tmp, os.path.join(job_dir, "exit_code"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
