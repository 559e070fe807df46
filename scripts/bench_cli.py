"""How long `--help` takes, and how much memory it needs, for each artnb console script.

    python scripts/bench_cli.py [--repeat 3]

Runs `<script> --help` in fresh processes (the installed entry points in the same bin/ folder as this Python) and
prints the median wall time and the peak resident memory of each. Figures only: no threshold is asserted here.
"""
import argparse, os, resource, statistics, subprocess, sys, time
from pathlib import Path

SCRIPTS = ['artnb-scan', 'artnb-predict', 'artnb-eval', 'artnb-train', 'artnb-synth', 'artnb-demo']

def one(exe):
    "(seconds, peak RSS in MB) of one `exe --help` run in a new process"
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 1); os.dup2(fd, 2)
        os.execv(exe, [exe, '--help'])
    _, status, ru = os.wait4(pid, 0)
    return time.perf_counter() - t0, ru.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeat', type=int, default=3)
    a = ap.parse_args()
    bindir = Path(sys.executable).parent
    print(f"{'script':16s} {'median s':>9s} {'max s':>7s} {'peak MB':>8s}  exit")
    for name in SCRIPTS:
        exe = bindir/name
        if not exe.exists(): print(f"{name:16s} (not installed)"); continue
        runs = [one(str(exe)) for _ in range(a.repeat)]
        ts = [r[0] for r in runs]
        print(f"{name:16s} {statistics.median(ts):9.2f} {max(ts):7.2f} {max(r[1] for r in runs):8.0f}  {runs[-1][2]}")
    print(f"(load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs)")

if __name__ == '__main__': main()
